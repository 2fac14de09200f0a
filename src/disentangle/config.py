"""Profiles, devices, seeds and the environment record that every result carries.

A *profile* sets the size of a run. The same notebook runs as

- ``smoke``: every code path on tiny data, seconds per chapter (what CI runs);
- ``cpu``: real but small results on a 2-core laptop (``book/running.md`` has each chapter's time);
- ``gpu``: paper-scale runs on one H100-class GPU.

The profile in force is decided, in this order, by an explicit argument (a notebook's papermill
``PROFILE`` parameter), the environment variable ``DISENTANGLE_PROFILE``, and finally the hardware:
``gpu`` when CUDA is available, else ``cpu``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import random
import subprocess
import warnings
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
PROFILE_ENV = "DISENTANGLE_PROFILE"
DEVICE_ENV = "DISENTANGLE_DEVICE"
CACHE_ENV = "DISENTANGLE_CACHE"
DRY_RUN_ENV = "DISENTANGLE_DRY_RUN"
#: Training steps and batch size of every run in a dry run of the gpu profile: bf16 convolutions
#: on a CPU without bf16 units take minutes per step at the gpu profile's batches.
DRY_RUN_STEPS = 2
DRY_RUN_BATCH = 8

T = TypeVar("T")


class ProfileError(ValueError):
    """An unknown profile name."""


def _check_profile(name: str, source: str) -> str:
    cleaned = name.strip().lower()
    if cleaned not in PROFILES:
        raise ProfileError(
            f"Unknown profile {name!r} (from {source}). "
            f"Valid profiles are: {', '.join(PROFILES)}."
        )
    return cleaned


def resolve_profile(profile: str | None = None) -> str:
    """Return the profile in force: ``profile`` if given, else ``$DISENTANGLE_PROFILE``, else auto.

    Auto means ``gpu`` when CUDA is available and ``cpu`` otherwise. An unknown name raises
    :class:`ProfileError` listing the valid ones. An empty string counts as not given, so a
    notebook parameter or an environment variable set to ``""`` falls through to the next rule.
    """
    if profile:
        return _check_profile(profile, "the PROFILE argument")
    from_env = os.environ.get(PROFILE_ENV, "")
    if from_env.strip():
        return _check_profile(from_env, f"the environment variable {PROFILE_ENV}")
    return "gpu" if torch.cuda.is_available() else "cpu"


def dry_run() -> bool:
    """Whether ``$DISENTANGLE_DRY_RUN`` asks for a dry run of the gpu profile: its path (networks,
    batch sizes, data pipeline, bf16 autocast, ``torch.compile``) with every size capped, so that
    it runs in seconds on a CPU (the tests' way of keeping the GPU path from rotting unseen)."""
    return os.environ.get(DRY_RUN_ENV, "").strip().lower() in ("1", "true", "yes")


def by_profile(profile: str, *, smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for ``profile``: ``by_profile(p, smoke=256, cpu=5_000, gpu=100_000)``.

    Keyword-only, so every chapter states all three sizes side by side. In a dry run
    (:func:`dry_run`) the gpu profile takes the smoke value: sizes, not paths, are what it caps.
    """
    chosen = _check_profile(profile, "by_profile")
    if chosen == "gpu" and dry_run():
        return smoke
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[chosen]


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the torch device to run on: ``device`` if given, else ``$DISENTANGLE_DEVICE``, else
    ``cuda`` when available, else ``cpu``.

    Asking for CUDA on a machine without it raises an error that says how to fall back.
    """
    source, requested = "the device argument", device
    if requested is None and os.environ.get(DEVICE_ENV, "").strip():
        source, requested = f"the environment variable {DEVICE_ENV}", os.environ[DEVICE_ENV].strip()
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(requested)
    except RuntimeError:
        raise ValueError(
            f"Unknown device {requested!r} (from {source}): use 'cpu', 'cuda' or 'cuda:N'."
        ) from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Device {requested!r} (from {source}) was asked for, but this PyTorch build sees no "
            f"CUDA GPU (torch {torch.__version__}). Ask for 'cpu' instead."
        )
    return chosen


def checks_claims(profile: str) -> bool:
    """Whether a chapter asserts its claims in ``profile``: in cpu and gpu, not in smoke (seconds
    of training) nor in a dry run of the gpu profile, which takes smoke's values."""
    return by_profile(profile, smoke=False, cpu=True, gpu=True)


def learns(profile: str) -> bool:
    """Whether runs in ``profile`` train long enough to learn anything, so that a chapter's
    sanity checks of learning apply: in every profile but a dry run (:func:`dry_run`)."""
    return not (resolve_profile(profile) == "gpu" and dry_run())


def warn_if_mismatched(profile: str, device: torch.device) -> None:
    """Warn when the gpu profile is about to run on a CPU: it is correct, but hours slow (a dry
    run is meant to)."""
    if profile == "gpu" and device.type != "cuda" and not dry_run():
        warnings.warn(
            "The gpu profile is running without a GPU; it will be very slow. "
            "Use the cpu profile on this machine (PROFILE='cpu' or DISENTANGLE_PROFILE=cpu).",
            stacklevel=2,
        )


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global state and torch (CPU and every GPU).

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed``, which is what new code should
    draw from. On a CPU, runs seeded this way are repeatable bit for bit.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return np.random.default_rng(seed)


def data_dir() -> Path:
    """The ``data/`` folder of the repository this library is installed from (editable
    installs), else ``~/.cache/disentangle``: where real datasets are placed and caches kept."""
    repository = Path(__file__).resolve().parents[2]
    if (repository / "pyproject.toml").exists() and (repository / "data").is_dir():
        return repository / "data"
    return Path.home() / ".cache" / "disentangle"


def cache_dir() -> Path:
    """Where generated data (rendered dataset grids) are cached: ``$DISENTANGLE_CACHE`` if set,
    else ``cache/`` inside :func:`data_dir` (git-ignored in the repository)."""
    if os.environ.get(CACHE_ENV, "").strip():
        return Path(os.environ[CACHE_ENV]).expanduser()
    return data_dir() / "cache"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_revision(path: str | Path | None = None) -> str | None:
    """The git commit of the checkout that holds ``path`` (default: this library), with ``-dirty``
    appended when tracked files have uncommitted changes; ``None`` outside a git checkout."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The processor's model name (from ``/proc/cpuinfo`` on Linux, else what the platform
    says): two machines of one model give the same numbers for the same code and seed, two of
    different models within the seeds' spread but not bit for bit."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str | torch.device | None = None) -> dict:
    """A small record of where a result came from, for results files: library versions, Python,
    platform, device (with the GPU's name), git revision and a UTC timestamp."""
    dev = get_device(device)
    return {
        "disentangle": _version("disentangle"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "scikit-learn": _version("scikit-learn"),
        "matplotlib": _version("matplotlib"),
        "device": str(dev),
        "device_name": (
            torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.machine()
        ),
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "git_revision": git_revision(),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
