"""The benchmark command: it times both ways on the CPU and reports honestly."""

import json

import pytest
import torch

from disentangle import bench
from disentangle.cli import main

TINY = {"warmup": 1, "steps": 2, "repeats": 2}


def test_time_ways_warms_each_way_up_then_takes_turns_and_rejects_empty_timing():
    calls = []

    def way(name, batch_size):
        return lambda: (lambda batch: calls.append(batch) or {}, lambda: name, batch_size)

    result = bench.time_ways({"a": way("a", 10), "b": way("b", 4)}, torch.device("cpu"),
                             warmup=2, steps=3, repeats=2)
    # Both warm-ups first, then rounds of one block of each way, in turn.
    assert "".join(calls) == "aa" + "bb" + ("aaa" + "bbb") * 2
    assert result["a"]["batch_size"] == 10 and result["b"]["batch_size"] == 4
    for timed in result.values():
        low, high = timed["images_per_second_range"]
        assert 0 < low <= timed["images_per_second"] <= high
        assert timed["peak_memory_mb"] is None  # no per-way peak on the CPU
    with pytest.raises(ValueError, match="steps, repeats >= 1"):
        bench.time_ways({"a": way("a", 1)}, torch.device("cpu"), steps=0)


def test_host_loader_gives_batches_of_64_on_the_device_and_restarts():
    feed = bench.host_loader(torch.arange(130.0)[:, None], torch.arange(130), device=torch.device(
        "cpu"), workers=0)
    seen = [feed() for _ in range(5)]  # 130 rows give two full batches per pass
    assert all(x.shape == (64, 1) and y.shape == (64,) for x, y in seen)


@pytest.mark.slow
def test_bench_times_both_models_both_ways_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--device", "cpu", "--out", str(out), "--warmup", "1", "--steps", "2",
            "--repeats", "2"]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    for name in ("distib", "gan"):
        assert record[name]["public"]["batch_size"] == 64
        assert record[name]["public"]["peak_memory_mb"] is None  # no per-way peak on the CPU
        assert record[name]["public"]["images_per_second"] > 0
        assert record[name]["book"]["images_per_second"] > 0
        rounds = [b / p for b, p in zip(record[name]["book"]["images_per_second_rounds"],
                                        record[name]["public"]["images_per_second_rounds"])]
        assert len(rounds) == 2  # --repeats 2: one block of each way per round
        # The median of two rounds is their mean; the range is theirs.
        assert record[name]["speedup"] == pytest.approx(sum(rounds) / 2, abs=0.006)
        assert record[name]["speedup_range"] == pytest.approx([min(rounds), max(rounds)],
                                                              abs=0.006)
    assert record["device"] == "cpu" and record["dataloader_workers"] == 0
    assert record["environment"]["torch"] == torch.__version__
    assert "speed-up" in capsys.readouterr().out


def test_time_to_quality_reports_a_target_it_did_not_reach():
    # Two steps from random weights: the accuracy is near chance (1/3), far below the target.
    result = bench.distib_time_to_quality(torch.device("cpu"), max_steps=2, every=1)
    assert result["steps"] == 2 and [s for s, _ in result["trace"]] == [1, 2]
    assert result["reached"] is False and result["last_value"] < 0.6 < bench.DISTIB_TARGET
    assert result["train_seconds"] > 0


def test_time_to_quality_stops_at_the_first_evaluation_on_target():
    steps = []
    values = iter([0.2, 0.5, 0.91, 0.99])
    result = bench._until(lambda batch: steps.append(batch), lambda: len(steps),
                          lambda: next(values), target=0.9, max_steps=100, every=10,
                          device=torch.device("cpu"))
    assert result["reached"] is True and result["steps"] == 30 and len(steps) == 30
    assert result["trace"] == [[10, 0.2], [20, 0.5], [30, 0.91]]
    never = bench._until(lambda batch: None, lambda: None, lambda: 0.1, target=0.9,
                         max_steps=25, every=10, device=torch.device("cpu"))
    assert never["reached"] is False and [s for s, _ in never["trace"]] == [10, 20, 25]


def test_time_evaluate_records_both_classifiers_on_the_same_codes():
    from disentangle.data import DSpritesStyle

    small = DSpritesStyle(subset={"scale": [0, 5], "orientation": [0, 20], "posX": [0, 16, 31],
                                  "posY": [0, 31]})
    sizes = {"num_train": 200, "num_test": 100, "batch_size": 8, "num_variance_estimate": 100}
    record = bench.time_evaluate(("gbt", "hist"), n_jobs=1, code_dims=4, data=small, **sizes)
    runs = record["runs"]
    assert set(runs) == {"gbt", "hist"} and record["sizes"]["num_train"] == 200
    # Only DCI depends on the classifier: the rest must see the very same codes.
    for key in ("mig", "beta_vae_eval", "factor_vae_eval"):
        assert runs["gbt"]["scores"][key] == runs["hist"]["scores"][key]
    for run in runs.values():
        assert run["seconds"]["total"] >= run["seconds"]["dci"] > 0
        assert len(run["dci_importance"]) == 4 and run["factors"] == ["shape", "scale",
                                                                        "orientation", "posX",
                                                                        "posY"]
    lines = bench.evaluate_table(record).splitlines()
    assert lines[1].startswith("gbt") and lines[2].startswith("hist")
