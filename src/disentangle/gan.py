"""The GAN family, from settings to ``metrics.json``: InfoGAN and TC-GAN (InfoGAN plus a
total-correlation penalty on the inferred codes), the atomic level of the two-level latent space.

A run samples real images from a ground-truth dataset held on the device, alternates the players
through the book's training loop (the discriminator; then the generator with Q; then, for the
density-ratio estimator, the permutation discriminator T on detached codes), and evaluates the
Q-head means of real images with every metric of :mod:`disentangle.metrics`.

The atomic level is the code c ~ U(-1, 1)^K that the generator is given: independent by
construction, and asked by the TC penalty to stay independent once inferred back from images. The
complex level built on it is measured by :mod:`disentangle.complex_level`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from disentangle import config, data, evaluation, ground_truth, objectives, runs, train
from disentangle.models import Discriminator, Generator, reparameterize
from disentangle.settings import GanSettings

MODELS = GanSettings.MODELS


class TwoLevelGAN(torch.nn.Module):
    """The generator, the discriminator with its D and Q heads, and (for the density-ratio
    estimator) the permutation discriminator T, with the code prior and the image size they share.
    """

    def __init__(self, run: GanSettings, channels: int = 1):
        super().__init__()
        self.run = run
        shape = (channels, run.resolution, run.resolution)
        self.latent_dim = run.noise_dim + run.code_dim + sum(run.categorical)
        self.generator = Generator(self.latent_dim, shape)
        self.discriminator = Discriminator(run.code_dim, run.categorical, shape)
        self.tc_critic = (
            objectives.PermutationDiscriminator(run.code_dim)
            if run.model == "tcgan" and run.estimator == "drt" else None
        )

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Real images (N, C, H, W) in [0, 1] at the run's resolution (area-averaged down)."""
        return ground_truth.resize(images, self.run.resolution)

    def sample_codes(
        self, n: int, device: torch.device, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Noise z ~ N(0, I), continuous codes c ~ U(-1, 1) and categorical classes (or None)."""
        noise = torch.randn(n, self.run.noise_dim, device=device, generator=generator)
        codes = torch.rand(n, self.run.code_dim, device=device, generator=generator) * 2 - 1
        classes = None
        if self.run.categorical:
            classes = torch.stack([
                torch.randint(0, k, (n,), device=device, generator=generator)
                for k in self.run.categorical
            ], dim=1)
        return noise, codes, classes

    def latent(
        self, noise: torch.Tensor, codes: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = [noise, codes]
        if self.run.categorical:
            parts += [F.one_hot(classes[:, k], size).float()
                      for k, size in enumerate(self.run.categorical)]
        return torch.cat(parts, dim=1)

    def generate(self, codes: torch.Tensor, noise: torch.Tensor | None = None,
                 classes: torch.Tensor | None = None) -> torch.Tensor:
        """G(z, c) for given continuous codes (noise zero and the first class unless given)."""
        n = len(codes)
        noise = torch.zeros(n, self.run.noise_dim, device=codes.device) if noise is None else noise
        if self.run.categorical and classes is None:
            classes = torch.zeros(n, len(self.run.categorical), dtype=torch.long,
                                  device=codes.device)
        return self.generator(self.latent(noise, codes, classes))

    @torch.no_grad()
    def encode(self, images: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """Q-head means of the continuous codes for real images: the representation the metrics
        score."""
        self.eval()
        device = next(self.parameters()).device
        parts = [self.discriminator(self.prepare(images[i:i + chunk].to(device)))["mean"].float()
                 for i in range(0, len(images), chunk)]
        return torch.cat(parts).cpu()


@dataclass
class Optimizers:
    """The players' optimizers, and ``state``: the names a checkpoint stores them under."""

    g: torch.optim.Optimizer
    d: torch.optim.Optimizer
    t: torch.optim.Optimizer | None = None
    state: dict = field(default_factory=dict)


def build_optimizers(model: TwoLevelGAN) -> Optimizers:
    """Adam(0.5, 0.999): G and the Q head at ``lr_g``, the D trunk and head at ``lr_d``, T at
    ``lr_t``; learning rates scaled from batch 64 by the square-root rule."""
    run = model.run
    scale = math.sqrt(run.batch_size / 64)
    betas = (0.5, 0.999)
    g = torch.optim.Adam([*model.generator.parameters(), *model.discriminator.head_parameters("q")],
                         lr=run.lr_g * scale, betas=betas)
    d = torch.optim.Adam(model.discriminator.head_parameters("d"), lr=run.lr_d * scale,
                         betas=betas)
    t = (torch.optim.Adam(model.tc_critic.parameters(), lr=run.lr_t * scale, betas=(0.5, 0.9))
         if model.tc_critic is not None else None)
    state = {"g_optimizer": g, "d_optimizer": d, **({"t_optimizer": t} if t else {})}
    return Optimizers(g, d, t, state)


def _unit_targets(factors: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Factor classes mapped linearly onto [-1, 1], the range of the codes they are aligned with."""
    return 2 * factors.float() / (sizes - 1).clamp(min=1) - 1


def gan_step(
    model: TwoLevelGAN,
    optimizers: Optimizers,
    device: torch.device,
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
    aligned_sizes: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    amp: bool | None = None,
    networks: tuple[torch.nn.Module, torch.nn.Module] | None = None,
) -> train.StepFn:
    """One alternating update per batch of real images, as :func:`train.fit` expects (under bf16
    autocast on CUDA unless ``amp=False``), through ``networks`` (compiled G and D sharing the
    model's weights; default the model's own).

    1. D:  min  BCE(D(x), 1) + BCE(D(G(z, c)), 0)  over the trunk and the D head;
    2. G, Q:  min  BCE(D(G(z, c)), 1) + info_weight * E[-log Q(c | G(z, c))] + tc_weight * TC
       (InfoGAN's bound, :func:`objectives.infogan_bound`; the TC of codes sampled from Q by
       :func:`objectives.tc_minibatch_weighted` or :func:`objectives.tc_density_ratio`), plus,
       when codes are aligned with factors, Q's Gaussian NLL of those factors on labelled images;
    3. T (density ratio only): its cross-entropy on detached codes, so it never moves G or Q.

    The minibatch TC estimate and Q's mean posterior variance are logged for both models, to
    compare how InfoGAN and TC-GAN train.
    """
    run = model.run
    bce = F.binary_cross_entropy_with_logits
    g_net, d_net = networks or (model.generator, model.discriminator)

    def step(batch: train.Batch) -> dict[str, torch.Tensor]:
        model.train()
        real = model.prepare(batch[0])
        noise, codes, classes = model.sample_codes(len(real), device, generator)
        with train.autocast(device, amp):
            fake = g_net(model.latent(noise, codes, classes))
            # One pass over real and fake together: half the kernel launches of two passes.
            logits = d_net(torch.cat([real, fake.detach()]))["logit"].float()
            d_real, d_fake = logits.split([len(real), len(fake)])
            d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        optimizers.d.zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers.d.step()

        with train.autocast(device, amp):
            out = d_net(fake)
            logit = out["logit"].float()
            mean, log_var = out["mean"].float(), out["log_var"].float()
            adversarial = bce(logit, torch.ones_like(logit))
            info = objectives.infogan_bound(mean, log_var, codes, out["categorical"], classes)
            samples = reparameterize(mean, log_var)
            tc_mws = objectives.tc_minibatch_weighted(samples, mean, log_var)
            if model.tc_critic is not None:
                tc = objectives.tc_density_ratio(model.tc_critic, samples)
            else:
                tc = tc_mws
            total = adversarial + run.info_weight * info["nll"]
            if run.tc_weight:
                total = total + run.tc_weight * tc
            terms = {}
            if labelled is not None:
                index = torch.randint(0, len(labelled[0]), (len(real),), device=device,
                                      generator=generator)
                q = d_net(model.prepare(labelled[0][index]))
                k = len(run.aligned)
                target = _unit_targets(labelled[1][index], aligned_sizes)
                supervised = -objectives.gaussian_log_density(
                    target, q["mean"][:, :k].float(), q["log_var"][:, :k].float()
                ).sum(1).mean()
                total = total + supervised
                terms["supervised_nll"] = supervised
        optimizers.g.zero_grad(set_to_none=True)
        total.backward()
        optimizers.g.step()

        terms.update({
            "total": total, "d_loss": d_loss, "adversarial": adversarial,
            "info_nll": info["nll"], "info_bound": info["bound"], "tc_mws": tc_mws,
            "d_real": torch.sigmoid(d_real).mean(), "d_fake": torch.sigmoid(d_fake).mean(),
            "q_variance": log_var.exp().mean(),
        })
        if model.tc_critic is not None:
            t_loss = objectives.permutation_discriminator_loss(model.tc_critic, samples, generator)
            optimizers.t.zero_grad(set_to_none=True)
            t_loss.backward()
            optimizers.t.step()
            terms.update({"tc_drt": tc, "t_loss": t_loss})
        return {name: value.detach().float() for name, value in terms.items()}

    return step


def training_parts(
    run: GanSettings, source: data.GroundTruthData, device: torch.device
) -> tuple[TwoLevelGAN, Optimizers, train.StepFn, Callable[[], train.Batch], dict]:
    """Everything a GAN run trains with, the book's way: the model (its networks compiled on
    CUDA where the compiler works), the optimizers, the step, batches drawn on the device, and the
    random generators a checkpoint must hold. :func:`fit_gan` and the benchmark share it."""
    config.seed_everything(run.seed)
    ground_truth.materialize(source, device)
    # Channels-last weights: the convolutions (most of a step) run 1.15x faster on the CPU, and
    # the layout is the one cuDNN prefers on the GPU.
    model = TwoLevelGAN(run, source.image_shape[0]).to(device, memory_format=torch.channels_last)
    optimizers = build_optimizers(model)
    batches = torch.Generator(device=device).manual_seed(run.seed)
    codes_rng = torch.Generator(device=device).manual_seed(run.seed + 1)

    def next_batch() -> train.Batch:
        return source.batch(run.batch_size, batches, device)

    labelled = aligned_sizes = None
    if run.aligned:
        rng = np.random.default_rng(run.seed + 2)
        factors = source.sample_factors(run.labelled, rng)
        columns = [source.factor_index(name) for name in run.aligned]
        labelled = (source.images(factors).to(device),
                    torch.as_tensor(factors[:, columns], device=device))
        aligned_sizes = torch.as_tensor([source.factor_sizes[k] for k in columns], device=device)
    networks = None
    if train.accelerated(device):
        # The GPU path trains through compiled copies of the two networks where the compiler
        # works (the step itself, with its two or three backward passes, stays eager). The model
        # keeps its eager networks for encoding and generating: evaluation's other batch sizes
        # and eval mode would each cost the compiler a new graph.
        latent = torch.zeros(min(run.batch_size, 64), model.latent_dim, device=device)
        g_net = train.compile_or_fallback(model.generator, latent)
        networks = (g_net, train.compile_or_fallback(model.discriminator, g_net(latent).detach()))
    step = gan_step(model, optimizers, device, labelled, aligned_sizes, codes_rng,
                    networks=networks)
    return model, optimizers, step, next_batch, {"batches": batches, "codes": codes_rng}


def fit_gan(
    run: GanSettings,
    source: data.GroundTruthData,
    device: torch.device,
    out_dir: str | Path | None = None,
    progress: bool = True,
    profile: str | None = None,
    load_stale: bool = False,
) -> tuple[TwoLevelGAN, train.History]:
    """Train the run's GAN on images drawn from ``source``. With ``out_dir``, the folder is opened
    in the run store for ``profile`` (:func:`runs.open_run`: a stale run is set aside, other
    settings are refused) and training resumes from its checkpoint; ``source`` must then be the
    data the settings name, as :func:`ground_truth.load` gives it for the profile."""
    if out_dir is not None:
        profile = config.resolve_profile(profile)
        ground_truth.check_source(run, source, profile)
        runs.open_run(out_dir, run, profile, load_stale=load_stale)
    model, optimizers, step, next_batch, generators = training_parts(run, source, device)
    history = train.fit(
        step, next_batch, run.steps,
        state={"model": model, **optimizers.state},
        generators=generators,
        out_dir=out_dir,
        checkpoint_every=max(run.steps // 4, 1) if out_dir else None,
        log_every=max(min(100, run.steps // 10), 1),
        progress=progress,
        description=f"{run.model} on {type(source).__name__}",
    )
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
) -> tuple[TwoLevelGAN, train.History, dict]:
    """One complete GAN run in its folder of the run store (default :func:`runs.default_dir`):
    train or resume (:func:`fit_gan`), then evaluate the last checkpoint with
    :func:`metrics.evaluate` (Q-head means of real images as codes). A finished run's recorded
    evaluation is reused when the code that made it is unchanged, and recomputed otherwise.
    Writes ``metrics.json``, ``history.json`` and a traversal figure ``traversal.png``; returns
    the model, its history and the result."""
    profile = config.resolve_profile(profile)
    dev = config.get_device(device)
    started = time.perf_counter()
    settings = GanSettings.for_profile(profile, model=model_name, data=dataset, seed=seed,
                                       **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    source = ground_truth.load(dataset, profile)
    model, history = fit_gan(settings, source, dev, out, progress, profile, load_stale)
    result = evaluation.finish(out, settings, profile, source, model.encode, model.generate,
                                 settings.code_dim, 1.0, history, started, dev)
    return model, history, result
