"""The supervised family's objectives: the DisTIB variational bound term by term (also the
two-step method's), VIB's and DisenIB's. Each returns the named terms and ``total``."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from disentangle.losses import gaussian_kl, reconstruction_nll
from disentangle.nets import to_signed
from disentangle.supervised.networks import DisenIB


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


#: DisenIB's objective as its reference code weights it: noise samples per input, the noise the
#: estimator sees on both codes, the weights of the reconstruction (a per-pixel mean squared error
#: on [-1, 1]), of the estimator's term and of the embedding wall (codes kept in [-radius, radius]),
#: and of the estimator's zero-centring term.
DISENIB = {"samples": 10, "estimator_noise": 0.1, "reconstruction": 10.0, "estimator": 0.5,
           "wall": 10.0, "radius": 3.0, "zero_centre": 0.05}


def _noisy(code: torch.Tensor, std: float, samples: int) -> torch.Tensor:
    """``samples`` noisy copies of each row, code + std * N(0, I): (len(code) * samples, dim)."""
    copies = code.repeat_interleave(samples, 0)
    return copies + std * torch.randn_like(copies)


def disenib_loss(model: DisenIB, x: torch.Tensor, y: torch.Tensor,
                 trains: str | None) -> dict[str, torch.Tensor]:
    """DisenIB's main objective per batch (Pan et al. 2021; its reference code's procedure), which
    maximises I(T; Y) + I(X; S, Y) - I(S; T):

    L = E[-log q(y | t + N(0, 1))] + 10 E||rec(s + N(0, 0.1^2), y) - x||^2 / pixels
        + 0.5 E[-D(s + N(0, 0.1^2), t + N(0, 0.1^2))] + 10 E[relu(|(s, t)| - 3)^2]

    with :data:`DISENIB` noisy samples per image, x in [-1, 1] and D the estimator, which scores
    pairs from the product of the marginals +1 and joint pairs -1: raising D on joint pairs makes
    them look independent, lowering I(S; T). ``trains`` names the encoder D's term reaches
    (``"style"`` or ``"label"``; the other's code is detached) or is ``None`` (the warm-up: the
    term is reported, not trained). The estimator's own weights take no step from this loss."""
    w = DISENIB
    t, s = model.encoder_a(to_signed(x)), model.encoder_z(to_signed(x))
    labels = y.repeat_interleave(w["samples"], 0)
    target = to_signed(x).repeat_interleave(w["samples"], 0)
    reconstruction = model.reconstruct(_noisy(s, model.NOISE["z"], w["samples"]), labels)
    pair_s = s if trains == "style" else s.detach()
    pair_t = t if trains == "label" else t.detach()
    noise = w["estimator_noise"]
    terms = {
        "cross_entropy": F.cross_entropy(
            model.classifier(_noisy(t, model.NOISE["a"], w["samples"])), labels),
        "reconstruction": (reconstruction - target).square().mean(),
        "estimator": -model.estimator(_noisy(pair_s, noise, w["samples"]),
                                      _noisy(pair_t, noise, w["samples"])).mean(),
        "wall": F.relu(torch.cat([s.flatten(), t.flatten()]).abs() - w["radius"]).square().mean(),
    }
    terms["total"] = (terms["cross_entropy"] + w["reconstruction"] * terms["reconstruction"]
                      + w["wall"] * terms["wall"]
                      + (w["estimator"] * terms["estimator"] if trains else 0.0))
    return terms


def cluster(codes: torch.Tensor, radius: float) -> torch.Tensor:
    """Each code replaced by the mean of the batch's codes within ``radius`` of it (mean absolute
    difference per dimension): the reference code's smoothing of the estimator's product pairs."""
    near = ((codes[:, None] - codes[None]).abs().mean(2) < radius).float()
    return near @ codes / near.sum(1, keepdim=True)


def disenib_estimator_loss(model: DisenIB, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One least-squares step of DisenIB's estimator D (reference code): the codes of ``x``
    (detached), noisy (:data:`DISENIB`), as joint pairs (target -1) and, clustered
    (:func:`cluster`) and permuted independently, as pairs of the product of the marginals
    (target +1), plus a small term keeping D's mean output at 0. Reports D's mean on each kind
    (``joint``, ``product``): an estimator that learned tells them apart."""
    w = DISENIB
    with torch.no_grad():
        t, s = model.encoder_a(to_signed(x)), model.encoder_z(to_signed(x))
    noise, n = w["estimator_noise"], w["samples"]
    product_s = _noisy(cluster(s, model.NOISE["z"]), noise, n)
    product_t = _noisy(cluster(t, model.NOISE["a"]), noise, n)
    product = model.estimator(product_s[torch.randperm(len(product_s), device=x.device)],
                              product_t[torch.randperm(len(product_t), device=x.device)])
    joint = model.estimator(_noisy(s, noise, n), _noisy(t, noise, n))
    terms = {"product": product.mean(), "joint": joint.mean()}
    terms["total"] = ((1 - product).square().mean() + (1 + joint).square().mean()
                      + w["zero_centre"] * torch.cat([product, joint]).mean().square())
    return terms
