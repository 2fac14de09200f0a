"""Studies: a study file checked before it runs, run through Ray, resumed after an interruption with
nothing trained twice, failures recorded, a Ray cluster joined; and the paired statistics."""

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import pytest

from disentangle import reaper, runs, stats, studies, supervised, train, vae
from disentangle.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "studies" / "smoke.toml"
#: What differs between two results files of the same runs: when and where they ran.
# What may differ between two executions of one run: the times, the machine, the folder, and the
# logged curves (an interruption between two log points drops the partial means of that window).
CIRCUMSTANCES = ("seconds", "train_seconds", "machine", "run_dir", "history")


def _interruptible():
    # A shell's background job (nohup, `&`) ignores SIGINT, and the ignoring is inherited: give
    # the study the default disposition, so that Python turns SIGINT into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _study(argv, cwd=ROOT, **kwargs):
    """``python -m disentangle study ...`` in a process of its own, as a reader runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "disentangle", "study", *map(str, argv), "--quiet"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_interruptible, **kwargs,
    )


def _finish(process, timeout=240):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _wait_for(process, failure, condition, timeout=180):
    """Poll ``condition`` until it holds; past ``timeout`` s kill the study and fail."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    process.kill()
    pytest.fail(failure)


def _comparable(record):
    """A results record without the circumstances of its runs (times, machine, folder)."""
    runs = [{k: v for k, v in entry.items() if k not in CIRCUMSTANCES} for entry in record["runs"]]
    return {"runs": runs, "summary": record["summary"], "comparisons": record["comparisons"]}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The smoke study run straight through by two local Ray workers."""
    where = tmp_path_factory.mktemp("straight")
    results = where / "study_smoke.json"
    code, out, err = _finish(_study([SMOKE, "--workers", 2, "--store", where,
                                     "--results", results]))
    assert code == 0, err[-3000:]
    return where, json.loads(results.read_text()), out


# --- The study file ------------------------------------------------------------------------------


def _write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


GOOD = """
profile = "smoke"
data = "digits"
seeds = [0, 1]
metrics = ["accuracy_a"]
[groups.distib]
model = "distib"
[groups.vib]
model = "vib"
[[comparisons]]
a = "distib"
b = "vib"
primary = "accuracy_a"
"""


@pytest.mark.parametrize("change, key, message", [
    (('model = "vib"', 'model = "vibe"'), "groups.vib.model", "Unknown model 'vibe'"),
    (('[groups.vib]', '[groups.vib]\nset = { bta = 0.1 }'), "groups.vib.set",
     "Unknown setting 'bta'"),
    (('[groups.vib]', '[groups.vib]\nset = { beta = "big" }'), "groups.vib.set",
     "not of the right type"),
    (('[groups.vib]', '[groups.vib]\nset = { estimator = "drt" }'), "groups.vib.set",
     "belongs to infogan, tcgan"),
    (("seeds = [0, 1]\n", ""), "seeds", "missing"),
    (("seeds = [0, 1]", "seeds = []"), "seeds", "non-empty list"),
    (('b = "vib"', 'b = "vae"'), "comparisons[0].b", "no group 'vae'"),
    (('primary = "accuracy_a"', 'primary = "mig"'), "comparisons[0].primary",
     "not among the study's metrics"),
    (('metrics = ["accuracy_a"]', 'metrics = ["accuracy_a", "mig"]'), "metrics",
     "no group's model (distib, vib) reports 'mig'"),
    (('model = "vib"', 'model = "distib"'), "groups.vib", "the same settings as group distib"),
    (('profile = "smoke"', 'profile = "smoke"\nsteps = 3'), "steps", "unknown key"),
    (('metrics = ["accuracy_a"]', 'metrics = ["accuracy_a", "acuracy_a"]'), "metrics",
     "did you mean accuracy_a"),
    (("seeds = [0, 1]", "seeds = 100000000000"), "seeds", "at most 1000"),
    (("[groups.vib]", '[groups."../../escaped"]'), "groups.../../escaped", "cannot name files"),
    (("[groups.vib]", '[groups."/tmp/abs"]'), "groups./tmp/abs", "cannot name files"),
    (('profile = "smoke"', 'profile = "smoke"\nname = "../out"'), "name", "cannot name files"),
    (('primary = "accuracy_a"', 'primary = "accuracy_a"\n[[comparisons]]\na = "distib"\n'
      'b = "vib"\nprimary = "accuracy_a"'), "comparisons[1]", "compares distib - vib a second"),
])
def test_a_malformed_study_is_refused_naming_the_key(tmp_path, change, key, message):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(studies.StudyError) as refused:
        studies.load_study(path)
    assert f"{path}: {key}: " in str(refused.value)
    assert message in str(refused.value)


def test_a_metric_one_model_lacks_is_kept_for_the_others_but_cannot_be_primary(tmp_path):
    text = GOOD.replace('metrics = ["accuracy_a"]', 'metrics = ["accuracy_a", "mi_x_z"]')
    study = studies.load_study(_write(tmp_path, text))
    assert study.metrics == ("accuracy_a", "mi_x_z")
    entries = {run.key: {**studies._entry(run), "status": "finished",
                         "metrics": {"accuracy_a": 0.5 + run.seed / 10,
                                     "mi_x_z": 1.0 if run.group == "distib" else None}}
               for run in study.runs}
    summary, comparisons = studies.summarise(study, entries)
    assert summary["distib"]["mi_x_z"]["n"] == 2 and summary["vib"]["mi_x_z"]["n"] == 0
    assert [c["metric"] for c in comparisons] == ["accuracy_a"]
    with pytest.raises(studies.StudyError, match="comparisons.0..primary: vib .group vib. "
                                                 "reports no 'mi_x_z'"):
        studies.load_study(_write(tmp_path, text.replace('primary = "accuracy_a"',
                                                         'primary = "mi_x_z"')))


def test_the_command_refuses_a_bad_file_before_anything_runs(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace('model = "vib"', 'model = "vibe"'))
    code = main(["study", str(path), "--store", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "groups.vib.model" in err
    assert not (tmp_path / "runs").exists()


def test_an_address_where_no_ray_head_listens_fails_in_one_line_at_once(tmp_path, capsys):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = _write(tmp_path, GOOD)
    started = time.perf_counter()
    code = main(["study", str(path), "--address", f"127.0.0.1:{port}", "--store", str(tmp_path),
                 "--results", str(tmp_path / "r.json"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and time.perf_counter() - started < 30
    assert len(err.strip().splitlines()) == 1
    assert f"no Ray head answers at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert main(["study", str(path), "--cpus-per-run", "0", "--quiet",
                 "--results", str(tmp_path / "r.json")]) == 2
    assert "--cpus-per-run must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_two_processes_never_write_one_results_file(tmp_path, capsys):
    path = _write(tmp_path, GOOD)
    results = tmp_path / "study.json"
    with runs.exclusive(tmp_path / ".study.json.lock", "held by this test"):
        code = main(["study", str(path), "--results", str(results), "--quiet"])
    assert code == 2 and "is in use by process" in capsys.readouterr().err
    assert not results.exists()


def test_a_toml_error_names_its_line(tmp_path):
    broken = _write(tmp_path, GOOD.replace("seeds = [0, 1]", "seeds = [0, 1"))
    with pytest.raises(studies.StudyError,
                       match=r"not valid TOML: Unclosed array \(at line 5, column 1\)"):
        studies.load_study(broken)


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.toml")), ids=lambda p: p.stem)
def test_the_shipped_studies_are_well_formed(path):
    study = studies.load_study(path)
    assert study.runs and study.comparisons


def test_a_study_plans_every_group_at_every_seed(tmp_path):
    study = studies.load_study(_write(tmp_path, GOOD.replace("seeds = [0, 1]", "seeds = 3")))
    assert [r.key for r in study.runs] == [f"{g}/seed{s}" for g in ("distib", "vib")
                                           for s in range(3)]
    assert {r.settings.seed for r in study.runs} == {0, 1, 2}
    assert studies.results_path(study).name == "study_study.json"
    other = studies.load_study(study.path, profile="cpu")
    assert studies.results_path(other).name == "study_study_cpu.json"
    assert other.runs[0].settings.steps != study.runs[0].settings.steps


def test_metric_names_are_what_the_evaluations_report(tmp_path):
    for model in ("distib", "twostep", "vib", "disenib"):
        result = supervised.run(model, "digits", profile="smoke", seed=0,
                                out_dir=tmp_path / model, progress=False, steps=5)
        reported = set(result["metrics"])
        assert reported == set(supervised.metric_names(model))
    scores = studies.scores(supervised.settings_for("distib", "digits", profile="smoke"),
                            result, ("accuracy_a", "fgsm_accuracy.0.1", "fgsm_accuracy.9"))
    assert 0 <= scores["accuracy_a"] <= 1 and 0 <= scores["fgsm_accuracy.0.1"] <= 1
    assert scores["fgsm_accuracy.9"] is None


# --- Running ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_study_runs_through_local_ray(straight):
    where, record, out = straight
    assert record["counts"] == {"finished": 8, "running": 0, "failed": 0, "interrupted": 0,
                                "pending": 0}
    assert record["environment"]["cluster"]["cpus"] == os.cpu_count()
    if record["environment"]["executor"] == "in-process":
        # Ray's node missed its 30 s to register on a loaded machine; the study went on alone.
        warnings.warn("Ray did not start in time: the smoke study ran in its own process",
                      stacklevel=1)
        assert record["timing"]["workers"] == 1
    else:
        assert record["timing"]["workers"] == 2
    for group in ("distib", "vib"):
        for metric in ("accuracy_a", "mi_x_a", "fgsm_accuracy.0.1"):
            summary = record["summary"][group][metric]
            assert summary["n"] == 4 and summary["ci_low"] <= summary["mean"] <= summary["ci_high"]
    primary = [c for c in record["comparisons"] if c["primary"]]
    assert [(c["a"], c["b"], c["metric"]) for c in primary] == [("distib", "vib", "accuracy_a")]
    assert primary[0]["n_pairs"] == 4
    for entry in record["runs"]:
        log = Path(entry["run_dir"]) / "log.txt"
        assert log.read_text().count("--- finished") == 1
        assert Path(entry["run_dir"]).parent == where / "runs"
        # Each run's training curves are in the record, as its folder's history.json has them.
        saved = json.loads((Path(entry["run_dir"]) / "history.json").read_text())
        assert entry["history"]["steps"] == saved["steps"]
        assert entry["history"]["terms"]["total"] == pytest.approx(saved["terms"]["total"],
                                                                   rel=1e-3)
    assert "primary   distib - vib on accuracy_a" in out


@pytest.mark.slow
def test_where_ray_cannot_start_the_study_runs_in_this_process_with_the_same_results(
        tmp_path, straight, monkeypatch, capsys):
    import ray

    def late(*args, **kwargs):  # what Ray raises when its node misses the 30 s to register
        raise Exception("The current node timed out during startup. This could happen ...")

    monkeypatch.setattr(ray, "init", late)
    results = tmp_path / "study_smoke.json"
    record = studies.run_study(studies.load_study(SMOKE), store=tmp_path, results=results,
                               progress=False)
    assert "Ray did not start on this machine (The current node timed out" in (
        capsys.readouterr().err)
    assert record["environment"]["executor"] == "in-process"
    assert record["timing"]["workers"] == 1
    assert record["counts"]["finished"] == 8
    assert _comparable(record) == _comparable(straight[1])  # what two Ray workers gave


@pytest.mark.slow
def test_a_flagged_run_is_named_in_the_record_and_its_table(straight):
    record = json.loads(json.dumps(straight[1]))
    assert record["flagged"] == []
    record["runs"][0]["flags"] = ["near_chance"]
    record["flagged"] = studies.flagged(record["runs"])
    assert record["flagged"] == [{"key": "distib/seed0", "group": "distib", "seed": 0,
                                  "flags": ["near_chance"]}]
    assert "flagged distib/seed0: near_chance (in the numbers above)" in studies.table(record)


@pytest.mark.slow
def test_a_record_made_before_histories_gets_them_from_the_run_folders(tmp_path, straight):
    where, record, _ = straight
    older = json.loads(json.dumps(record))
    for entry in older["runs"]:
        del entry["history"]
    results = tmp_path / "study_smoke.json"
    results.write_text(json.dumps(older))
    code, _, err = _finish(_study([SMOKE, "--workers", 1, "--results", results,
                                   "--store", where]))
    assert code == 0, err[-3000:]
    again = json.loads(results.read_text())
    assert all(entry["history"]["steps"] for entry in again["runs"])
    # Nothing ran: the record keeps the time and environment of the runs it holds.
    assert again["timing"] == record["timing"]
    assert again["environment"] == record["environment"]


def _family_of(pid):
    """The processes a process started, its children's children included."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _left_running(processes, timeout=30):
    """Those of ``processes`` still alive after ``timeout`` s, by name."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    names = []
    for process in alive:
        with contextlib.suppress(psutil.Error):
            names.append(f"{process.pid} {' '.join(process.cmdline())[:80]}")
    return names


@pytest.mark.slow
def test_a_killed_study_leaves_nothing_running_and_resumes_to_its_uninterrupted_twin(
    tmp_path, straight
):
    """Fault injection: the driver SIGKILLed at a seeded random moment once some runs are done,
    then on the resumed invocation a worker SIGKILLed while it trains. Nothing of the killed
    driver is left running, nothing finished is trained twice, and the record is the straight
    run's."""
    moment = random.Random(36)
    results = tmp_path / "study_smoke.json"
    argv = [SMOKE, "--workers", 1, "--store", tmp_path, "--results", results]
    process = _study(argv)
    finished_before = moment.randint(1, 4)
    _wait_for(process, "the study did not finish its first runs in time",
              lambda: results.exists()
              and json.loads(results.read_text())["counts"]["finished"] >= finished_before)
    time.sleep(moment.uniform(0, 3))
    started = _family_of(process.pid)
    process.kill()
    process.communicate()
    assert not _left_running(started), "processes the killed driver started are still running"
    first = json.loads(results.read_text())
    done = [e for e in first["runs"] if e["status"] == "finished"]
    assert finished_before <= len(done) < 8
    stamps = {e["key"]: os.stat(Path(e["run_dir"]) / "checkpoint.pt").st_mtime_ns for e in done}

    process = _study(argv)

    def training_worker():  # a worker whose run is past its first logged steps
        logs = [p for p in (tmp_path / "runs").glob("*/log.txt") if "it/s" in p.read_text()
                and p.read_text().count("--- ") % 2 == 1]
        workers = [c for c in _family_of(process.pid) if "ray::" in " ".join(c.cmdline())
                   and "run" in " ".join(c.cmdline())]
        return workers[0] if logs and workers else None

    deadline = time.time() + 120
    worker = None
    while worker is None and time.time() < deadline and process.poll() is None:
        with contextlib.suppress(psutil.Error):
            worker = training_worker()
        time.sleep(0.2)
    if worker is not None:  # the study may have fallen back to one process (no Ray workers)
        worker.kill()
    code, _, err = _finish(process)
    assert code == 0, err[-3000:]
    final = json.loads(results.read_text())
    assert final["counts"]["finished"] == 8
    for entry in final["runs"]:
        if entry["key"] in stamps:  # finished before the kill: loaded, not trained again
            assert os.stat(Path(entry["run_dir"]) / "checkpoint.pt").st_mtime_ns == \
                stamps[entry["key"]]
    assert _comparable(final) == _comparable(straight[1])


@pytest.mark.slow
def test_ctrl_c_stops_a_run_in_flight_at_a_checkpoint_and_records_it_interrupted(tmp_path):
    path = _write(tmp_path, GOOD.replace("seeds = [0, 1]", "seeds = [0]")
                  .replace("[groups.vib]", "[groups.vib]\nset = { steps = 1000000 }"))
    results = tmp_path / "results.json"
    process = _study([path, "--workers", 1, "--store", tmp_path, "--results", results])

    def training_log():  # distib finishes; vib trains long enough to be caught
        logs = list((tmp_path / "runs").glob("vib_*/log.txt"))
        return logs[0] if logs and "it/s" in logs[0].read_text() else None

    _wait_for(process, "the long run did not start training in time", training_log)
    log = training_log()
    process.send_signal(signal.SIGINT)
    code, _, err = _finish(process, timeout=60)
    assert code == 130, err[-3000:]
    record = json.loads(results.read_text())
    status = {e["group"]: e["status"] for e in record["runs"]}
    assert status == {"distib": "finished", "vib": "interrupted"}
    assert "--- interrupted after" in log.read_text()
    step = train.load_payload(log.parent / "checkpoint.pt")["step"]
    assert 0 < step < 1000000


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ray") is None and not (Path(sys.executable).parent / "ray")
                    .exists(), reason="the ray command is not installed")
def test_address_joins_a_running_ray_cluster_and_a_failing_run_is_recorded(tmp_path):
    ray = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # --block keeps the cluster tied to this one process: stopping it stops this cluster only,
    # where `ray stop` would also stop a study the reader has running on this machine.
    head = subprocess.Popen([ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--include-dashboard",
                             "false"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        # Read until the cluster says it is up (or the command ends, having failed).
        assert any("Ray runtime started" in line for line in head.stdout), "ray start failed"
        # One study serves both checks (a Ray start each would cost seconds): VIB's learning
        # rate makes its loss non-finite, and DisTIB must finish all the same.
        path = _write(tmp_path, GOOD.replace("seeds = [0, 1]", "seeds = [0]")
                      .replace("[groups.vib]", "[groups.vib]\nset = { lr = 1e12 }"))
        results = tmp_path / "results.json"
        code, _, err = _finish(_study([path, "--address", f"127.0.0.1:{port}", "--store",
                                       tmp_path, "--results", results], env=env))
        record = json.loads(results.read_text())
        assert code == 1 and "1 of 2 runs failed" in err, err[-3000:]  # the number failed
        assert record["environment"]["cluster"] == {"nodes": 1, "cpus": 2.0, "gpus": 0}
        assert record["counts"]["finished"] == 1 and record["counts"]["failed"] == 1
        status = {e["group"]: e for e in record["runs"]}
        assert status["distib"]["status"] == "finished"
        assert status["vib"]["error"].startswith("NonFiniteLossError: Non-finite loss at step")
        assert record["summary"]["vib"]["accuracy_a"]["n"] == 0
        assert record["comparisons"][0]["n_pairs"] == 0
    finally:
        head.send_signal(signal.SIGTERM)
        head.wait(timeout=120)


# --- The statistics ------------------------------------------------------------------------------


def test_comparisons_pair_by_seed():
    a = {0: 0.9, 1: 0.8, 2: 0.7, 3: None, 4: 0.5}
    b = {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5}
    result = stats.compare(a, b)
    assert result["n_pairs"] == 3  # seed 3 failed in a, seed 4 is missing in b
    assert result["differences"] == pytest.approx({"0": 0.4, "1": 0.3, "2": 0.2})
    assert result["mean_diff"] == pytest.approx(0.3)
    assert result["p_wilcoxon"] == pytest.approx(0.25)  # exact: 2 / 2**3, the floor at 3 pairs
    # Paired, the shared per-seed noise cancels: the same gap as unpaired groups whose seeds
    # differ by far more than the gap is seen clearly.
    noise = np.random.default_rng(0).normal(0, 1, 10)
    paired = stats.compare(dict(enumerate(noise + 0.1)), dict(enumerate(noise)))
    assert paired["ci_low"] > 0 and paired["mde"] == pytest.approx(0.0, abs=1e-9)


def test_five_pairs_can_never_reach_five_percent():
    assert stats.wilcoxon_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 2**5)
    assert stats.wilcoxon_p([0.0, 0.0]) == 1.0
    assert stats.wilcoxon_p([]) is None


def test_a_selection_rule_keeps_the_groups_that_meet_it_and_takes_the_lowest():
    def run(group, seed, tc, alive):
        return {"group": group, "seed": seed, "status": "finished",
                "metrics": {"tc": tc, "alive": alive}}

    record = {
        "study": {"name": "sweep", "seeds": [0, 1]},
        "runs": [run("weak", 0, 0.9, 5), run("weak", 1, 0.7, 5),
                 run("strong", 0, 0.1, 5), run("strong", 1, 0.2, 3),  # one seed lost codes
                 run("middle", 0, 0.5, 5), run("middle", 1, 0.4, 5),
                 run("partial", 0, 0.0, 5)],
        "summary": {"weak": {"tc": {"mean": 0.8}}, "strong": {"tc": {"mean": 0.15}},
                    "middle": {"tc": {"mean": 0.45}}, "partial": {"tc": {"mean": 0.0}}},
    }
    groups = ["weak", "strong", "middle", "partial"]
    assert studies.select(record, groups, "tc", most="alive") == "middle"
    assert studies.select(record, groups, "tc") == "strong"  # "partial" lacks a seed
    assert studies.select(record, ["strong"], "tc", most="alive") == "strong"
    with pytest.raises(ValueError, match="No group has finished every seed: partial 1 of 2"):
        studies.select(record, ["partial"], "tc")
    with pytest.raises(ValueError, match="No group 'other'"):
        studies.select(record, ["other"], "tc")


def test_the_median_seed_traversal_of_each_group_is_copied_beside_the_results(tmp_path):
    def run(group, seed, score, figure=True):
        folder = tmp_path / "runs" / f"{group}{seed}"
        folder.mkdir(parents=True)
        if figure:
            (folder / "traversal.png").write_bytes(f"{group} seed {seed}".encode())
        return {"group": group, "seed": seed, "status": "finished", "run_dir": str(folder),
                "metrics": {"z": score}}

    record = {
        "study": {"groups": {"gan": {}, "vae": {}, "supervised": {}}},
        "runs": [run("gan", 0, 0.9), run("gan", 1, 0.5), run("gan", 2, 0.7),
                 run("vae", 0, 0.2), run("vae", 1, 0.4),  # two seeds: the lower middle one
                 {**run("vae", 2, 0.3), "status": "failed"},
                 run("supervised", 0, 0.5, figure=False)],
    }
    found = studies.collect_traversals(record, tmp_path / "results" / "study_x_traversals", "z")
    assert found == {"gan": {"seed": 2, "z": 0.7, "file": "study_x_traversals/gan.png"},
                     "vae": {"seed": 0, "z": 0.2, "file": "study_x_traversals/vae.png"}}
    copied = tmp_path / "results" / found["gan"]["file"]
    assert copied.read_bytes() == b"gan seed 2"


def test_the_reaper_ends_the_ray_processes_it_saw_and_spares_the_rest():
    package = Path(sys.executable).parent  # stands for the Ray package's folder
    watcher = reaper.start(package)
    time.sleep(2 * reaper.POLL + 1.0)  # the reaper is up and looking
    sleep = ["-c", "import time; time.sleep(120)"]
    ray_like = subprocess.Popen([sys.executable, *sleep])  # a program under that folder
    other = subprocess.Popen([shutil.which("sleep"), "120"])
    try:
        time.sleep(4 * reaper.POLL)  # seen at least once
        reaper.stop(watcher)
        assert ray_like.wait(timeout=10) is not None
        assert other.poll() is None, "the reaper ended a process that is not Ray's"
    finally:
        for process in (ray_like, other):
            process.kill()
            process.wait()


def test_a_finished_run_read_back_is_flagged_by_todays_rule():
    # AnnealedVAE's total rises with its capacity while it learns: flagged "diverged" by the
    # rule it was scored under, cleared by today's, which reads its reconstruction.
    logged = {"steps": [0, 1], "terms": {"total": [662.0, 874.0],
                                          "reconstruction": [282.0, 155.0],
                                          "capacity": [1.9, 25.0]}}
    scored = {"metrics": {}, "flags": ["diverged"]}
    assert studies.current_flags(vae.FAMILY, scored, logged) == []
    assert studies.current_flags(vae.FAMILY, scored, None) == ["diverged"]
