"""How the supervised family trains: labelled data on the device, the model its settings describe
(DisTIB, the two-step method, VIB or DisenIB), its loss, its optimizer and its step
(:func:`training_parts`, which runs and the benchmark share)."""

from __future__ import annotations

import dataclasses

import torch

from disentangle import config, train
from disentangle.data.labelled import LabelledData, Rows, load_labelled
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
    two_codes = dict(dim_a=run.dim_a, dim_z=run.dim_z, decoder=run.decoder, **networks)
    if run.model == "disenib":
        return DisenIB(shape, classes, **two_codes)
    return DisTIB(shape, classes, separate=run.separate, likelihood=run.likelihood,
                  decoder_trains_a=run.model == "distib", **two_codes)


#: DisenIB's schedule, as its reference code runs it: the estimator's term reaches no encoder for
#: the first ``warmup`` of the main updates (3,000 of 20,000 steps), then the style encoder on
#: ``style_turns`` of every ``style_turns + 1`` updates and the label encoder on the other; the
#: estimator takes ``estimator_steps`` steps on batches of its own after every ``main_steps``
#: main updates.
DISENIB_SCHEDULE = {"warmup": 0.15, "style_turns": 4, "main_steps": 10, "estimator_steps": 3}


def loss_for(run: SupervisedSettings, model: Model) -> train.LossFn:
    """The loss function ``(model, batch) -> terms`` of a run of DisTIB (its bound,
    :func:`~disentangle.supervised.objectives.distib_loss`, also the two-step method's) or of VIB
    (:func:`objectives.vib_loss`). DisenIB trains two players (:func:`disenib_step`)."""
    if run.model == "vib":
        return lambda m, batch: objectives.vib_loss(m(batch[0]), batch[1], run.beta)
    if run.model == "disenib":
        raise ValueError("DisenIB trains two players: use disenib_step, not a single loss.")
    return lambda m, batch: objectives.distib_loss(
        m(batch[0]), batch[0], batch[1], run.beta, model.likelihood, run.reconstruction_weight
    )


def disenib_step(run: SupervisedSettings, model: DisenIB, main: torch.optim.Optimizer,
                 estimator: torch.optim.Optimizer,
                 estimator_batches: train.TensorBatches) -> train.StepFn:
    """One main update of DisenIB (:func:`objectives.disenib_loss`) on :data:`DISENIB_SCHEDULE`,
    and the estimator's updates (:func:`objectives.disenib_estimator_loss`) when they are due.
    Returns the main terms and the estimator's latest mean outputs on joint and product pairs."""
    plan = DISENIB_SCHEDULE
    warmup = int(plan["warmup"] * run.steps)

    def step(batch: train.Batch) -> dict[str, torch.Tensor]:
        model.train()
        seen = int(model.batches_seen)
        model.batches_seen += 1
        turn = seen % (plan["style_turns"] + 1) < plan["style_turns"]
        trains = None if seen < warmup else ("style" if turn else "label")
        terms = objectives.disenib_loss(model, batch[0], batch[1], trains)
        main.zero_grad(set_to_none=True)
        terms["total"].backward()
        main.step()
        if (seen + 1) % plan["main_steps"] == 0:
            for _ in range(plan["estimator_steps"]):
                read = objectives.disenib_estimator_loss(model, estimator_batches()[0])
                estimator.zero_grad(set_to_none=True)
                read["total"].backward()
                estimator.step()
            model.estimator_readings.copy_(torch.stack([read["joint"], read["product"]]).detach())
        joint, product = model.estimator_readings
        return {**{k: v.detach().float() for k, v in terms.items()},
                "estimator_joint": joint.clone(), "estimator_product": product.clone()}

    return step


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
    lr = train.scaled_lr(run.lr, run.batch_size, 128)
    batches = train.TensorBatches(
        labelled.x_train, labelled.y_train, batch_size=run.batch_size, seed=run.seed
    )
    generators = {"batches": batches.generator}
    if isinstance(model, DisenIB):
        # Two players with the GAN's momentum, as DisenIB's reference code trains them; the
        # estimator draws batches of its own.
        optimizer = torch.optim.Adam(model.main_parameters(), lr=lr, betas=(0.5, 0.999))
        critic = torch.optim.Adam(model.estimator.parameters(), lr=lr, betas=(0.5, 0.999))
        own = train.TensorBatches(labelled.x_train, labelled.y_train,
                                  batch_size=run.batch_size, seed=run.seed + 1)
        step = disenib_step(run, model, optimizer, critic, own)
        state = {"model": model, "optimizer": optimizer, "estimator_optimizer": critic}
        generators["estimator_batches"] = own.generator
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        network = model
        if train.accelerated(device):
            # The GPU path compiles the model where the compiler works, eagerly where not.
            example = labelled.x_train[torch.arange(min(run.batch_size, 64), device=device)]
            network = train.compile_or_fallback(model, example)
        step = train.gradient_step(network, loss_for(run, model), optimizer, device)
        state = {"model": model, "optimizer": optimizer}
    return Trainable(
        model, step, batches,
        state=state,
        generators=generators,
        log_every=max(min(50, run.steps // 10), 1),
        # Four checkpoints a run; one of fewer than four steps (a dry run's) only at its end.
        checkpoint_every=run.steps // 4 or None,
    )


def load(run: SupervisedSettings, profile: str, device: torch.device) -> LabelledData:
    """The labelled data a run of ``run`` trains and is tested on, in ``profile``: the first
    ``run.train_size`` training images of the seed's order where a size is set."""
    labelled = load_labelled(run.data, run.label, profile, run.seed, device)
    size = run.train_size
    if size is None:
        return labelled
    if size > len(labelled.y_train):
        raise ValueError(
            f"Setting train_size={size} asks for more training images than {run.data} has in "
            f"the {profile} profile ({len(labelled.y_train)}): set train_size <= "
            f"{len(labelled.y_train)}.")
    x = labelled.x_train
    kept = Rows(x.source, x.index[:size]) if isinstance(x, Rows) else x[:size]
    return dataclasses.replace(labelled, x_train=kept, y_train=labelled.y_train[:size])
