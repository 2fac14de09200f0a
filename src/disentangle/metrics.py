"""Disentanglement metrics, following the protocol of disentanglement_lib (Locatello et al., 2019).

Two levels:

- **array level**: functions of codes (float, N x D, one row per example) and factors (int class
  indices, N x F): :func:`mig`, :func:`dci`, :func:`sap`, :func:`modularity`,
  :func:`explicitness`, :func:`jemmig`, :func:`gaussian_total_correlation` and
  :func:`mean_pairwise_mutual_information`. The pure scoring formulas they end in
  (:func:`dci_scores_from_importance`, :func:`modularity_from_mi`, :func:`mig_from_mi`,
  :func:`sap_from_scores`, :func:`gaussian_total_correlation_from_cov`) are exposed so that their
  closed-form cases can be checked on a given matrix. The two Gaussian total correlations are
  those of :mod:`disentangle.estimators`, imported here.
- **protocol level**: functions that sample from a ground-truth dataset ``data`` (``factor_names``,
  ``factor_sizes``, ``sample_factors(n, rng)``, ``images(factors)``) and call
  ``encode(images) -> codes``: :func:`beta_vae_score`, :func:`factor_vae_score` and
  :func:`evaluate`, which runs every metric with the disentanglement_lib defaults.

Mutual information is in nats and uses the plug-in (histogram) estimate on codes cut into
``num_bins`` equal-width bins over each dimension's observed range. Every function is deterministic
for a fixed ``seed``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

# The Gaussian total correlation has one implementation, in estimators; evaluate() reports it
# among the unsupervised scores, so both its names belong to this module's interface too.
from disentangle import config
from disentangle.estimators import (
    gaussian_total_correlation,
    gaussian_total_correlation_from_cov,  # noqa: F401 (re-exported)
)

ArrayLike = np.ndarray | torch.Tensor
Encoder = Callable[[torch.Tensor], ArrayLike]

#: Classifiers :func:`dci` can use. ``"gbt"`` (sklearn's GradientBoostingClassifier with its
#: defaults, impurity importances) is the disentanglement_lib choice and the only one whose
#: numbers compare with published DCI scores. ``"hist"`` (HistGradientBoostingClassifier with early
#: stopping, permutation importances on the test split, each factor's scaled to sum to one) is
#: the FAST option: several times quicker on many-class factors, but its scores are not comparable
#: with published ones, and on codes that carry little information its importances rest on a
#: handful of noisy accuracy drops (a factor no code predicts gets none at all).
DCI_CLASSIFIERS: tuple[str, ...] = ("gbt", "hist")

_PERMUTATION_REPEATS = 5
_PERMUTATION_SAMPLES = 1_000

#: disentanglement_lib's defaults, which :func:`evaluate` uses unless told otherwise.
DEFAULTS: dict[str, Any] = {
    "num_train": 10_000,
    "num_test": 5_000,
    "batch_size": 64,
    "num_variance_estimate": 10_000,
    "num_bins": 20,
    "prune_threshold": 0.05,
    "dci_classifier": "gbt",
}


class GroundTruthLike(Protocol):
    """What the protocol-level functions need from a dataset (duck-typed)."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def images(self, factors: np.ndarray) -> torch.Tensor: ...


# --------------------------------------------------------------------------------------------
# Input checks


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_codes(codes: ArrayLike, name: str = "codes") -> np.ndarray:
    array = _to_numpy(codes)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (N examples x D code dimensions); got shape "
            f"{array.shape}. A single code dimension is codes[:, None]."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): pass at least one example.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} holds {int(bad.sum())} non-finite values (NaN or inf), the first at example "
            f"{row}, dimension {col}. Check the encoder (a diverged model?) before scoring it."
        )
    return array


def _as_factors(factors: ArrayLike, name: str = "factors") -> np.ndarray:
    array = _to_numpy(factors)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (N examples x F factors) of class indices; got shape "
            f"{array.shape}. A single factor is factors[:, None]."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): pass at least one example.")
    if not np.issubdtype(array.dtype, np.integer):
        numeric = np.issubdtype(array.dtype, np.number)
        if not numeric or not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(
                f"{name} must be integer class indices (0, 1, 2, ...); got values of dtype "
                f"{array.dtype} that are not whole numbers. Discretise continuous factors first."
            )
    array = array.astype(np.int64)
    if array.min() < 0:
        raise ValueError(f"{name} must be non-negative class indices; found {array.min()}.")
    for k in range(array.shape[1]):
        if np.all(array[:, k] == array[0, k]):
            raise ValueError(
                f"Factor {k} of {name} takes the single value {array[0, k]} in all {len(array)} "
                "examples: a constant factor has zero entropy, so the normalised scores are 0/0. "
                "Drop it (evaluate() drops factors of size 1 itself)."
            )
    return array


def _as_pair(
    codes: ArrayLike, factors: ArrayLike, codes_name: str = "codes", factors_name: str = "factors"
) -> tuple[np.ndarray, np.ndarray]:
    z = _as_codes(codes, codes_name)
    v = _as_factors(factors, factors_name)
    if len(z) != len(v):
        raise ValueError(
            f"{codes_name} has {len(z)} examples but {factors_name} has {len(v)}: pass one row "
            "of factors per row of codes, in the same order."
        )
    return z, v


def _as_split(
    codes_train: ArrayLike, factors_train: ArrayLike, codes_test: ArrayLike, factors_test: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    z_train, v_train = _as_pair(codes_train, factors_train, "codes_train", "factors_train")
    z_test, v_test = _as_pair(codes_test, factors_test, "codes_test", "factors_test")
    if z_train.shape[1] != z_test.shape[1] or v_train.shape[1] != v_test.shape[1]:
        raise ValueError(
            f"Train and test disagree on the number of code dimensions ({z_train.shape[1]} vs "
            f"{z_test.shape[1]}) or factors ({v_train.shape[1]} vs {v_test.shape[1]}): both "
            "splits must come from the same encoder and dataset."
        )
    return z_train, v_train, z_test, v_test


def _check_bins(num_bins: int, num_points: int) -> None:
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}.")
    if num_points < num_bins:
        raise ValueError(
            f"Only {num_points} points for {num_bins} bins: a histogram estimate of mutual "
            "information needs many points per bin. Pass more points (the protocol uses 10,000) "
            "or fewer bins."
        )


def _check_matrix(matrix: ArrayLike, name: str) -> np.ndarray:
    array = _to_numpy(matrix).astype(np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D matrix; got shape {array.shape}.")
    if not np.all(np.isfinite(array)) or array.min() < 0:
        raise ValueError(f"{name} must hold finite, non-negative values.")
    return array


# --------------------------------------------------------------------------------------------
# Discrete information


def discretize(codes: ArrayLike, num_bins: int = 20) -> np.ndarray:
    """Cut each code dimension into ``num_bins`` equal-width bins over its observed range.

    Bin of a value: ``b(z) = min(floor(B (z - min z) / (max z - min z)), B - 1)``, an int64 array
    of the codes' shape. A constant dimension falls into bin 0.
    """
    z = _as_codes(codes)
    _check_bins(num_bins, len(z))
    low, high = z.min(axis=0), z.max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    bins = np.floor((z - low) / width * num_bins).astype(np.int64)
    return np.clip(bins, 0, num_bins - 1)


def _entropy_of_labels(labels: np.ndarray) -> float:
    counts = np.bincount(labels)
    p = counts[counts > 0] / len(labels)
    return float(-(p * np.log(p)).sum())


def _joint_labels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * (int(b.max()) + 1) + b


def plugin_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two integer label arrays from their empirical joint histogram (the
    plug-in estimate H(a) + H(b) - H(a, b))."""
    joint = _entropy_of_labels(_joint_labels(a, b))
    # The plug-in identity can land a rounding error below zero for independent labels.
    return max(_entropy_of_labels(a) + _entropy_of_labels(b) - joint, 0.0)


def factor_entropies(factors: ArrayLike) -> np.ndarray:
    """Empirical entropy ``H(v_k) = -sum_c p(c) ln p(c)`` of each factor, in nats (length F)."""
    v = _as_factors(factors)
    return np.array([_entropy_of_labels(v[:, k]) for k in range(v.shape[1])])


def mutual_information_matrix(
    codes: ArrayLike, factors: ArrayLike, num_bins: int = 20
) -> np.ndarray:
    """Plug-in mutual information ``I(z_j; v_k)`` in nats between each binned code dimension and
    each factor, a (D x F) matrix; codes are binned by :func:`discretize`."""
    z, v = _as_pair(codes, factors)
    binned = discretize(z, num_bins)
    return np.array(
        [[plugin_mutual_information(binned[:, j], v[:, k]) for k in range(v.shape[1])]
         for j in range(z.shape[1])]
    )


# --------------------------------------------------------------------------------------------
# MIG and JEMMIG


def _top_two(column: np.ndarray) -> tuple[int, float, float]:
    order = np.argsort(-column, kind="stable")
    second = float(column[order[1]]) if len(column) > 1 else 0.0
    return int(order[0]), float(column[order[0]]), second


def mig_from_mi(mi: ArrayLike, entropies: ArrayLike) -> float:
    """Mutual information gap of a (D x F) MI matrix:
    ``MIG = (1/F) sum_k (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k)``, where ``z_(1)`` and ``z_(2)``
    are the two code dimensions most informative about factor ``v_k`` (the second counts as 0
    when D = 1)."""
    m = _check_matrix(mi, "mi")
    h = _to_numpy(entropies).astype(np.float64)
    if h.shape != (m.shape[1],) or np.any(h <= 0):
        raise ValueError(
            f"entropies must hold one positive entropy per factor ({m.shape[1]}); got {h}."
        )
    gaps = []
    for k in range(m.shape[1]):
        _, top, second = _top_two(m[:, k])
        gaps.append((top - second) / h[k])
    return float(np.mean(gaps))


def mig(codes: ArrayLike, factors: ArrayLike, num_bins: int = 20) -> float:
    """Mutual information gap (Chen et al., 2018) with histogram MI, the disentanglement_lib
    variant: :func:`mig_from_mi` of :func:`mutual_information_matrix`. 1 when each factor is
    captured by exactly one code dimension, 0 when its two best dimensions tie."""
    z, v = _as_pair(codes, factors)
    return mig_from_mi(mutual_information_matrix(z, v, num_bins), factor_entropies(v))


def jemmig(codes: ArrayLike, factors: ArrayLike, num_bins: int = 20) -> float:
    """Joint-entropy-minus-mutual-information gap (Do & Tran, 2020), reported as ``1 - JEMMIG``:

    ``JEMMIG_k = [H(z_(1), v_k) - I(z_(1); v_k) + I(z_(2); v_k)] / (H(v_k) + ln B)``, averaged over
    factors, with ``z_(1)``, ``z_(2)`` the two dimensions most informative about ``v_k`` and ``B``
    the number of bins. Higher is better: 1 for a code that is exactly the factor; 0 for a maximally
    entropic code independent of it. A constant code scores ``ln B / (H(v_k) + ln B)``, not 0,
    because its joint entropy with the factor is only ``H(v_k)``.
    """
    z, v = _as_pair(codes, factors)
    binned = discretize(z, num_bins)
    mi = mutual_information_matrix(z, v, num_bins)
    values = []
    for k in range(v.shape[1]):
        best, top, second = _top_two(mi[:, k])
        joint = _entropy_of_labels(_joint_labels(binned[:, best], v[:, k]))
        values.append((joint - top + second) / (_entropy_of_labels(v[:, k]) + math.log(num_bins)))
    return float(1.0 - np.mean(values))


# --------------------------------------------------------------------------------------------
# Modularity and explicitness (Ridgeway & Mozer, 2018)


def modularity_from_mi(mi: ArrayLike) -> float:
    """Modularity of a (D x K) MI matrix ``m``: ``(1/D) sum_i [1 - (sum_j m_ij^2 - theta_i^2) /
    (theta_i^2 (K - 1))]`` with ``theta_i = max_j m_ij``. A code that carries no information about
    any factor (``theta_i = 0``) scores 0: it is not a module of anything."""
    m = _check_matrix(mi, "mi")
    if m.shape[1] < 2:
        raise ValueError("Modularity compares factors: it needs at least 2 factors (columns).")
    theta_sq = m.max(axis=1) ** 2
    off_peak = (m**2).sum(axis=1) - theta_sq
    informative = theta_sq > 0
    per_code = np.zeros(len(m))
    per_code[informative] = 1.0 - off_peak[informative] / (
        theta_sq[informative] * (m.shape[1] - 1)
    )
    return float(per_code.mean())


def modularity(codes: ArrayLike, factors: ArrayLike, num_bins: int = 20) -> float:
    """Modularity score (Ridgeway & Mozer, 2018): :func:`modularity_from_mi` of the histogram MI
    matrix. It asks whether each code depends on one factor only; it does not ask whether each
    factor is captured (duplicated codes keep a perfect score)."""
    z, v = _as_pair(codes, factors)
    if v.shape[1] < 2:
        raise ValueError("Modularity compares factors: it needs at least 2 factors.")
    return modularity_from_mi(mutual_information_matrix(z, v, num_bins))


def explicitness(
    codes_train: ArrayLike,
    factors_train: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    *,
    seed: int = 0,
) -> float:
    """Explicitness (Ridgeway & Mozer, 2018): for each factor, a logistic regression from all codes
    (sklearn defaults); on the test split, the one-vs-rest ROC-AUC of each class's predicted
    probability, averaged over classes and then over factors. 0.5 is chance, 1 a linearly
    explicit code. Classes absent from the training split are left out of the average."""
    z_train, v_train, z_test, v_test = _as_split(codes_train, factors_train, codes_test,
                                                 factors_test)
    per_factor = []
    for k in range(v_train.shape[1]):
        model = _quiet_fit(LogisticRegression(random_state=seed), z_train, v_train[:, k])
        proba = model.predict_proba(z_test)
        aucs = []
        for column, label in enumerate(model.classes_):
            positive = v_test[:, k] == label
            if positive.all() or not positive.any():
                continue
            aucs.append(roc_auc_score(positive, proba[:, column]))
        if not aucs:
            raise ValueError(
                f"Factor {k}: no class appears in both splits with positives and negatives in "
                "the test split; draw larger splits."
            )
        per_factor.append(np.mean(aucs))
    return float(np.mean(per_factor))


def _quiet_fit(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    # The reference protocol keeps sklearn's default iteration limits so that scores stay
    # comparable; hitting them is routine on uninformative codes and the score is still defined.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


# --------------------------------------------------------------------------------------------
# SAP (Kumar et al., 2018)


def sap_from_scores(scores: ArrayLike) -> float:
    """Separated attribute predictability of a (D x F) matrix of per-code prediction scores:
    ``SAP = (1/F) sum_k (S_(1)k - S_(2)k)``, the gap between the two best codes for each factor
    (the second counts as 0 when D = 1)."""
    s = _check_matrix(scores, "scores")
    gaps = []
    for k in range(s.shape[1]):
        _, top, second = _top_two(s[:, k])
        gaps.append(top - second)
    return float(np.mean(gaps))


def sap(
    codes_train: ArrayLike,
    factors_train: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    *,
    seed: int = 0,
) -> float:
    """SAP score: :func:`sap_from_scores` of the matrix ``S_jk`` of test accuracies of a linear SVM
    (``C = 0.01``, balanced classes) that predicts factor ``k`` from code dimension ``j`` alone.
    Its ceiling is below 1: an uninformative second-best code still scores chance accuracy, about
    ``1/K`` for a factor with ``K`` balanced classes."""
    z_train, v_train, z_test, v_test = _as_split(codes_train, factors_train, codes_test,
                                                 factors_test)
    scores = np.zeros((z_train.shape[1], v_train.shape[1]))
    for j in range(z_train.shape[1]):
        for k in range(v_train.shape[1]):
            model = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
            model = _quiet_fit(model, z_train[:, [j]], v_train[:, k])
            scores[j, k] = np.mean(model.predict(z_test[:, [j]]) == v_test[:, k])
    return sap_from_scores(scores)


# --------------------------------------------------------------------------------------------
# DCI (Eastwood & Williams, 2018)


def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of ``p`` (rows sum to 1) in log base ``base``; 0 when base is 1."""
    if base < 2:
        return np.zeros(len(p))
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log(safe)).sum(axis=1) / math.log(base)


def dci_scores_from_importance(importance: ArrayLike) -> dict[str, float]:
    """Disentanglement and completeness of a (D codes x F factors) importance matrix ``R``:

    ``disentanglement = sum_i rho_i (1 - H_F(P_i.))`` with ``P_ij = R_ij / sum_k R_ik`` and
    ``rho_i = sum_j R_ij / sum R``; ``completeness = sum_j rho_j (1 - H_D(P~_.j))`` with
    ``P~_ij = R_ij / sum_l R_lj`` and ``rho_j = sum_i R_ij / sum R``; ``H_K`` is the entropy in log
    base ``K``. A matrix of zeros (no code is used for any factor) scores 0 on both.
    """
    r = _check_matrix(importance, "importance")
    total = r.sum()
    if total == 0:
        return {"disentanglement": 0.0, "completeness": 0.0}
    num_codes, num_factors = r.shape

    def weighted_score(rows: np.ndarray, base: int) -> float:
        mass = rows.sum(axis=1)
        used = mass > 0
        p = rows[used] / mass[used, None]
        return float(((mass[used] / total) * (1.0 - _normalised_entropy(p, base))).sum())

    return {
        "disentanglement": weighted_score(r, num_factors),
        "completeness": weighted_score(r.T, num_codes),
    }


def _fit_factor(
    classifier: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, float, float]:
    if classifier == "gbt":
        model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
        importance = model.feature_importances_
    else:
        # One thread: the many short boosting rounds of a small problem leave OpenMP threads
        # spinning between rounds, and with factors already fitted in parallel (n_jobs) those
        # threads would compete for the same cores.
        with threadpool_limits(limits=1):
            model = HistGradientBoostingClassifier(random_state=seed, early_stopping=True)
            model.fit(x_train, y_train)
            # Histogram boosting has no impurity importances; the accuracy lost when a code is
            # shuffled on held-out data plays their part. Only a drop that stands clear of the
            # shuffling noise (two standard errors) counts: the rest would be importance by chance.
            # Predicting is the slow part with many classes, so each repeat uses a subsample.
            drop = permutation_importance(
                model, x_test, y_test, n_repeats=_PERMUTATION_REPEATS, random_state=seed,
                max_samples=min(len(x_test), _PERMUTATION_SAMPLES),
            )
        noise = 2 * drop.importances_std / math.sqrt(_PERMUTATION_REPEATS)
        importance = np.clip(drop.importances_mean - noise, 0.0, None)
        # Accuracy drops are larger for factors that are easier to predict; scaled to sum to one,
        # like the impurity importances of "gbt", every factor weighs the same in R.
        if importance.sum() > 0:
            importance = importance / importance.sum()
    train_accuracy = float(np.mean(model.predict(x_train) == y_train))
    test_accuracy = float(np.mean(model.predict(x_test) == y_test))
    return np.abs(importance), train_accuracy, test_accuracy


def dci(
    codes_train: ArrayLike,
    factors_train: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    seed: int = 0,
    *,
    classifier: str = "gbt",
    n_jobs: int | None = 1,
) -> dict[str, Any]:
    """DCI (Eastwood & Williams, 2018): one classifier per factor from all codes; its importances
    form column ``k`` of ``R`` (D x F); :func:`dci_scores_from_importance` gives disentanglement
    and completeness, and the mean test accuracy is the informativeness.

    ``classifier="gbt"`` (default) is sklearn's GradientBoostingClassifier with its defaults, as in
    disentanglement_lib; ``classifier="hist"`` is the FAST, NON-COMPARABLE option (see
    :data:`DCI_CLASSIFIERS`). ``n_jobs`` fits that many factors in parallel; it never changes the
    result. Returns ``disentanglement``, ``completeness``, ``informativeness`` (test accuracy),
    ``informativeness_train``, ``importance`` (the matrix R) and ``classifier``.
    """
    if classifier not in DCI_CLASSIFIERS:
        raise ValueError(
            f"Unknown DCI classifier {classifier!r}: use 'gbt' (the disentanglement_lib default, "
            "comparable) or 'hist' (fast, not comparable)."
        )
    z_train, v_train, z_test, v_test = _as_split(codes_train, factors_train, codes_test,
                                                 factors_test)
    # A boosting round fits one tree per class, so the factors with most classes go out first:
    # the longest fits start at once instead of leaving the other workers idle at the end.
    order = sorted(range(v_train.shape[1]), key=lambda k: -len(np.unique(v_train[:, k])))
    done = Parallel(n_jobs=n_jobs)(
        delayed(_fit_factor)(classifier, z_train, v_train[:, k], z_test, v_test[:, k], seed)
        for k in order
    )
    by_factor = dict(zip(order, done))
    fits = [by_factor[k] for k in range(v_train.shape[1])]
    importance = np.stack([fit[0] for fit in fits], axis=1)
    return {
        **dci_scores_from_importance(importance),
        "informativeness": float(np.mean([fit[2] for fit in fits])),
        "informativeness_train": float(np.mean([fit[1] for fit in fits])),
        "importance": importance,
        "classifier": classifier,
    }


# --------------------------------------------------------------------------------------------
# Unsupervised scores


def mean_pairwise_mutual_information(codes: ArrayLike, num_bins: int = 20) -> float:
    """Mean plug-in mutual information ``(2 / (D (D - 1))) sum_{i<j} I(z_i; z_j)`` in nats between
    pairs of binned code dimensions."""
    binned = discretize(codes, num_bins)
    num_codes = binned.shape[1]
    if num_codes < 2:
        raise ValueError("Pairwise mutual information needs at least 2 code dimensions.")
    pairs = [
        plugin_mutual_information(binned[:, i], binned[:, j])
        for i in range(num_codes) for j in range(i + 1, num_codes)
    ]
    return float(np.mean(pairs))


# --------------------------------------------------------------------------------------------
# Protocol level: sampling from a ground-truth dataset


def _child_seed(seed: int, tag: int) -> int:
    return int(np.random.SeedSequence([seed, tag]).generate_state(1)[0])


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _varying_factors(data: GroundTruthLike) -> np.ndarray:
    sizes = np.asarray(data.factor_sizes)
    varying = np.flatnonzero(sizes > 1)
    if len(varying) == 0:
        raise ValueError("The dataset has no factor with more than one class: nothing to measure.")
    return varying


def _check_count(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def encode_factors(
    data: GroundTruthLike, encode: Encoder, factors: np.ndarray, chunk_size: int = 4096
) -> np.ndarray:
    """Codes (N x D, float64) of the images of ``factors``, encoded ``chunk_size`` images at a
    time under ``torch.no_grad()``; ``encode`` may return a numpy array or a torch tensor."""
    chunks = []
    with torch.no_grad():
        for start in range(0, len(factors), chunk_size):
            part = factors[start:start + chunk_size]
            codes = _to_numpy(encode(data.images(part)))
            if codes.ndim != 2 or codes.shape[0] != len(part):
                raise ValueError(
                    f"encode returned shape {codes.shape} for {len(part)} images; it must return "
                    "one code vector per image, shape (n, D)."
                )
            chunks.append(codes)
    return _as_codes(np.concatenate(chunks), "encoded codes")


def _vary_one_factor_pairs(
    data: GroundTruthLike, encode: Encoder, num_points: int, batch_size: int,
    rng: np.random.Generator, varying: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.choice(varying, size=num_points)
    first = data.sample_factors(num_points * batch_size, rng)
    second = data.sample_factors(num_points * batch_size, rng)
    rows = np.arange(num_points * batch_size)
    fixed = np.repeat(labels, batch_size)
    second[rows, fixed] = first[rows, fixed]
    z1 = encode_factors(data, encode, first)
    z2 = encode_factors(data, encode, second)
    diff = np.abs(z1 - z2).reshape(num_points, batch_size, -1).mean(axis=1)
    return diff, labels


def beta_vae_score(
    data: GroundTruthLike,
    encode: Encoder,
    seed: int = 0,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
) -> dict[str, float]:
    """BetaVAE score (Higgins et al., 2017; the Z-diff score). Each point draws a factor ``k`` and
    ``batch_size`` pairs of factor vectors that agree on ``k``; its feature is
    ``(1/L) sum_l |z(x1_l) - z(x2_l)|`` and its label ``k``. A logistic regression (sklearn
    defaults) is fit on ``num_train`` points and scored on ``num_eval`` fresh ones. Factors with a
    single class are never drawn. Returns ``train_accuracy`` and ``eval_accuracy``; chance is one
    over the number of varying factors."""
    seed = _check_seed(seed)
    for name, value in (("batch_size", batch_size), ("num_train", num_train),
                        ("num_eval", num_eval)):
        _check_count(name, value)
    rng = np.random.default_rng(seed)
    varying = _varying_factors(data)
    x_train, y_train = _vary_one_factor_pairs(data, encode, num_train, batch_size, rng, varying)
    x_eval, y_eval = _vary_one_factor_pairs(data, encode, num_eval, batch_size, rng, varying)
    model = _quiet_fit(LogisticRegression(random_state=seed), x_train, y_train)
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }


def _factor_vae_votes(
    data: GroundTruthLike, encode: Encoder, num_votes: int, batch_size: int,
    rng: np.random.Generator, varying: np.ndarray, scale: np.ndarray, active: np.ndarray,
) -> np.ndarray:
    labels = rng.choice(varying, size=num_votes)
    factors = data.sample_factors(num_votes * batch_size, rng)
    fixed_value = data.sample_factors(num_votes, rng)[np.arange(num_votes), labels]
    rows = np.arange(num_votes * batch_size)
    factors[rows, np.repeat(labels, batch_size)] = np.repeat(fixed_value, batch_size)
    codes = encode_factors(data, encode, factors).reshape(num_votes, batch_size, -1)
    normalised = np.var(codes[:, :, active], axis=1, ddof=1) / scale[active] ** 2
    dims = np.flatnonzero(active)[np.argmin(normalised, axis=1)]
    votes = np.zeros((len(scale), len(data.factor_sizes)), dtype=np.int64)
    np.add.at(votes, (dims, labels), 1)
    return votes


def factor_vae_score(
    data: GroundTruthLike,
    encode: Encoder,
    seed: int = 0,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """FactorVAE score (Kim & Mnih, 2018). Code dimensions whose standard deviation over
    ``num_variance_estimate`` images is below ``prune_threshold`` are dropped. Each vote fixes one
    factor ``k`` over ``batch_size`` images and names ``argmin_j Var[z_j | v_k fixed] / Var[z_j]``;
    the majority-vote classifier maps each dimension to the factor it was most often named for.
    Returns ``train_accuracy`` (``sum_j max_k V_jk / num_train``), ``eval_accuracy`` on fresh
    votes and ``num_active_dims``; both accuracies are 0 when no dimension is active."""
    seed = _check_seed(seed)
    for name, value in (("batch_size", batch_size), ("num_train", num_train),
                        ("num_eval", num_eval)):
        _check_count(name, value, minimum=2 if name == "batch_size" else 1)
    _check_count("num_variance_estimate", num_variance_estimate, minimum=2)
    rng = np.random.default_rng(seed)
    varying = _varying_factors(data)
    codes = encode_factors(data, encode, data.sample_factors(num_variance_estimate, rng))
    scale = np.std(codes, axis=0, ddof=1)
    active = scale >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    votes = _factor_vae_votes(data, encode, num_train, batch_size, rng, varying, scale, active)
    assignment = np.argmax(votes, axis=1)
    held_out = _factor_vae_votes(data, encode, num_eval, batch_size, rng, varying, scale, active)
    return {
        "train_accuracy": float(votes.max(axis=1).sum() / num_train),
        "eval_accuracy": float(held_out[np.arange(len(scale)), assignment].sum() / num_eval),
        "num_active_dims": int(active.sum()),
    }


def _unsupervised(codes: np.ndarray, num_bins: int) -> dict[str, float]:
    # Constant dimensions have no correlation to speak of (and make the Gaussian TC 0/0), so the
    # unsupervised scores look only at dimensions that vary.
    varying = codes[:, codes.std(axis=0) > 0]
    if varying.shape[1] < 2:
        return {"gaussian_total_correlation": 0.0, "mean_pairwise_mi": 0.0}
    return {
        "gaussian_total_correlation": gaussian_total_correlation(varying),
        "mean_pairwise_mi": mean_pairwise_mutual_information(varying, num_bins),
    }


#: The scores :func:`evaluate` reports, each a number (besides them it records the factors, the
#: settings, versions and timings).
SCORES = (
    "mig", "jemmig", "modularity", "dci_disentanglement", "dci_completeness",
    "dci_informativeness", "dci_informativeness_train", "sap", "explicitness", "beta_vae_train",
    "beta_vae_eval", "factor_vae_train", "factor_vae_eval", "factor_vae_active_dims",
    "gaussian_total_correlation", "mean_pairwise_mi",
)


def protocol(profile: str) -> dict:
    """The sizes :func:`evaluate` scores a trained run with in ``profile``: disentanglement_lib's
    defaults in gpu, fewer points (and so noisier scores, recorded with the result) in cpu, and in
    smoke (and a dry run) just enough to exercise every metric."""
    return config.by_profile(
        profile,
        smoke={"num_train": 200, "num_test": 100, "batch_size": 16, "num_variance_estimate": 200,
               "dci_classifier": "hist"},
        cpu={"num_train": 2000, "num_test": 1000, "batch_size": 32, "num_variance_estimate": 2000},
        gpu={},
    )


def evaluate(
    data: GroundTruthLike,
    encode: Encoder,
    seed: int = 0,
    *,
    num_train: int = DEFAULTS["num_train"],
    num_test: int = DEFAULTS["num_test"],
    batch_size: int = DEFAULTS["batch_size"],
    num_variance_estimate: int = DEFAULTS["num_variance_estimate"],
    num_bins: int = DEFAULTS["num_bins"],
    prune_threshold: float = DEFAULTS["prune_threshold"],
    dci_classifier: str = DEFAULTS["dci_classifier"],
    n_jobs: int | None = 1,
) -> dict[str, Any]:
    """Every metric of this module on one encoder, with the disentanglement_lib defaults.

    One train split (``num_train`` encoded images) and one test split (``num_test``) feed MIG,
    JEMMIG, modularity (train), DCI, SAP, explicitness (train / test) and the unsupervised scores
    (train); :func:`beta_vae_score` (``num_train`` / ``num_test`` points) and
    :func:`factor_vae_score` draw their own batches. Factors with a single class (dSprites'
    colour) are left out. The result records the seed, every setting, the factors used, the DCI
    classifier, the numpy and scikit-learn versions, and the seconds each metric took.
    """
    seed = _check_seed(seed)
    _check_count("num_train", num_train)
    _check_count("num_test", num_test)
    varying = _varying_factors(data)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def timed(name: str, start: float) -> None:
        seconds[name] = round(time.perf_counter() - start, 3)

    tick = time.perf_counter()
    rng = np.random.default_rng(_child_seed(seed, 0))
    factors_train = data.sample_factors(num_train, rng)
    factors_test = data.sample_factors(num_test, rng)
    codes_train = encode_factors(data, encode, factors_train)
    codes_test = encode_factors(data, encode, factors_test)
    v_train, v_test = factors_train[:, varying], factors_test[:, varying]
    timed("encode", tick)

    result: dict[str, Any] = {}
    tick = time.perf_counter()
    result["mig"] = mig(codes_train, v_train, num_bins)
    result["jemmig"] = jemmig(codes_train, v_train, num_bins)
    result["modularity"] = (
        modularity(codes_train, v_train, num_bins) if len(varying) > 1 else float("nan")
    )
    timed("mig_jemmig_modularity", tick)

    tick = time.perf_counter()
    scores = dci(codes_train, v_train, codes_test, v_test, _child_seed(seed, 1),
                 classifier=dci_classifier, n_jobs=n_jobs)
    result["dci_disentanglement"] = scores["disentanglement"]
    result["dci_completeness"] = scores["completeness"]
    result["dci_informativeness"] = scores["informativeness"]
    result["dci_informativeness_train"] = scores["informativeness_train"]
    result["dci_importance"] = scores["importance"].tolist()
    timed("dci", tick)

    tick = time.perf_counter()
    result["sap"] = sap(codes_train, v_train, codes_test, v_test, seed=_child_seed(seed, 2))
    timed("sap", tick)
    tick = time.perf_counter()
    result["explicitness"] = explicitness(codes_train, v_train, codes_test, v_test,
                                          seed=_child_seed(seed, 3))
    timed("explicitness", tick)

    tick = time.perf_counter()
    beta = beta_vae_score(data, encode, _child_seed(seed, 4), batch_size=batch_size,
                          num_train=num_train, num_eval=num_test)
    result["beta_vae_train"] = beta["train_accuracy"]
    result["beta_vae_eval"] = beta["eval_accuracy"]
    timed("beta_vae", tick)

    tick = time.perf_counter()
    factor = factor_vae_score(data, encode, _child_seed(seed, 5), batch_size=batch_size,
                              num_train=num_train, num_eval=num_test,
                              num_variance_estimate=num_variance_estimate,
                              prune_threshold=prune_threshold)
    result["factor_vae_train"] = factor["train_accuracy"]
    result["factor_vae_eval"] = factor["eval_accuracy"]
    result["factor_vae_active_dims"] = factor["num_active_dims"]
    timed("factor_vae", tick)

    tick = time.perf_counter()
    result.update(_unsupervised(codes_train, num_bins))
    timed("unsupervised", tick)
    seconds["total"] = round(time.perf_counter() - started, 3)

    result.update({
        "factors": [data.factor_names[k] for k in varying],
        "code_dims": int(codes_train.shape[1]),
        "seed": seed,
        "settings": {
            "num_train": num_train, "num_test": num_test, "batch_size": batch_size,
            "num_variance_estimate": num_variance_estimate, "num_bins": num_bins,
            "prune_threshold": prune_threshold, "dci_classifier": dci_classifier,
        },
        "dci_classifier": dci_classifier,
        "numpy": np.__version__,
        "scikit-learn": metadata.version("scikit-learn"),
        "seconds": seconds,
    })
    return result
