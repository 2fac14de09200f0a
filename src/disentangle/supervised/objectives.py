"""The supervised family's objectives: the DisTIB variational bound term by term (also the
two-step method's), VIB's and DisenIB's. Each returns the named terms and ``total``."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from disentangle.losses import critic_loss, gaussian_kl, log_density_ratio, reconstruction_nll
from disentangle.nets import Critic


def distib_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    beta: float,
    likelihood: str,
    reconstruction_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The DisTIB bound per batch (constants dropped):

    L = E[-log q(x | a, z)] + E[-log q(y | a)]
        + beta * (E KL(p(a|x) || N(0,I)) + E KL(p(z|x) || N(0,I)))

    The first two terms bound -[I(X; A,Z) + I(A; Y)] (preservation, from G_out), the KL terms
    bound I(X; A) + I(X; Z) (compression, from G_in). ``reconstruction_weight`` < 1 tempers the
    image likelihood, whose nats (thousands of pixels) otherwise drown the label's (one class).
    Returns ``total`` and each named term (the reconstruction term unweighted).
    """
    terms = {
        "reconstruction": reconstruction_nll(out["reconstruction"], x, likelihood).mean(),
        "cross_entropy": F.cross_entropy(out["logits"], y),
        "kl_a": gaussian_kl(out["mean_a"], out["log_var_a"]).mean(),
        "kl_z": gaussian_kl(out["mean_z"], out["log_var_z"]).mean(),
    }
    terms["total"] = (
        reconstruction_weight * terms["reconstruction"]
        + terms["cross_entropy"]
        + beta * (terms["kl_a"] + terms["kl_z"])
    )
    return terms


def vib_loss(out: dict[str, torch.Tensor], y: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """The VIB objective (Alemi et al. 2017): E[-log q(y | z)] + beta * E KL(p(z|x) || N(0,I)),
    a bound on -I(Z; Y) + beta * I(X; Z)."""
    terms = {
        "cross_entropy": F.cross_entropy(out["logits"], y),
        "kl_z": gaussian_kl(out["mean_z"], out["log_var_z"]).mean(),
    }
    terms["total"] = terms["cross_entropy"] + beta * terms["kl_z"]
    return terms


def disenib_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    critic: Critic,
    likelihood: str,
    reconstruction_weight: float = 1.0,
    mi_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """DisenIB's objective per batch (Pan et al. 2021), maximising I(T; Y) + I(X; S, Y) - I(S; T):

    L = E[-log q(y | t)] + w * E[-log q(x | s, y)] + mi_weight * I_hat(S; T) + L_critic

    from the noisy codes ``out["a"]`` (T) and ``out["z"]`` (S) of :class:`models.DisenIB`. I_hat is
    the density-ratio estimate E[T_0(t, s) - T_1(t, s)] of ``critic``, and L_critic the critic's
    cross-entropy for telling pairs (t_i, s_i) (class 0) from pairs (t_pi(i), s_i) with T permuted
    across the batch (class 1). Each reaches only its own side: I_hat is computed with the
    critic's weights detached (it trains the encoders), L_critic on detached codes (it trains the
    critic). ``mi_weight`` 0 is the warm-up, in which the encoders do not yet see I_hat."""
    a, z = out["a"], out["z"]
    frozen = {name: value.detach() for name, value in critic.named_parameters()}
    logits = torch.func.functional_call(critic, frozen, (torch.cat([a, z], 1),)).float()
    pairs = torch.cat([a, z], 1).detach()
    shuffled = torch.cat([a.detach()[torch.randperm(len(a), device=a.device)], z.detach()], 1)
    terms = {
        "reconstruction": reconstruction_nll(out["reconstruction"], x, likelihood).mean(),
        "cross_entropy": F.cross_entropy(out["logits"], y),
        "mi_a_z": log_density_ratio(logits),
        "critic": critic_loss(critic, pairs, shuffled),
    }
    terms["total"] = (
        reconstruction_weight * terms["reconstruction"]
        + terms["cross_entropy"]
        + mi_weight * terms["mi_a_z"]
        + terms["critic"]
    )
    return terms
