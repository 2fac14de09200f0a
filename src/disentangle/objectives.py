"""Training objectives: the Gaussian KL, the DisTIB variational bound term by term, VIB, DisenIB,
the two constraints of the two-level GAN (InfoGAN's information bound and the total correlation
of the inferred codes, with two estimators), and the VAE family that Table 1 compares it with.

Each loss returns a dict of named scalar terms with ``total`` the one to minimise, so that the
training loop can log every term and name the one that blows up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
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


def disenib_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    critic: nn.Module,
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
    critic_logits = critic(torch.cat([pairs, shuffled])).float()
    target = torch.cat([torch.zeros(len(a), dtype=torch.long, device=a.device),
                        torch.ones(len(a), dtype=torch.long, device=a.device)])
    terms = {
        "reconstruction": reconstruction_nll(out["reconstruction"], x, likelihood).mean(),
        "cross_entropy": F.cross_entropy(out["logits"], y),
        "mi_a_z": (logits[:, 0] - logits[:, 1]).mean(),
        "critic": F.cross_entropy(critic_logits, target),
    }
    terms["total"] = (
        reconstruction_weight * terms["reconstruction"]
        + terms["cross_entropy"]
        + mi_weight * terms["mi_a_z"]
        + terms["critic"]
    )
    return terms


def gaussian_log_density(
    x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """log N(x; mu, diag sigma^2), per coordinate (broadcasting): -0.5 (log 2 pi + log sigma^2 +
    (x - mu)^2 / sigma^2)."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean).pow(2) * torch.exp(-log_var))


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


class PermutationDiscriminator(nn.Module):
    """T(c): two logits, class 0 for codes drawn jointly from q(c), class 1 for codes whose
    dimensions were permuted independently (drawn from prod_k q(c_k)). At its optimum
    T_0(c) - T_1(c) = log q(c) / prod_k q(c_k), the density ratio whose mean is the TC."""

    def __init__(self, code_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        sizes = [code_dim] + [hidden] * layers + [2]
        blocks: list[nn.Module] = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            blocks.append(nn.Linear(a, b))
            if k < len(sizes) - 2:
                blocks.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*blocks)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes)


def tc_density_ratio(discriminator: PermutationDiscriminator, codes: torch.Tensor) -> torch.Tensor:
    """Total correlation by the density-ratio trick (FactorVAE): TC ~ E_q[T_0(c) - T_1(c)].
    Gradients flow into ``codes`` (so the generator and Q can lower it) and into T's weights,
    which only T's own update may use."""
    logits = discriminator(codes).float()
    return (logits[:, 0] - logits[:, 1]).mean()


def permutation_discriminator_loss(
    discriminator: PermutationDiscriminator,
    codes: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """T's cross-entropy for telling the codes (class 0) from their dimension-wise permutation
    (class 1). The codes are detached first: this loss must never send gradient into the
    generator or Q (a known defect of several public implementations)."""
    codes = codes.detach()
    logits = discriminator(torch.cat([codes, permute_dims(codes, generator)])).float()
    target = torch.cat([
        torch.zeros(len(codes), dtype=torch.long, device=codes.device),
        torch.ones(len(codes), dtype=torch.long, device=codes.device),
    ])
    return F.cross_entropy(logits, target)


# --- The VAE family, Table 1's baselines ----------------------------------------------------------


def vae_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    model: str,
    beta: float | None = None,
    gamma: float | None = None,
    capacity: float = 0.0,
    critic: PermutationDiscriminator | None = None,
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
