"""How the supervised family trains: labelled data on the device, the model its settings describe
(DisTIB, the two-step method, VIB or DisenIB), its loss, its optimizer and its step
(:func:`training_parts`, which runs and the benchmark share)."""

from __future__ import annotations

import torch

from disentangle import config, train
from disentangle.data.labelled import LabelledData, load_labelled
from disentangle.family import Trainable
from disentangle.supervised import objectives
from disentangle.supervised.networks import VIB, DisenIB, DisTIB
from disentangle.supervised.settings import SupervisedSettings

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
    (:func:`~disentangle.supervised.objectives.distib_loss`, also the two-step method's), VIB's
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
) -> Trainable:
    """Everything a supervised run trains with, the book's way: the model, its optimizer (in the
    checkpoint's ``state``), the step (on a model compiled on CUDA where the compiler works) and
    batches drawn on the device. Runs and the benchmark share it."""
    device = config.get_device(device)
    config.seed_everything(run.seed)
    # Channels-last weights (a no-op for the MLPs): faster convolutions on the CPU, gradients equal
    # to the contiguous layout's up to float rounding, and the layout cuDNN prefers.
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
    return Trainable(
        model, step, batches,
        state={"model": model, "optimizer": optimizer},
        generators={"batches": batches.generator},
        log_every=max(min(50, run.steps // 10), 1),
        # Four checkpoints a run; one of fewer than four steps (a dry run's) only at its end.
        checkpoint_every=run.steps // 4 or None,
    )


def load(run: SupervisedSettings, profile: str, device: torch.device) -> LabelledData:
    """The labelled data a run of ``run`` trains and is tested on, in ``profile``."""
    return load_labelled(run.data, run.label, profile, run.seed, device)
