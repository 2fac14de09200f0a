"""The VAE family, from settings to ``metrics.json``: the VAE, beta-VAE, beta-TCVAE, FactorVAE and
AnnealedVAE, the baselines of the two-level GAN paper's Table 1 (objectives in
:func:`objectives.vae_loss`).

A run trains on the same ground-truth images as the GANs (:mod:`disentangle.ground_truth`), drawn
on the device, through the book's training loop, and evaluates the encoder's posterior means with
every metric of :mod:`disentangle.metrics`. FactorVAE alternates two updates per batch: the VAE
with its TC penalty, then the permutation discriminator on the detached codes (so that its loss
never moves the encoder). AnnealedVAE raises its capacity C linearly from 0 to ``capacity`` over
the first :data:`ANNEAL_FRACTION` of training, then holds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from disentangle import config, data, evaluation, ground_truth, objectives, runs, train
from disentangle.models import VAE
from disentangle.settings import VaeSettings

MODELS = VaeSettings.MODELS
#: The part of training over which AnnealedVAE's capacity grows (a third in disentanglement_lib's
#: setting, 100,000 of 300,000 steps; the book's shorter runs take half).
ANNEAL_FRACTION = 0.5


def capacity_at(run: VaeSettings, step: int) -> float:
    """AnnealedVAE's capacity C (nats) after ``step`` training batches."""
    ramp = max(ANNEAL_FRACTION * run.steps, 1.0)
    return run.capacity * min(step / ramp, 1.0)


def training_parts(
    run: VaeSettings, source: data.GroundTruthData, device: torch.device
) -> tuple[VAE, dict, train.StepFn, Callable[[], train.Batch], dict]:
    """Everything a VAE run trains with: the model, its optimizers by checkpoint name (FactorVAE's
    discriminator ``critic`` and its own), the step, batches drawn on the device, and the random
    generators a checkpoint must hold."""
    config.seed_everything(run.seed)
    ground_truth.materialize(source, device)
    shape = (source.image_shape[0], run.resolution, run.resolution)
    # Channels-last weights, as the GAN's (gan.training_parts): faster convolutions.
    model = VAE(shape, run.latent_dim, run.width, run.hidden).to(device,
                                                               memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.scaled_lr(run.lr, run.batch_size),
                                 betas=(0.9, 0.999))
    state: dict = {"model": model, "optimizer": optimizer}
    critic = critic_optimizer = None
    if run.model == "factorvae":
        critic = objectives.PermutationDiscriminator(run.latent_dim).to(device)
        # FactorVAE's discriminator setting: Adam(0.5, 0.9).
        critic_optimizer = torch.optim.Adam(critic.parameters(), lr=run.lr_critic,
                                            betas=(0.5, 0.9))
        state.update(critic=critic, critic_optimizer=critic_optimizer)
    batches = torch.Generator(device=device).manual_seed(run.seed)
    permutations = torch.Generator(device=device).manual_seed(run.seed + 1)

    def next_batch() -> train.Batch:
        return source.batch(run.batch_size, batches, device)

    network = model
    if train.accelerated(device):
        # The GPU path trains through a compiled copy where the compiler works; the model keeps
        # its eager network for encoding and decoding.
        example = ground_truth.resize(next_batch()[0][:min(run.batch_size, 64)], run.resolution)
        network = train.compile_or_fallback(model, example)

    def step(batch: train.Batch) -> dict[str, torch.Tensor]:
        model.train()
        x = ground_truth.resize(batch[0], run.resolution)
        with train.autocast(device):
            out = {name: value.float() for name, value in network(x).items()}
            capacity = capacity_at(run, int(model.steps_seen)) if run.capacity else 0.0
            terms = objectives.vae_loss(out, x, run.model, run.beta, run.gamma, capacity, critic)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        model.steps_seen += 1
        if critic is not None:
            critic_loss = objectives.permutation_discriminator_loss(critic, out["sample"],
                                                                    permutations)
            critic_optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_optimizer.step()
            terms["critic_loss"] = critic_loss
        if run.capacity:
            terms["capacity"] = torch.tensor(capacity)
        return {name: value.detach().float() for name, value in terms.items()}

    generators = {"batches": batches, "permutations": permutations}
    return model, state, step, next_batch, generators


def fit_vae(
    run: VaeSettings,
    source: data.GroundTruthData,
    device: torch.device,
    out_dir: str | Path | None = None,
    progress: bool = True,
    profile: str | None = None,
    load_stale: bool = False,
) -> tuple[VAE, train.History]:
    """Train the run's VAE on images drawn from ``source``. With ``out_dir``, the folder is opened
    in the run store for ``profile`` (:func:`runs.open_run`) and training resumes from its
    checkpoint; ``source`` must then be the data the settings name (:func:`ground_truth.load`)."""
    if out_dir is not None:
        profile = config.resolve_profile(profile)
        ground_truth.check_source(run, source, profile)
        runs.open_run(out_dir, run, profile, load_stale=load_stale)
    model, state, step, next_batch, generators = training_parts(run, source, device)
    history = train.fit(
        step, next_batch, run.steps,
        state=state,
        generators=generators,
        out_dir=out_dir,
        checkpoint_every=max(run.steps // 4, 1) if out_dir else None,
        log_every=max(min(100, run.steps // 10), 1),
        progress=progress,
        description=f"{run.model} on {type(source).__name__}",
    )
    model.eval()
    return model, history


def run(
    model_name: str,
    dataset: str = "dsprites-style",
    profile: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    load_stale: bool = False,
    **overrides,
) -> tuple[VAE, train.History, dict]:
    """One complete VAE run in its folder of the run store (default :func:`runs.default_dir`):
    train or resume (:func:`fit_vae`), then evaluate the last checkpoint with
    :func:`metrics.evaluate` on the posterior means of real images. Writes ``metrics.json``,
    ``history.json`` and ``traversal.png`` (:func:`evaluation.finish`); returns the model, its
    history and the result."""
    profile = config.resolve_profile(profile)
    dev = config.get_device(device)
    started = time.perf_counter()
    settings = VaeSettings.for_profile(profile, model=model_name, data=dataset, seed=seed,
                                       **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    source = ground_truth.load(dataset, profile)
    model, history = fit_vae(settings, source, dev, out, progress, profile, load_stale)

    @torch.no_grad()
    def encode(images: torch.Tensor) -> torch.Tensor:
        model.eval()
        x = ground_truth.resize(images.to(dev), settings.resolution)
        return torch.cat([model.encode(x[i:i + 1024]) for i in range(0, len(x), 1024)]).cpu()

    result = evaluation.finish(out, settings, profile, source, encode, model.decode,
                                 settings.latent_dim, 2.0, history, started, dev)
    return model, history, result
