"""Fault injection: a run killed outright (SIGKILL, nothing to catch) at random moments, several
times, and resumed each time, ends with the weights, optimizer state and scores of a twin that
was never interrupted, bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from disentangle import train

ROOT = Path(__file__).resolve().parents[1]
#: Enough steps that a kill lands inside training, and checkpoints every 50 (steps // 4).
ARGV = ["train", "vib", "--data", "digits", "--profile", "smoke", "--quiet",
        "--set", "steps=200"]


def _train(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "disentangle", *ARGV, "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _scores(out: Path) -> dict:
    result = json.loads((out / "metrics.json").read_text())
    return {"metrics": result["metrics"], "flags": result["flags"]}


def _same(found, expected, where: str) -> None:
    """Bit for bit: every tensor equal, every other value equal, in nested containers."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(found, expected), where
    elif isinstance(expected, dict):
        assert set(found) == set(expected), where
        for key in expected:
            _same(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(found) == len(expected), where
        for i, (a, b) in enumerate(zip(found, expected)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert found == expected, where


def test_half_written_files_of_a_dead_process_are_cleared_when_the_folder_is_opened(tmp_path):
    from disentangle import runs, supervised

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    tmp_path.mkdir(exist_ok=True)
    left = [tmp_path / f"checkpoint.{dead}.partial", tmp_path / f".metrics.json.{dead}.tmp"]
    for path in left:
        path.write_bytes(b"half")
    ours = tmp_path / f".history.json.{os.getpid()}.tmp"  # a live writer's file
    ours.write_bytes(b"half")
    chosen = supervised.settings_for("vib", "digits", profile="smoke", steps=2)
    runs.open_run(tmp_path, chosen, "smoke", "supervised", "code")
    assert not any(path.exists() for path in left) and ours.exists()


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_its_uninterrupted_twin(tmp_path):
    twin = tmp_path / "twin"
    process = _train(twin)
    while not (twin / "run.json").exists() and process.poll() is None:
        time.sleep(0.01)
    claimed = time.time()
    assert process.wait(timeout=600) == 0
    # The moments are drawn from the first half of what an uninterrupted run does after
    # claiming its folder, on this machine, so that a kill lands however fast it is.
    window = 0.5 * (time.time() - claimed)
    out = tmp_path / "killed"
    moments = random.Random(0)
    kills = 0
    for _ in range(3):
        process = _train(out)
        # Once the run has claimed its folder, it loads, builds and trains: kill it at a
        # random moment of that.
        deadline = time.time() + 120
        while not (out / "run.json").exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(moments.uniform(0.0, window))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
        if (out / "metrics.json").exists():
            break  # it finished before this kill
    assert kills >= 1, "no kill landed while the run was alive"
    process = _train(out)
    assert process.wait(timeout=600) == 0, process.stderr.read()[-2000:]
    finished = train.load_payload(out / train.CHECKPOINT)
    expected = train.load_payload(twin / train.CHECKPOINT)
    assert finished["step"] == expected["step"] == 200
    _same(finished["state"], expected["state"], "state")
    assert _scores(out) == _scores(twin)
    assert not list(out.glob("*.partial")) and not list(out.glob(".*.tmp"))  # none left over
