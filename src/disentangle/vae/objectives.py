"""The VAE family's objective: the negative ELBO with each model's regulariser."""

from __future__ import annotations

import torch

from disentangle.losses import (
    gaussian_kl,
    reconstruction_nll,
    tc_density_ratio,
    tc_minibatch_weighted,
)
from disentangle.nets import Critic


def vae_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    model: str,
    beta: float | None = None,
    gamma: float | None = None,
    capacity: float = 0.0,
    critic: Critic | None = None,
) -> dict[str, torch.Tensor]:
    """The negative ELBO of a Bernoulli decoder, E[-log p(x | c)] + E KL(q(c | x) || N(0, I)), with
    each model's regulariser (constants dropped):

    - ``vae``: the ELBO as it is;
    - ``betavae``: the KL weighted by ``beta``;
    - ``btcvae``: the KL plus (``beta`` - 1) TC, TC by :func:`tc_minibatch_weighted`: in the KL's
      split into index-code MI + TC + dimension-wise KL, the TC alone is weighted by ``beta``;
    - ``factorvae``: the ELBO plus ``gamma`` TC, TC by :func:`tc_density_ratio` with ``critic``;
    - ``annealedvae``: the reconstruction plus ``gamma`` |KL - ``capacity``| (the capacity the
      caller raises over training).

    Returns ``total`` and the named terms; ``tc`` (minibatch-weighted) is logged for every model,
    to compare how much each leaves.
    """
    terms = {
        "reconstruction": reconstruction_nll(out["logits"], x, "bernoulli").mean(),
        "kl": gaussian_kl(out["mean"], out["log_var"]).mean(),
        "tc": tc_minibatch_weighted(out["sample"], out["mean"], out["log_var"]),
    }
    total = terms["reconstruction"]
    if model == "vae":
        total = total + terms["kl"]
    elif model == "betavae":
        total = total + beta * terms["kl"]
    elif model == "btcvae":
        total = total + terms["kl"] + (beta - 1.0) * terms["tc"]
    elif model == "factorvae":
        if critic is None:
            raise ValueError("FactorVAE's loss needs its permutation discriminator (critic=).")
        terms["tc_drt"] = tc_density_ratio(critic, out["sample"])
        total = total + terms["kl"] + gamma * terms["tc_drt"]
    elif model == "annealedvae":
        total = total + gamma * (terms["kl"] - capacity).abs()
    else:
        raise ValueError(f"Unknown VAE {model!r}; use vae, betavae, btcvae, factorvae or "
                         "annealedvae.")
    return {"total": total, **terms}
