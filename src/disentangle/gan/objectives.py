"""The GAN family's objective: InfoGAN's lower bound on the information between the codes and
the generated image (the TC penalty of TC-GAN is :mod:`disentangle.losses`'s)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from disentangle.losses import gaussian_log_density


def code_entropy(code_dim: int, categorical: Sequence[int] = ()) -> float:
    """H(c) in nats of the GAN's code prior: log 2 per continuous code uniform on [-1, 1], log K per
    uniform categorical code with K classes."""
    return code_dim * math.log(2.0) + sum(math.log(k) for k in categorical)


def infogan_bound(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    codes: torch.Tensor,
    categorical_logits: Sequence[torch.Tensor] = (),
    categorical_codes: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """InfoGAN's lower bound on the information between the codes and the generated image,

    L_I = E_{c,z}[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c)),

    from Q's Gaussian posterior over the continuous codes (``mean``, ``log_var``, (N, K)) and
    softmax logits per categorical code (``categorical_codes`` (N, M) holds their classes).
    Returns ``nll`` (E[-log Q(c | x)], the term a loss minimises), its ``continuous`` and
    ``categorical`` parts, and ``bound`` = L_I in nats (H(c) from :func:`code_entropy`).
    """
    continuous = -gaussian_log_density(codes, mean, log_var).sum(dim=1).mean()
    categorical = torch.zeros((), device=mean.device)
    for k, logits in enumerate(categorical_logits):
        categorical = categorical + F.cross_entropy(logits.float(), categorical_codes[:, k])
    sizes = [logits.shape[1] for logits in categorical_logits]
    nll = continuous + categorical
    return {
        "nll": nll,
        "continuous": continuous,
        "categorical": categorical,
        "bound": code_entropy(mean.shape[1], sizes) - nll,
    }
