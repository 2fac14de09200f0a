"""Training objectives: the Gaussian KL, the DisTIB variational bound term by term, and VIB.

Each loss returns a dict of named scalar terms with ``total`` the one to minimise, so that the
training loop can log every term and name the one that blows up.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


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
