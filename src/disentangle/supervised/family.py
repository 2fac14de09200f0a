"""The supervised family's record (:data:`FAMILY`, the one line :mod:`disentangle.registry`
lists) and its entry points: :func:`load_or_train`, which the chapters call (a finished run of the
same settings and code is loaded, anything else trained), and :func:`run`, one complete run
through the shared skeleton (:func:`disentangle.family.run`)."""

from __future__ import annotations

from pathlib import Path

import torch

from disentangle import config, critics, family, runs, train
from disentangle.data.labelled import LabelledData
from disentangle.data.registry import LABELLED
from disentangle.supervised.evaluation import evaluate_model, flags, metric_names
from disentangle.supervised.networks import VIB, DisenIB, DisTIB
from disentangle.supervised.settings import SupervisedSettings
from disentangle.supervised.training import load, training_parts

#: The shared files a supervised run's training depends on, besides its own package's.
SHARED = ("data", "nets.py", "losses.py", "train.py", "settings.py", "family.py")
FAMILY = family.Family(
    name="supervised",
    settings=SupervisedSettings,
    load=load,
    build=training_parts,
    evaluate=lambda model, labelled, run, profile: evaluate_model(model, labelled, run.seed),
    metrics=metric_names,
    sources=SHARED + ("supervised/settings.py", "supervised/networks.py",
                      "supervised/objectives.py", "supervised/training.py"),
    evaluation_sources=("supervised/evaluation.py", "estimators.py"),
    data=LABELLED,
    # The flags of the scores, and whether DisenIB's estimator learned (critics.py).
    flags=lambda scores, history: (flags(scores, history)
                                   + critics.estimator_flags(scores, history.terms)),
)


def fit_model(
    run: SupervisedSettings, labelled: LabelledData, device: str | torch.device,
    progress: bool = True,
) -> tuple[DisTIB | VIB | DisenIB, train.History]:
    """Train the run's model on ``labelled`` in memory (no folder, nothing saved): for a chapter
    that sweeps a setting and keeps only the scores."""
    parts = training_parts(run, labelled, device)
    history = family.fit(parts, run.steps, progress=progress,
                         description=f"{run.model} on {labelled.name}")
    return parts.model, history


def settings_for(
    model_name: str,
    dataset: str,
    label: str | None = None,
    profile: str | None = None,
    seed: int = 0,
    **overrides,
) -> SupervisedSettings:
    """The settings of a run: the profile's, with ``label`` (None: the data's natural label) and
    any other setting by name (``preset`` names a preset)."""
    chosen = {"label": label} if label is not None else {}
    return SupervisedSettings.for_profile(
        config.resolve_profile(profile), model=model_name, data=dataset, seed=seed,
        **chosen, **overrides,
    )


def load_or_train(
    model_name: str = "distib",
    dataset: str = "dsprites-style",
    label: str | None = None,
    profile: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    load_stale: bool = False,
    **overrides,
) -> family.Trained:
    """The model of the run with these settings (:func:`settings_for`; ``overrides`` names any
    setting, such as ``beta=0.01`` or ``activation="elu"``), from its folder in the run store
    (default :func:`disentangle.runs.default_dir`, where ``python -m disentangle train`` writes):
    loaded when the folder holds the finished run of the same settings and code, trained (or
    resumed) otherwise. A stale run (other code) is trained again unless ``load_stale``. The model
    comes back on the device in eval mode, with its data (``.data``)."""
    profile = config.resolve_profile(profile)
    settings = settings_for(model_name, dataset, label, profile, seed, **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    return family.train_run(FAMILY, settings, profile, out, config.get_device(device),
                            progress=progress, load_stale=load_stale)


def run(
    model_name: str,
    dataset: str,
    label: str | None = None,
    profile: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    load_stale: bool = False,
    **overrides,
) -> dict:
    """One complete run (:func:`disentangle.family.run`): train or load, score, and write
    ``metrics.json`` and ``history.json`` to the run's folder; returns the result, whose
    ``metrics`` are :func:`evaluate_model`'s."""
    profile = config.resolve_profile(profile)
    settings = settings_for(model_name, dataset, label, profile, seed, **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    return family.run(FAMILY, settings, profile, out, config.get_device(device),
                      progress=progress, load_stale=load_stale)[1]
