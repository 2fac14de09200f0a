"""How the VAE family trains: the VAE, beta-VAE, beta-TCVAE, FactorVAE and AnnealedVAE, the
baselines of the two-level GAN paper's Table 1 (objectives in
:func:`~disentangle.vae.objectives.vae_loss`).

A run trains on the same ground-truth images as the GANs
(:func:`disentangle.data.load_ground_truth`), drawn on the device, through the book's training
loop. FactorVAE alternates two updates per batch: the VAE
with its TC penalty, then the permutation discriminator on the detached codes (so that its loss
never moves the encoder). AnnealedVAE raises its capacity C linearly from 0 to ``capacity`` over
the first ``anneal`` of training (a third unless set), then holds it.
"""

from __future__ import annotations

import torch

from disentangle import config, losses, train
from disentangle.data.base import GroundTruthData
from disentangle.data.ground_truth import load_ground_truth, materialize, resize
from disentangle.family import Trainable
from disentangle.nets import Critic
from disentangle.vae.networks import VAE
from disentangle.vae.objectives import vae_loss
from disentangle.vae.settings import VaeSettings


def capacity_at(run: VaeSettings, step: int) -> float:
    """AnnealedVAE's capacity C (nats) after ``step`` training batches: ``capacity`` x step /
    (``anneal`` x steps), at most ``capacity`` (a ramp shorter than one step holds it from the
    start)."""
    ramp = max(run.anneal * run.steps, 1.0)
    return run.capacity * min(step / ramp, 1.0)


def training_parts(run: VaeSettings, source: GroundTruthData, device: torch.device) -> Trainable:
    """Everything a VAE run trains with: the model (with FactorVAE's discriminator), its
    optimizers by checkpoint name (the discriminator's ``critic_optimizer``), the step, batches
    drawn on the device, and the random generators a checkpoint must hold."""
    config.seed_everything(run.seed)
    materialize(source, device)
    shape = (source.image_shape[0], run.resolution, run.resolution)
    critic = (Critic(run.latent_dim, run.critic_hidden, run.critic_layers)
              if run.model == "factorvae" else None)
    # Channels-last weights, as the GAN's: faster convolutions.
    model = VAE(shape, run.latent_dim, run.width, run.hidden, critic).to(
        device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.autoencoder_parameters(),
                                 lr=train.scaled_lr(run.lr, run.batch_size), betas=(0.9, 0.999))
    state: dict = {"model": model, "optimizer": optimizer}
    critic_optimizer = None
    if critic is not None:
        # FactorVAE's discriminator setting: Adam(0.5, 0.9).
        critic_optimizer = torch.optim.Adam(critic.parameters(), lr=run.lr_critic,
                                            betas=(0.5, 0.9))
        state["critic_optimizer"] = critic_optimizer
    batches = torch.Generator(device=device).manual_seed(run.seed)
    permutations = torch.Generator(device=device).manual_seed(run.seed + 1)

    def next_batch() -> train.Batch:
        return source.batch(run.batch_size, batches, device)

    network = model
    if train.accelerated(device):
        # The GPU path trains through a compiled copy where the compiler works; the model keeps
        # its eager network for encoding and decoding.
        example = resize(next_batch()[0][:min(run.batch_size, 64)], run.resolution)
        network = train.compile_or_fallback(model, example)

    def step(batch: train.Batch) -> dict[str, torch.Tensor]:
        model.train()
        x = resize(batch[0], run.resolution)
        with train.autocast(device):
            out = {name: value.float() for name, value in network(x).items()}
            capacity = capacity_at(run, int(model.steps_seen)) if run.capacity else 0.0
            terms = vae_loss(out, x, run.model, run.beta, run.gamma, capacity, critic)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        model.steps_seen += 1
        if critic is not None:
            critic_loss = losses.permutation_discriminator_loss(critic, out["sample"],
                                                                    permutations)
            critic_optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_optimizer.step()
            terms["critic_loss"] = critic_loss
        if run.capacity:
            terms["capacity"] = torch.tensor(capacity)
        return {name: value.detach().float() for name, value in terms.items()}

    return Trainable(
        model, step, next_batch, state=state,
        generators={"batches": batches, "permutations": permutations},
        log_every=max(min(100, run.steps // 10), 1),
        checkpoint_every=max(run.steps // 4, 1),
    )


def load(run: VaeSettings, profile: str, device: torch.device) -> GroundTruthData:
    """The images a run of ``run`` trains on and is scored on, in ``profile``."""
    return load_ground_truth(run.data, profile)
