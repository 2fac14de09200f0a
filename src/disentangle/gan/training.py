"""How the GAN family trains: InfoGAN and TC-GAN (InfoGAN plus a total-correlation penalty on the
inferred codes), the atomic level of the two-level latent space.

A run samples real images from a ground-truth dataset held on the device and alternates the
players through the book's training loop: the discriminator; then the generator with Q; then,
for the density-ratio estimator, the critic T on detached codes (:func:`gan_step`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from disentangle import config, losses, train
from disentangle.data.base import GroundTruthData
from disentangle.data.ground_truth import load_ground_truth, materialize
from disentangle.family import Trainable
from disentangle.gan.networks import TwoLevelGAN
from disentangle.gan.objectives import infogan_bound
from disentangle.gan.settings import GanSettings
from disentangle.nets import reparameterize


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
       (InfoGAN's bound, :func:`~disentangle.gan.objectives.infogan_bound`; the TC of codes sampled
       from Q by :func:`~disentangle.losses.tc_minibatch_weighted` or
       :func:`~disentangle.losses.tc_density_ratio`), plus,
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
            info = infogan_bound(mean, log_var, codes, out["categorical"], classes)
            samples = reparameterize(mean, log_var)
            tc_mws = losses.tc_minibatch_weighted(samples, mean, log_var)
            if model.tc_critic is not None:
                tc = losses.tc_density_ratio(model.tc_critic, samples)
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
                supervised = -losses.gaussian_log_density(
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
            t_loss = losses.permutation_discriminator_loss(model.tc_critic, samples, generator)
            optimizers.t.zero_grad(set_to_none=True)
            t_loss.backward()
            optimizers.t.step()
            terms.update({"tc_drt": tc, "t_loss": t_loss})
        return {name: value.detach().float() for name, value in terms.items()}

    return step


def training_parts(run: GanSettings, source: GroundTruthData, device: torch.device) -> Trainable:
    """Everything a GAN run trains with, the book's way: the model (its networks compiled on
    CUDA where the compiler works), the optimizers (in the checkpoint's ``state``), the step,
    batches drawn on the device, and the random generators a checkpoint must hold. Runs and the
    benchmark share it."""
    config.seed_everything(run.seed)
    materialize(source, device)
    # Channels-last weights: faster convolutions (most of a step) on the CPU, and the layout
    # cuDNN prefers on the GPU.
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
    return Trainable(
        model, step, next_batch,
        state={"model": model, **optimizers.state},
        generators={"batches": batches, "codes": codes_rng},
        log_every=max(min(100, run.steps // 10), 1),
        checkpoint_every=max(run.steps // 4, 1),
    )


def load(run: GanSettings, profile: str, device: torch.device) -> GroundTruthData:
    """The images a run of ``run`` trains on and is scored on, in ``profile``."""
    return load_ground_truth(run.data, profile)
