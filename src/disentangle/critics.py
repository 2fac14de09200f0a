"""Did a density-ratio critic learn? Diagnostics of a trained critic on held-out codes.

FactorVAE's discriminator and TC-GAN's density-ratio estimator (:class:`disentangle.nets.Critic`)
are classifiers trained beside the model to tell codes drawn together from codes shuffled apart;
their mean log-odds estimate the codes' total correlation (:func:`disentangle.losses.
tc_density_ratio`). A critic that cannot tell the two apart sits at a loss of ln 2 and estimates
about 0. That is the right answer when the codes it sees are independent, and a failure when they
are not, so a loss near ln 2 alone says nothing. :func:`diagnose` asks a finished run's critic
on fresh codes and sets its accuracy beside the Gaussian TC of the same codes, the dependence a
linear model finds without training; :func:`flags` marks a run whose critic missed dependence
that was there. The minibatch-weighted estimate logged in training is no reference for this: it is
biased at batch 64, the more so the narrower the posteriors (chapter 14 sets it against a closed
form).
:func:`fit` trains a critic alone, as a run does, for the known-TC test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from disentangle import losses
from disentangle.estimators import gaussian_total_correlation
from disentangle.nets import Critic


def tail_mean(values: Sequence[float], fraction: float = 0.25) -> float:
    """The mean of the last ``fraction`` of a logged series (at least one value)."""
    if not values:
        raise ValueError("The series is empty: nothing was logged.")
    return float(np.mean(values[-max(int(len(values) * fraction), 1):]))


#: Held-out accuracy a critic must beat to count as having learned: chance (0.5) plus this margin.
ACCURACY_MARGIN = 0.02
#: Below this Gaussian TC (nats) of the held-out codes, a critic at chance agrees with the codes
#: (there is little dependence to find) and is not flagged.
DEPENDENCE_FLOOR = 0.05


@torch.no_grad()
def diagnose(
    critic: Critic, codes: torch.Tensor, generator: torch.Generator,
    posterior: tuple[torch.Tensor, torch.Tensor] | None = None, batch_size: int = 64,
) -> dict[str, float]:
    """How a trained density-ratio critic does on held-out ``codes`` (N x K samples of the codes it
    was trained on, drawn after training): its cross-entropy on the codes against their
    dimension-wise permutation (chance: ln 2), its accuracy on the same 2N pairs (chance: 0.5),
    its TC estimate E[T_0 - T_1] on the codes, and the Gaussian TC of the same codes (the
    dependence a linear model sees, :func:`disentangle.estimators.gaussian_total_correlation`).
    With ``posterior`` (the means and log-variances the codes were sampled from) also
    ``tc_minibatch``, the minibatch-weighted estimate of the same codes in batches of
    ``batch_size``, as training logs it. ``learned`` is False when the accuracy stays within
    :data:`ACCURACY_MARGIN` of chance while the Gaussian TC exceeds :data:`DEPENDENCE_FLOOR`:
    dependence the critic did not find."""
    critic.eval()
    codes = codes.float()
    product = losses.permute_dims(codes, generator)
    logits = critic(torch.cat([codes, product])).float()
    target = torch.cat([torch.zeros(len(codes)), torch.ones(len(product))]).long()
    target = target.to(logits.device)
    loss = float(torch.nn.functional.cross_entropy(logits, target))
    accuracy = float((logits.argmax(1) == target).float().mean())
    gaussian = gaussian_total_correlation(codes.cpu().double().numpy())
    learned = not (accuracy < 0.5 + ACCURACY_MARGIN and gaussian > DEPENDENCE_FLOOR)
    result = {
        "loss": loss, "chance_loss": math.log(2.0), "accuracy": accuracy,
        "tc_estimate": float(losses.log_density_ratio(logits[:len(codes)])),
        "gaussian_tc": gaussian, "learned": float(learned),
    }
    if posterior is not None:
        mean, log_var = posterior
        estimates = [losses.tc_minibatch_weighted(codes[i:i + batch_size],
                                                  mean[i:i + batch_size], log_var[i:i + batch_size])
                     for i in range(0, len(codes) - batch_size + 1, batch_size)]
        result["tc_minibatch"] = float(torch.stack(estimates).mean())
    return result


#: Held-out codes a finished run's critic is diagnosed on.
HELD_OUT = 4096


def diagnose_held_out(
    draw: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    critic: Critic, seed: int, n: int = HELD_OUT, batch_size: int = 64,
) -> dict[str, float]:
    """:func:`diagnose` on ``n`` codes from ``draw(n, generator)``, a model's sampler of the
    codes its critic trained on, returning the samples with the means and log-variances they were
    drawn from; every random draw (images, codes, reparameterisation, permutation) seeded from
    ``seed``, apart from the training's streams."""
    device = next(critic.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed + 7919)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed + 7919)
        samples, mean, log_var = draw(n, generator)
        return diagnose(critic, samples, generator, (mean, log_var), batch_size)


def flags(scores: Mapping[str, Any]) -> list[str]:
    """``["critic_at_chance"]`` for a run whose critic's diagnostics (``scores["critic"]``, from
    :func:`diagnose`) say it did not learn; ``[]`` otherwise or without a critic."""
    critic = scores.get("critic")
    return ["critic_at_chance"] if critic is not None and not critic["learned"] else []


def fit(
    critic: Critic, draw: Callable[[int, torch.Generator], torch.Tensor], steps: int, *,
    batch_size: int = 64, lr: float = 1e-3, generator: torch.Generator | None = None,
) -> Critic:
    """Train ``critic`` alone, ``steps`` updates of Adam(0.5, 0.9) at ``lr``, each on a batch of
    ``draw(batch_size, generator)`` codes against their dimension-wise permutation
    (:func:`disentangle.losses.permutation_discriminator_loss`): the update a run gives its
    critic, on codes whose distribution does not move. Returns the critic in eval mode."""
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    critic.train()
    for _ in range(steps):
        loss = losses.permutation_discriminator_loss(critic, draw(batch_size, generator),
                                                     generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return critic.eval()


#: DisenIB's estimator scores joint pairs of its two codes -1 and product pairs +1 (a least-squares
#: critic); it counts as having learned when, over the last quarter of training, its mean output
#: on product pairs exceeds its mean on joint pairs by at least this much.
SEPARATION = 0.05


def estimator_flags(scores: Mapping[str, Any], terms: Mapping[str, Sequence[float]]) -> list[str]:
    """``["estimator_at_chance"]`` for a DisenIB run whose estimator, over the last quarter of its
    logged training (terms ``estimator_joint`` and ``estimator_product``), separated the two kinds
    of pairs by less than :data:`SEPARATION`, while its test codes kept dependence to find (their
    KSG mutual information ``mi_a_z`` above :data:`DEPENDENCE_FLOOR` nats); ``[]`` otherwise, and
    for a run without such an estimator."""
    if "estimator_joint" not in terms or "estimator_product" not in terms:
        return []
    gap = tail_mean(terms["estimator_product"]) - tail_mean(terms["estimator_joint"])
    dependent = (scores.get("mi_a_z") or 0.0) > DEPENDENCE_FLOOR
    return ["estimator_at_chance"] if gap < SEPARATION and dependent else []
