"""The losses every family shares: the Gaussian KL and log density, the reconstruction's
negative log-likelihood, and the total correlation of codes by two estimators (minibatch weighted
sampling, and the density ratio of the one critic, :class:`~disentangle.nets.Critic`, with its
loss). Each family's objective is in its package (``supervised.objectives``, ``gan.objectives``,
``vae.objectives``) and returns a dict of named scalar terms with ``total`` the one to minimise, so
that the training loop can log every term and name the one that blows up.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from disentangle.nets import Critic


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag sigma^2) || N(0, I) ) = 0.5 * sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1),
    one value per row. Its mean over the data bounds I(X; C) from above (the variational
    compression bound with prior r(c) = N(0, I))."""
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1.0).sum(dim=1)


def reconstruction_nll(output: torch.Tensor, target: torch.Tensor, likelihood: str) -> torch.Tensor:
    """-log q(x | a, z) per image, summed over pixels, up to a constant: binary cross-entropy on
    logits for a Bernoulli decoder, half the squared error for a unit-variance Gaussian one (the
    DisTIB paper's choice). Its mean bounds -I(X; A, Z) from above, up to H(X)."""
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    elif likelihood == "gaussian":
        per_pixel = 0.5 * (output - target).pow(2)
    else:
        raise ValueError(f"Unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'.")
    return per_pixel.flatten(1).sum(dim=1)


def gaussian_log_density(
    x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """log N(x; mu, diag sigma^2), per coordinate (broadcasting): -0.5 (log 2 pi + log sigma^2 +
    (x - mu)^2 / sigma^2)."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean).pow(2) * torch.exp(-log_var))


def tc_minibatch_weighted(
    samples: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """Total correlation KL(q(c) || prod_k q(c_k)) of the inferred codes by minibatch weighted
    sampling (the beta-TCVAE estimator, with the batch standing for the data): for codes
    ``samples[i]`` ~ Q(. | x_i) and every posterior ``(mean[j], log_var[j])`` of the batch,

    log q(c_i)   ~ logsumexp_j  sum_k log Q(c_ik | x_j)  - log B
    log q(c_ik)  ~ logsumexp_j  log Q(c_ik | x_j)        - log B

    and TC ~ mean_i [log q(c_i) - sum_k log q(c_ik)]. Computed in float32; it is biased for
    small batches and narrow posteriors (the batch then looks like B separate points).
    """
    if samples.ndim != 2 or samples.shape != mean.shape or mean.shape != log_var.shape:
        raise ValueError(
            "tc_minibatch_weighted takes samples, means and log-variances of one shape (B, K); "
            f"got {tuple(samples.shape)}, {tuple(mean.shape)}, {tuple(log_var.shape)}."
        )
    batch = samples.shape[0]
    pairwise = gaussian_log_density(
        samples.float()[:, None, :], mean.float()[None], log_var.float()[None]
    )  # (i, j, k): log Q(c_ik | x_j)
    log_joint = torch.logsumexp(pairwise.sum(dim=2), dim=1) - math.log(batch)
    log_marginals = torch.logsumexp(pairwise, dim=1) - math.log(batch)
    return (log_joint - log_marginals.sum(dim=1)).mean()


def permute_dims(codes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``codes`` (B, K) shuffled independently across the batch: a sample from
    the product of the marginals prod_k q(c_k) (FactorVAE's permutation)."""
    batch, dims = codes.shape
    keys = torch.rand(batch, dims, device=codes.device, generator=generator)
    return codes.gather(0, keys.argsort(dim=0))


def log_density_ratio(logits: torch.Tensor) -> torch.Tensor:
    """The mean log density ratio E[T_0 - T_1] read from a :class:`~disentangle.nets.Critic`'s
    logits (N, 2) on samples of the joint: the density-ratio estimate of the mutual information
    or total correlation the critic was trained to tell apart (:func:`critic_loss`)."""
    logits = logits.float()
    return (logits[:, 0] - logits[:, 1]).mean()


def tc_density_ratio(critic: Critic, codes: torch.Tensor) -> torch.Tensor:
    """Total correlation by the density-ratio trick (FactorVAE): TC ~ E_q[T_0(c) - T_1(c)].
    Gradients flow into ``codes`` (so the generator and Q can lower it) and into T's weights,
    which only T's own update may use."""
    return log_density_ratio(critic(codes))


def critic_loss(critic: Critic, joint: torch.Tensor, product: torch.Tensor) -> torch.Tensor:
    """The critic's cross-entropy for telling samples of the joint (``joint``, class 0) from
    samples of the product of the marginals (``product``, class 1), one pass over both."""
    logits = critic(torch.cat([joint, product])).float()
    target = torch.cat([
        torch.zeros(len(joint), dtype=torch.long, device=joint.device),
        torch.ones(len(product), dtype=torch.long, device=joint.device),
    ])
    return F.cross_entropy(logits, target)


def permutation_discriminator_loss(
    critic: Critic, codes: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """:func:`critic_loss` of codes against their dimension-wise permutation (:func:`permute_dims`),
    the total-correlation critic's update. The codes are detached first: this loss must never send
    gradient into the generator, Q or an encoder (a known defect of several public
    implementations)."""
    codes = codes.detach()
    return critic_loss(critic, codes, permute_dims(codes, generator))
