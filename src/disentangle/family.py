"""A model family as one record, and the one skeleton every run of every family goes through.

A family (a package: :mod:`disentangle.supervised`, :mod:`disentangle.gan`,
:mod:`disentangle.vae`) describes itself with a :class:`Family`: its settings class, how a run
loads its data, how it builds what it trains, how it scores a trained model, the metric names it
reports, and the source files whose bytes make its code fingerprint. :mod:`disentangle.registry`
lists the families; the command line, the run store and the studies read that list and never
name a family.

:func:`run` is the skeleton, the same for all: the profile is resolved once by the caller; the run
store opens the folder (:func:`disentangle.runs.open_run`: a stale run is set aside, other
settings refused); the family loads the data and builds the model, its optimizers, its step and
its batches (:class:`Trainable`); :func:`disentangle.train.fit` trains or resumes; a finished
run whose recorded result is current is read back, otherwise the family scores the model and the
result is written, every family's in one shape (:func:`result`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from disentangle import config, runs, train
from disentangle.settings import Settings


@dataclass
class Trainable:
    """What one run trains: the ``model``, the ``step`` :func:`train.fit` calls on each batch,
    ``batches`` (a callable returning the next batch), the modules and optimizers a checkpoint
    holds (``state``) with the random generators the batches come from (``generators``), and how
    often the loop logs and checkpoints."""

    model: nn.Module
    step: train.StepFn
    batches: Callable[[], train.Batch]
    state: dict[str, Any]
    generators: dict[str, torch.Generator]
    log_every: int
    checkpoint_every: int | None


@dataclass(frozen=True)
class Family:
    """One model family, everything the shared machinery needs of it:

    - ``name`` and ``settings``, its settings class (whose ``MODELS`` are the family's models);
    - ``load(settings, profile, device)``: the data a run trains and is scored on;
    - ``build(settings, data, device)``: the :class:`Trainable` of a run;
    - ``evaluate(model, data, settings, profile)``: the scores of a trained model (a dict of
      numbers, nested dicts of numbers allowed), everything it reports and nothing about files;
    - ``metrics(model)``: the top-level names ``evaluate`` reports for a model of the family;
    - ``sources`` and ``evaluation_sources``: the files (or folders) under the package
      ``disentangle`` whose bytes define what a run trains and how it is scored
      (:func:`disentangle.runs.fingerprint`);
    - ``figure(model, settings, out)``: an optional figure a finished run writes to its folder;
    - ``flags(scores, history)``: optional, what marks a run whose scores cannot be read at face
      value (such as ``near_chance`` or ``diverged``); a run's ``metrics.json`` and every study
      that includes it list them.
    """

    name: str
    settings: type[Settings]
    load: Callable[[Any, str, torch.device], Any]
    build: Callable[[Any, Any, torch.device], Trainable]
    evaluate: Callable[[Any, Any, Any, str], dict]
    metrics: Callable[[str], tuple[str, ...]]
    sources: tuple[str, ...]
    evaluation_sources: tuple[str, ...]
    figure: Callable[[Any, Any, Path], None] | None = None
    flags: Callable[[dict, train.History], list[str]] | None = None
    #: Data sets its models can train on (the settings class checks the same list).
    data: tuple[str, ...] = field(default=())

    @property
    def models(self) -> tuple[str, ...]:
        return self.settings.MODELS

    def fingerprint(self) -> str:
        """The fingerprint of the code that trains a run of this family."""
        return runs.fingerprint(self.sources)

    def evaluation_fingerprint(self) -> str:
        """The fingerprint of the code that scores a run of this family."""
        return runs.fingerprint(self.evaluation_sources)


@dataclass
class Trained:
    """A trained (or loaded) run: the model in eval mode, its history, the data it saw, its
    settings, its folder, and whether this call trained it (``trained``) or it was finished."""

    model: nn.Module
    history: train.History
    data: Any
    settings: Settings
    out_dir: Path
    trained: bool


def fit(
    parts: Trainable, steps: int, *, out: Path | None = None, progress: bool = True,
    description: str = "training",
) -> train.History:
    """Train ``parts`` for ``steps`` steps with :func:`disentangle.train.fit`, checkpointing in
    ``out`` (and resuming from it) when a folder is given; the model ends in eval mode."""
    history = train.fit(
        parts.step, parts.batches, steps,
        state=parts.state,
        generators=parts.generators,
        out_dir=out,
        checkpoint_every=parts.checkpoint_every if out is not None else None,
        log_every=parts.log_every,
        progress=progress,
        description=description,
    )
    parts.model.eval()
    return history


def train_run(
    family: Family,
    settings: Settings,
    profile: str,
    out: Path,
    device: torch.device,
    *,
    progress: bool = True,
    load_stale: bool = False,
) -> Trained:
    """Open ``out`` in the run store, load the data, build, and train (or resume, or find
    finished) the run of ``settings``; the model comes back in eval mode."""
    runs.open_run(out, settings, profile, family.name, family.fingerprint(),
                  load_stale=load_stale)
    data = family.load(settings, profile, device)
    parts = family.build(settings, data, device)
    history = fit(parts, settings.steps, out=out, progress=progress,
                  description=f"{settings.model} on {settings.data}")
    trained = history.resumed_from < settings.steps
    return Trained(parts.model, history, data, settings, out, trained)


def result(
    family: Family, trained: Trained, profile: str, scores: dict, started: float,
    device: torch.device,
) -> dict:
    """A finished run's ``metrics.json``, the same shape for every family: what ran (model,
    data, profile, seed, every setting), by which code (both fingerprints), where, its ``metrics``
    (the family's scores) and its ``flags``, how long it took and on what."""
    settings = trained.settings
    return {
        "model": settings.model,
        "data": settings.data,
        "profile": profile,
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "family": family.name,
        "fingerprint": runs.read_record(trained.out_dir)["fingerprint"],
        "evaluation_fingerprint": family.evaluation_fingerprint(),
        "run_dir": str(trained.out_dir),
        "metrics": scores,
        "flags": family.flags(scores, trained.history) if family.flags else [],
        "train_seconds": trained.history.seconds,
        "wall_seconds": time.perf_counter() - started,
        "environment": config.environment(device),
    }


def loss_rose(history: train.History, term: str = "total") -> bool:
    """Whether a run's loss diverged while staying finite: its last logged ``term`` is above its
    first (the loop refuses a loss that is not finite)."""
    values = history.terms.get(term, [])
    return len(values) > 1 and values[-1] > values[0]


def run(
    family: Family,
    settings: Settings,
    profile: str,
    out: Path,
    device: torch.device,
    *,
    progress: bool = True,
    load_stale: bool = False,
) -> tuple[Trained, dict]:
    """One complete run of ``settings`` in ``out`` (the skeleton): train or resume
    (:func:`train_run`), then score, unless the folder's recorded result is current
    (:func:`disentangle.runs.current_result`). Writes ``metrics.json``, ``history.json`` and the
    family's figure; returns the trained run and its result."""
    started = time.perf_counter()
    trained = train_run(family, settings, profile, out, device, progress=progress,
                        load_stale=load_stale)
    recorded = runs.current_result(out, settings, profile, family.fingerprint(),
                                    family.evaluation_fingerprint())
    if recorded is not None and not trained.trained:
        return trained, recorded
    scores = family.evaluate(trained.model, trained.data, settings, profile)
    finished = result(family, trained, profile, scores, started, device)
    train.save_run(out, finished, trained.history)
    if family.figure is not None:
        family.figure(trained.model, settings, out)
    return trained, finished
