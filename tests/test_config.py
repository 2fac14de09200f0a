import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from disentangle import config


@pytest.fixture
def no_profile_env(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)


def test_explicit_argument_beats_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "cpu")
    assert config.resolve_profile("gpu") == "gpu"
    assert config.resolve_profile("smoke") == "smoke"


def test_environment_beats_automatic(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    assert config.resolve_profile(None) == "smoke"


@pytest.mark.parametrize("cuda, expected", [(True, "gpu"), (False, "cpu")])
def test_automatic_follows_cuda(monkeypatch, no_profile_env, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert config.resolve_profile() == expected


def test_empty_values_fall_through(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(config.PROFILE_ENV, "")
    assert config.resolve_profile("") == "cpu"


def test_names_are_case_and_space_insensitive():
    assert config.resolve_profile(" GPU ") == "gpu"


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_unknown_profile_lists_valid_ones(monkeypatch, source):
    if source == "environment":
        monkeypatch.setenv(config.PROFILE_ENV, "laptop")
        call = lambda: config.resolve_profile(None)  # noqa: E731
    else:
        call = lambda: config.resolve_profile("laptop")  # noqa: E731
    with pytest.raises(config.ProfileError) as err:
        call()
    message = str(err.value)
    assert "'laptop'" in message
    assert "smoke, cpu, gpu" in message
    assert (config.PROFILE_ENV in message) == (source == "environment")


def test_by_profile_picks_and_validates():
    assert config.by_profile("cpu", smoke=1, cpu=2, gpu=3) == 2
    with pytest.raises(config.ProfileError, match="smoke, cpu, gpu"):
        config.by_profile("fast", smoke=1, cpu=2, gpu=3)
    with pytest.raises(TypeError):
        config.by_profile("cpu", smoke=1, cpu=2)  # every profile must be given


def test_device_selection(monkeypatch):
    monkeypatch.delenv(config.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.get_device() == torch.device("cpu")
    assert config.get_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        config.get_device("cuda")
    with pytest.raises(ValueError, match="Unknown device 'tpu7'"):
        config.get_device("tpu7")
    monkeypatch.setenv(config.DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match=config.DEVICE_ENV):
        config.get_device()


def test_gpu_profile_on_cpu_warns():
    with pytest.warns(UserWarning, match="without a GPU"):
        config.warn_if_mismatched("gpu", torch.device("cpu"))


def _draw(seed):
    rng = config.seed_everything(seed)
    return random.random(), np.random.rand(), torch.rand(3).tolist(), rng.random()


def test_seeding_repeats_every_generator():
    assert _draw(7) == _draw(7)
    assert _draw(7) != _draw(8)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(seed)


def test_environment_record_is_json_and_complete():
    record = config.environment("cpu")
    json.dumps(record)
    for key in ("disentangle", "torch", "numpy", "scikit-learn", "device", "git_revision"):
        assert key in record
    assert record["device"] == "cpu"
    assert record["torch"] == torch.__version__


def test_git_revision_outside_a_checkout(tmp_path):
    assert config.git_revision(tmp_path) is None


def test_command_line_env(monkeypatch):
    out = subprocess.run(
        [sys.executable, "-m", "disentangle", "env", "--profile", "cpu", "--device", "cpu"],
        capture_output=True, text=True, check=True,
    )
    record = json.loads(out.stdout)
    assert record["profile"] == "cpu" and record["device"] == "cpu"


def test_command_line_reports_bad_profile_without_traceback(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "huge")
    out = subprocess.run(
        [sys.executable, "-m", "disentangle", "env"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "Unknown profile 'huge'" in out.stderr
    assert "Traceback" not in out.stderr
