"""The supervised family, DisTIB and its baselines (the two-step method, VIB, DisenIB): from
settings to a trained model and ``metrics.json``.

A run loads labelled data (:func:`disentangle.data.load_labelled`) onto the device, builds the
model its settings (:class:`~disentangle.settings.SupervisedSettings`) describe, trains it with the
book's loop in a folder of the run store (:mod:`disentangle.runs`), and evaluates what its codes
hold (:func:`disentangle.codes.evaluate_model`). :func:`load_or_train` is what the chapters call:
a finished run of the same settings and code is loaded, anything else is trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from disentangle import codes, config, objectives, runs, train
from disentangle.data.labelled import LabelledData, load_labelled
from disentangle.models import VIB, DisenIB, DisTIB
from disentangle.settings import SupervisedSettings

Model = DisTIB | VIB | DisenIB


def build_model(run: SupervisedSettings, labelled: LabelledData) -> Model:
    """The run's model (DisTIB, the two-step method, VIB or DisenIB) with its networks, sized for
    the data the run was set up for."""
    if (run.data, run.label) != (labelled.name, labelled.label):
        raise ValueError(
            f"The settings are for {run.data} (label {run.label}) but the data are "
            f"{labelled.name} (label {labelled.label}); pass data= and label= to "
            "SupervisedSettings.for_profile."
        )
    networks = dict(encoder=run.encoder, hidden=run.hidden, depth=run.depth, width=run.width,
                    activation=run.activation)
    shape, classes = labelled.image_shape, labelled.num_classes
    if run.model == "vib":
        return VIB(shape, classes, dim_z=run.dim_a, separate=run.separate, **networks)
    two_codes = dict(dim_a=run.dim_a, dim_z=run.dim_z, decoder=run.decoder,
                     likelihood=run.likelihood, **networks)
    if run.model == "disenib":
        return DisenIB(shape, classes, **two_codes)
    return DisTIB(shape, classes, separate=run.separate,
                  decoder_trains_a=run.model == "distib", **two_codes)


#: DisenIB's warm-up: the fraction of its steps before I(S; T) reaches the encoders.
DISENIB_WARMUP = 0.1


def loss_for(run: SupervisedSettings, model: Model) -> train.LossFn:
    """The loss function ``(model, batch) -> terms`` of the run's model: DisTIB's bound
    (:func:`objectives.distib_loss`, also the two-step method's), VIB's
    (:func:`objectives.vib_loss`) or DisenIB's (:func:`objectives.disenib_loss`, after a warm-up
    of :data:`DISENIB_WARMUP` of the steps without I(S; T))."""
    if run.model == "vib":
        return lambda m, batch: objectives.vib_loss(m(batch[0]), batch[1], run.beta)
    if run.model == "disenib":
        warmup = int(DISENIB_WARMUP * run.steps)

        def disenib(m: DisenIB, batch: train.Batch) -> dict:
            m.batches_seen += 1
            on = float(m.batches_seen.item() > warmup)
            return objectives.disenib_loss(m(batch[0], batch[1]), batch[0], batch[1], m.critic,
                                           model.likelihood, run.reconstruction_weight, on)

        return disenib
    return lambda m, batch: objectives.distib_loss(
        m(batch[0]), batch[0], batch[1], run.beta, model.likelihood, run.reconstruction_weight
    )


def training_parts(
    run: SupervisedSettings, labelled: LabelledData, device: str | torch.device
) -> tuple[Model, torch.optim.Optimizer, train.StepFn, train.TensorBatches]:
    """Everything a supervised run trains with, the book's way: the model, its optimizer, the
    step (on a model compiled on CUDA where the compiler works) and batches drawn on the device.
    :func:`fit_model` and the benchmark share it."""
    device = config.get_device(device)
    config.seed_everything(run.seed)
    # Channels-last weights (a no-op for the MLPs): a conv model's step runs about 1.3x faster on
    # the CPU, with gradients equal to the contiguous layout's up to float rounding (2e-6), and the
    # layout is the one cuDNN prefers.
    model = build_model(run, labelled).to(device, memory_format=torch.channels_last)
    # DisenIB trains a critic against its encoders, with the GAN's momentum (as its paper does).
    betas = (0.5, 0.999) if run.model == "disenib" else (0.9, 0.999)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=train.scaled_lr(run.lr, run.batch_size, 128), betas=betas
    )
    batches = train.TensorBatches(
        labelled.x_train, labelled.y_train, batch_size=run.batch_size, seed=run.seed
    )
    network = model
    if train.accelerated(device) and run.model != "disenib":  # DisenIB's forward takes labels
        # The GPU path compiles the model where the compiler works and trains eagerly where not.
        example = labelled.x_train[torch.arange(min(run.batch_size, 64), device=device)]
        network = train.compile_or_fallback(model, example)
    step = train.gradient_step(network, loss_for(run, model), optimizer, device)
    return model, optimizer, step, batches


def fit_model(
    run: SupervisedSettings,
    labelled: LabelledData,
    device: str | torch.device,
    out_dir: str | Path | None = None,
    progress: bool = True,
    load_stale: bool = False,
) -> tuple[Model, train.History]:
    """Train the run's model on ``labelled`` with the book's loop. With ``out_dir``, the folder is
    opened in the run store (:func:`runs.open_run`: a stale run is set aside, other settings are
    refused) and training resumes from its checkpoint; a finished run trains no further."""
    if out_dir is not None:
        runs.open_run(out_dir, run, labelled.profile, load_stale=load_stale)
    model, optimizer, step, batches = training_parts(run, labelled, device)
    history = train.fit(
        step,
        batches,
        run.steps,
        state={"model": model, "optimizer": optimizer},
        generators={"batches": batches.generator},
        out_dir=out_dir,
        # Four checkpoints a run; one of fewer than four steps (a dry run's) only at its end.
        checkpoint_every=(run.steps // 4 or None) if out_dir else None,
        log_every=max(min(50, run.steps // 10), 1),
        progress=progress,
        description=f"{run.model} on {labelled.name}",
    )
    model.eval()
    return model, history


def settings_for(
    model_name: str,
    dataset: str,
    label: str | None = None,
    profile: str | None = None,
    seed: int = 0,
    **overrides,
) -> SupervisedSettings:
    """The settings of a run: the profile's, with ``label`` (None: the data's natural label) and
    any other setting by name."""
    chosen = {"label": label} if label is not None else {}
    return SupervisedSettings.for_profile(
        config.resolve_profile(profile), model=model_name, data=dataset, seed=seed,
        **chosen, **overrides,
    )


@dataclass
class TrainedModel:
    """A trained model with the data it was trained and tested on, its settings and history, the
    folder of its run, and whether this call trained it (``trained``) or loaded a finished run."""

    model: Model
    history: train.History
    labelled: LabelledData
    settings: SupervisedSettings
    out_dir: Path
    trained: bool


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
) -> TrainedModel:
    """The model of the run with these settings (:func:`settings_for`; ``overrides`` names any
    setting, such as ``beta=0.01`` or ``activation="elu"``), from its folder in the run store
    (default :func:`runs.default_dir`, where ``python -m disentangle train`` writes): loaded when
    the folder holds the finished run of the same settings and code, trained (or resumed)
    otherwise. A stale run (other code) is trained again unless ``load_stale``. The model comes
    back on the device in eval mode."""
    profile = config.resolve_profile(profile)
    dev = config.get_device(device)
    settings = settings_for(model_name, dataset, label, profile, seed, **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    labelled = load_labelled(settings.data, settings.label, profile, seed, dev)
    model, history = fit_model(settings, labelled, dev, out, progress, load_stale)
    trained = history.resumed_from < settings.steps
    return TrainedModel(model, history, labelled, settings, out, trained=trained)


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
    """One complete run: train (or load, as :func:`load_or_train`), evaluate, and write
    ``metrics.json`` and ``history.json`` to the run's folder; returns the metrics, which record
    the settings actually trained and the code fingerprints of the training and evaluation."""
    started = time.perf_counter()
    found = load_or_train(model_name, dataset, label, profile, seed, out_dir, device, progress,
                          load_stale, **overrides)
    held = runs.read_record(found.out_dir)
    metrics = {
        "model": model_name,
        "data": dataset,
        "label": found.labelled.label,
        "profile": found.labelled.profile,
        "seed": seed,
        "settings": found.settings.as_dict(),
        "fingerprint": held["fingerprint"],
        "evaluation_fingerprint": runs.evaluation_fingerprint("supervised"),
        "run_dir": str(found.out_dir),
        **codes.evaluate_model(found.model, found.labelled, seed),
        "train_seconds": found.history.seconds,
        "wall_seconds": time.perf_counter() - started,
        "environment": config.environment(next(found.model.parameters()).device),
    }
    train.save_run(found.out_dir, metrics, found.history)
    return metrics
