"""Estimators of information quantities for learned continuous codes, used to evaluate DisTIB.

- :func:`gaussian_encoder_mi`: I(X; A) for a Gaussian encoder p(a|x), Monte Carlo over a data set;
- :func:`kl_to_standard_normal`: the variational upper bound E_x KL(p(a|x) || N(0, I)) on I(X; A);
- :func:`classifier_mi_lower_bound`: I(A; Y) >= H(Y) - cross-entropy of a classifier q(y|a);
- :func:`ksg_mutual_information`: the nonparametric Kraskov-Stoegbauer-Grassberger estimator of
  I(U; V) between continuous codes;
- :func:`gaussian_total_correlation` and :func:`gaussian_mutual_information`: the same quantities
  for the Gaussian with the codes' covariance (exact when the codes are jointly Gaussian), from
  the closed form on a covariance, :func:`gaussian_total_correlation_from_cov`. They are the only
  implementation: :mod:`disentangle.metrics` reports them under the same names.

Each accepts numpy arrays or torch tensors (rows are samples) and returns a float, in nats unless
``unit="bits"``; those that draw random numbers take a ``seed`` and are deterministic given it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree
from scipy.special import digamma, logsumexp

from disentangle.info import unit_scale

_LOG_2PI = float(np.log(2 * np.pi))


def _float64(x: ArrayLike) -> np.ndarray:
    """``x`` (numpy array, torch tensor on any device, or nested lists) as a float64 array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _rows(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a float64 array of shape (samples, dimensions); a vector is one dimension."""
    arr = _float64(x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (samples, dims) or (samples,); got {arr.shape}.")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples; got {arr.shape[0]}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values; check the model's outputs.")
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"The inputs need the same number of samples (rows); got {lengths}.")


def gaussian_encoder_mi(
    mu: ArrayLike,
    log_var: ArrayLike,
    *,
    samples: int = 1,
    seed: int = 0,
    unit: str = "nats",
    chunk: int = 512,
) -> float:
    """Monte-Carlo I(X; A) for a Gaussian encoder p(a|x) = N(mu(x), diag exp(log_var(x))):

        I(X; A) ~ 1/(NS) sum_{i,s} [ log p(a_is | x_i) - log (1/N) sum_j p(a_is | x_j) ],

    a_is ~ p(a | x_i), the marginal p(a) taken as the mixture of the N posteriors of the data
    set. The estimate never exceeds log N, so N must be large against exp(I(X; A)).
    """
    m, lv = _rows(mu, "mu"), _rows(log_var, "log_var")
    if m.shape != lv.shape:
        raise ValueError(f"mu {m.shape} and log_var {lv.shape} must have one shape.")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}.")
    n = len(m)
    rng = np.random.default_rng(seed)
    inv_var = np.exp(-lv)
    # log N(a; mu_j, var_j) = c_j - 0.5 * sum_d (a_d^2 - 2 a_d mu_jd) / var_jd, expanded so that
    # every (sample, component) pair costs two matrix products instead of an (n, n, d) tensor.
    const = -0.5 * (lv.shape[1] * _LOG_2PI + lv.sum(1) + (m * m * inv_var).sum(1))
    total = 0.0
    for _ in range(samples):
        eps = rng.standard_normal(m.shape)
        a = m + np.exp(0.5 * lv) * eps
        own = -0.5 * (lv.shape[1] * _LOG_2PI + lv.sum(1) + (eps * eps).sum(1))
        for start in range(0, n, chunk):
            block = a[start:start + chunk]
            cross = const[None, :] - 0.5 * ((block * block) @ inv_var.T) + block @ (m * inv_var).T
            mixture = logsumexp(cross, axis=1) - np.log(n)
            total += float((own[start:start + chunk] - mixture).sum())
    return total / (n * samples) * unit_scale(unit)


def kl_to_standard_normal(mu: ArrayLike, log_var: ArrayLike, *, unit: str = "nats") -> float:
    """The variational upper bound on I(X; A) with prior N(0, I):
    E_x KL(N(mu, var) || N(0, I)) = mean over rows of 0.5 * sum_j (mu_j^2 + var_j - log var_j - 1).
    """
    m, lv = _rows(mu, "mu"), _rows(log_var, "log_var")
    if m.shape != lv.shape:
        raise ValueError(f"mu {m.shape} and log_var {lv.shape} must have one shape.")
    kl = 0.5 * (m * m + np.exp(lv) - lv - 1.0).sum(1)
    return float(kl.mean()) * unit_scale(unit)


def classifier_mi_lower_bound(
    logits: ArrayLike, labels: ArrayLike, *, label_entropy: float | None = None, unit: str = "nats"
) -> float:
    """The variational lower bound I(A; Y) >= H(Y) + E log q(y | a) = H(Y) - cross-entropy, for
    a classifier q(y|a) = softmax(logits). H(Y) is the entropy of the labels' empirical frequencies
    unless ``label_entropy`` (in nats) gives it."""
    z = _rows(logits, "logits")
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a vector of integer classes; got {y.dtype} {y.shape}.")
    _same_length(logits=z, labels=y)
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(
            f"labels must lie in 0..{z.shape[1] - 1} (one logit per class); "
            f"got {y.min()}..{y.max()}."
        )
    log_q = z - logsumexp(z, axis=1, keepdims=True)
    cross_entropy = -float(log_q[np.arange(len(y)), y].mean())
    if label_entropy is None:
        freq = np.bincount(y, minlength=z.shape[1]) / len(y)
        freq = freq[freq > 0]
        label_entropy = float(-(freq * np.log(freq)).sum())
    return (label_entropy - cross_entropy) * unit_scale(unit)


def ksg_mutual_information(
    x: ArrayLike,
    y: ArrayLike,
    *,
    k: int = 3,
    seed: int = 0,
    jitter: float = 1e-10,
    unit: str = "nats",
) -> float:
    """Kraskov-Stoegbauer-Grassberger estimator (their algorithm 1) of I(U; V):

        I ~ psi(k) + psi(N) - < psi(n_u + 1) + psi(n_v + 1) >,

    eps_i the max-norm distance from sample i to its k-th neighbour in the joint space, n_u (n_v)
    the number of other samples strictly closer than eps_i in the U (V) space alone. A tiny
    seeded jitter (``jitter`` times each column's scale) breaks ties between repeated values.
    """
    u, v = _rows(x, "x"), _rows(y, "y")
    _same_length(x=u, y=v)
    n = len(u)
    if not 1 <= k < n:
        raise ValueError(f"k must lie in 1..{n - 1} for {n} samples; got {k}.")
    rng = np.random.default_rng(seed)

    def jittered(arr: np.ndarray) -> np.ndarray:
        scale = np.maximum(arr.std(0), 1e-300)
        return arr + jitter * scale * rng.standard_normal(arr.shape)

    u, v = jittered(u), jittered(v)
    joint = np.hstack([u, v])
    dist, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    # Counting strictly inside eps: shrink the radius to the next float below it.
    radius = np.nextafter(dist[:, -1], 0)
    n_u = cKDTree(u).query_ball_point(u, radius, p=np.inf, return_length=True) - 1
    n_v = cKDTree(v).query_ball_point(v, radius, p=np.inf, return_length=True) - 1
    value = digamma(k) + digamma(n) - float(np.mean(digamma(n_u + 1) + digamma(n_v + 1)))
    return float(value) * unit_scale(unit)


def _blocks(groups: Sequence[Sequence[int]] | None, dims: int) -> list[list[int]]:
    """``groups`` as lists of column indices, checked to split 0..dims-1 with each column once;
    ``None`` makes every column its own block."""
    blocks = [[j] for j in range(dims)] if groups is None else [list(g) for g in groups]
    if sorted(j for g in blocks for j in g) != list(range(dims)):
        raise ValueError(
            f"groups must split the columns 0..{dims - 1} into blocks, each column once; "
            f"got {blocks}."
        )
    return blocks


def gaussian_total_correlation_from_cov(
    cov: ArrayLike, groups: Sequence[Sequence[int]] | None = None, *, unit: str = "nats"
) -> float:
    """Total correlation of the Gaussian N(0, S) with covariance ``cov`` = S between the blocks
    ``groups`` of its dimensions (default: every dimension its own block):

        TC = 1/2 * ( sum_g log det S_gg - log det S ) = KL(N(0, S) || prod_g N(0, S_gg)),

    which for single dimensions is 1/2 * ( sum_i log S_ii - log det S ). It is infinite when S is
    singular while its blocks are not: some block is then an exact linear function of the others.
    """
    factor = unit_scale(unit)
    sigma = _float64(cov)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1] or not np.all(np.isfinite(sigma)):
        raise ValueError(f"cov must be a finite square matrix; got shape {sigma.shape}.")
    if not np.allclose(sigma, sigma.T):
        raise ValueError("cov must be symmetric.")
    variances = np.diag(sigma)
    if np.any(variances <= 0):
        raise ValueError(
            f"cov has non-positive variances at dimensions {np.flatnonzero(variances <= 0)}: a "
            "constant code has no Gaussian total correlation; drop that dimension."
        )
    blocks = _blocks(groups, len(sigma))
    # TC is unchanged by rescaling each dimension; on the correlation matrix the determinants
    # stay near 1 whatever the codes' units, so their logarithms do not lose precision.
    scale = np.sqrt(variances)
    corr = sigma / np.outer(scale, scale)
    parts = 0.0
    for g in blocks:
        sign, logdet = np.linalg.slogdet(corr[np.ix_(g, g)])
        if sign <= 0:
            raise ValueError(
                f"The block {g} has a singular covariance (a duplicated column?), so the total "
                "correlation between blocks is undefined; drop the redundant columns."
            )
        parts += logdet
    sign, logdet = np.linalg.slogdet(corr)
    if sign <= 0:
        return math.inf
    # Fischer's inequality makes TC >= 0; only rounding can take it below.
    return max(0.5 * float(parts - logdet), 0.0) * factor


def gaussian_total_correlation(
    codes: ArrayLike, groups: Sequence[Sequence[int]] | None = None, *, unit: str = "nats"
) -> float:
    """:func:`gaussian_total_correlation_from_cov` of the codes' sample covariance S (rows are
    samples; the unbiased estimate, ddof = 1, unregularised), between the blocks ``groups`` of
    columns (default: every column its own block): the total correlation of the Gaussian that
    matches the codes' first two moments, exactly their multi-information when they are jointly
    Gaussian. Infinite when one column is an exact linear function of the others."""
    c = _rows(codes, "codes")
    if len(c) <= c.shape[1]:
        # Fewer samples than dimensions make S singular whatever the codes: an infinite TC
        # would say nothing about them.
        raise ValueError(
            f"codes need more samples than dimensions for a full-rank covariance; got "
            f"{len(c)} samples of {c.shape[1]} dimensions."
        )
    cov = np.atleast_2d(np.cov(c, rowvar=False))
    return gaussian_total_correlation_from_cov(cov, groups, unit=unit)


def gaussian_mutual_information(x: ArrayLike, y: ArrayLike, *, unit: str = "nats") -> float:
    """I(U; V) of the Gaussian with the sample covariance of the two codes side by side:
    1/2 * (log det S_uu + log det S_vv - log det S)."""
    u, v = _rows(x, "x"), _rows(y, "y")
    _same_length(x=u, y=v)
    du = u.shape[1]
    groups = [list(range(du)), list(range(du, du + v.shape[1]))]
    return gaussian_total_correlation(np.hstack([u, v]), groups, unit=unit)
