"""A model family is one package and one registry line: a tiny family defined here, added to the
registry and nowhere else, trains from the command line, is read by a study file and runs as a
study task. And a run made by code that changed no number can be carried across the change."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from disentangle import family, registry, runs, studies, supervised, train
from disentangle.cli import main
from disentangle.settings import Settings
from disentangle.supervised import SupervisedSettings


@dataclass(frozen=True)
class TinySettings(Settings):
    """A least-squares line fitted to noisy points: the smallest family there is."""

    MODELS: ClassVar[tuple[str, ...]] = ("tiny",)
    CHOICES: ClassVar[dict[str, tuple]] = {"data": ("line",)}
    SIZES: ClassVar[dict[str, dict]] = {"smoke": {"steps": 20}, "cpu": {"steps": 200},
                                        "gpu": {"steps": 2000}}
    model: str = "tiny"
    data: str = "line"
    slope: float = 2.0
    steps: int = 20
    batch_size: int = 32
    seed: int = 0


def _load(run: TinySettings, profile: str, device: torch.device) -> torch.Tensor:
    x = torch.linspace(-1, 1, 256, device=device)[:, None]
    noise = torch.randn(256, 1, generator=torch.Generator().manual_seed(run.seed)).to(device)
    return torch.cat([x, run.slope * x + 0.01 * noise], dim=1)


def _build(run: TinySettings, points: torch.Tensor, device: torch.device) -> family.Trainable:
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(1, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batches = train.TensorBatches(points[:, :1], points[:, 1:], batch_size=run.batch_size,
                                  seed=run.seed)
    loss = torch.nn.functional.mse_loss
    step = train.gradient_step(model, lambda m, b: {"total": loss(m(b[0]), b[1])}, optimizer,
                               device)
    return family.Trainable(model, step, batches, {"model": model, "optimizer": optimizer},
                            {"batches": batches.generator}, log_every=5, checkpoint_every=10)


def _evaluate(model: torch.nn.Linear, points: torch.Tensor, run: TinySettings,
              profile: str) -> dict:
    return {"slope": float(model.weight.item()), "error": abs(model.weight.item() - run.slope)}


TINY = family.Family(
    name="tiny", settings=TinySettings, load=_load, build=_build, evaluate=_evaluate,
    metrics=lambda model: ("slope", "error"), sources=("train.py", "family.py"),
    evaluation_sources=("family.py",), data=("line",),
)


@pytest.fixture
def with_tiny(monkeypatch):
    # The one line a new family adds.
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, TINY))


def test_a_new_family_trains_from_the_command_line(tmp_path, with_tiny, capsys):
    out = tmp_path / "tiny"
    assert main(["train", "tiny", "--data", "line", "--profile", "smoke", "--set", "slope=3",
                 "--set", "steps=60", "--out", str(out), "--quiet"]) == 0, capsys.readouterr()
    result = json.loads((out / "metrics.json").read_text())
    assert result["family"] == "tiny" and result["settings"]["slope"] == 3.0
    assert result["metrics"]["error"] < 0.05  # it learned the slope
    assert runs.read_record(out)["fingerprint"] == TINY.fingerprint()
    # A setting of another family is named as such.
    assert main(["train", "tiny", "--data", "line", "--profile", "smoke", "--set", "beta=1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "belongs to distib, twostep, vib, disenib, not to tiny" in capsys.readouterr().err


def test_a_new_family_runs_as_a_study(tmp_path, with_tiny):
    spec = tmp_path / "tiny.toml"
    spec.write_text('profile = "smoke"\ndata = "line"\nseeds = 2\nmetrics = ["error", "slope"]\n'
                    '[groups.two]\nmodel = "tiny"\nset = { slope = 2.0 }\n'
                    '[groups.three]\nmodel = "tiny"\nset = { slope = 3.0 }\n'
                    '[[comparisons]]\na = "two"\nb = "three"\nprimary = "error"\n')
    study = studies.load_study(spec)
    assert {run.family.name for run in study.runs} == {"tiny"}
    run = study.runs[0]
    outcome = studies.execute({
        "key": run.key, "study": study.name, "model": "tiny", "settings": run.settings.as_dict(),
        "profile": "smoke", "metrics": list(study.metrics), "store": str(tmp_path),
        "cpus": 1, "gpus": 0, "environment": {}, "fingerprint": TINY.fingerprint(),
    })
    assert outcome["status"] == "finished", outcome["error"]
    assert set(outcome["metrics"]) == {"error", "slope"} and outcome["metrics"]["error"] < 0.5
    bad = spec.read_text().replace('"error", "slope"', '"error", "curvature"')
    spec.write_text(bad)
    with pytest.raises(studies.StudyError, match="curvature"):
        studies.load_study(spec)


def _check(same: bool, old: dict, new: dict) -> dict:
    return {"same": same, "fingerprints": {"supervised": {
        "old": [old["fingerprint"]], "new": [new["fingerprint"]],
        "old_evaluation": [old["evaluation_fingerprint"]],
        "new_evaluation": [new["evaluation_fingerprint"]],
    }}}


def test_restamp_carries_a_run_across_a_change_that_changed_no_number(tmp_path, monkeypatch):
    out = tmp_path / "runs" / "vib"
    first = supervised.run("vib", "digits", profile="smoke", out_dir=out, progress=False, steps=5)
    results = tmp_path / "results"
    results.mkdir()
    entry = {"key": "vib/seed0", "status": "finished", "fingerprint": first["fingerprint"],
             "evaluation_fingerprint": first["evaluation_fingerprint"]}
    other = {**entry, "key": "vib/seed1", "fingerprint": "another-code"}
    (results / "study_x.json").write_text(json.dumps({"runs": [entry, other]}))
    # The old code knew one setting fewer (train_size, added at its default since).
    held = json.loads((out / runs.RECORD).read_text())
    del held["settings"]["train_size"]
    (out / runs.RECORD).write_text(json.dumps(held))
    # The library changes (as after a refactor): the old run is stale.
    monkeypatch.setattr(runs, "fingerprint", lambda sources, package=None: "0123456789ab")
    settings = supervised.settings_for("vib", "digits", profile="smoke", steps=5)
    new = {"fingerprint": "0123456789ab", "evaluation_fingerprint": "0123456789ab"}
    assert runs.current_result(out, settings, "smoke", new["fingerprint"], new["fingerprint"]) \
        is None
    with pytest.raises(ValueError, match="nothing is restamped"):
        runs.restamp(_check(False, first, new), tmp_path, results)
    # A run a chapter only trained (no metrics.json) is carried by its training fingerprint.
    trained_only = tmp_path / "runs" / "vib-trained-only"
    shutil.copytree(out, trained_only)
    (trained_only / "metrics.json").unlink()
    def complete(record):
        return SupervisedSettings.for_profile(record["profile"],
                                              **record["settings"]).as_dict()

    counts = runs.restamp(_check(True, first, new), tmp_path, results, complete)
    assert counts == {"run_folders": 2, "study_runs": 1}
    assert json.loads((out / runs.RECORD).read_text())["settings"]["train_size"] is None
    assert json.loads((trained_only / runs.RECORD).read_text())["fingerprint"] == "0123456789ab"
    again = runs.current_result(out, settings, "smoke", new["fingerprint"], new["fingerprint"])
    assert again is not None and again["metrics"] == first["metrics"]
    assert again["restamped"]["fingerprint"] == first["fingerprint"]
    stamped = json.loads((results / "study_x.json").read_text())["runs"]
    assert stamped[0]["fingerprint"] == "0123456789ab"
    assert stamped[1]["fingerprint"] == "another-code"  # made by other code: left stale
    # The loaded run is the trained one, nothing retrained.
    loaded = supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out,
                                      progress=False, steps=5)
    assert not loaded.trained
