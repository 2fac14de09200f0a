"""The metric protocol of the two-level GAN paper (Wang & Yao, arXiv 2409.02672, Table 1).

The paper scored EXP, JEMMIG, MOD, SAP and Z-diff with the metric-review library of Zaidi, Boilard,
Gagnon & Carbonneau ("Measuring disentanglement: a review of metrics", arXiv 2012.09276;
repository ``ubisoft/ubisoft-laforge-disentanglement-metrics``, read at commit ``05d5667``:
``src/metrics/*.py`` for the definitions, ``src/experiments/config.py`` for the defaults). Its
definitions and defaults differ from disentanglement_lib's, which :mod:`disentangle.metrics`
follows, so the two protocols' numbers must never be compared with each other; compare with the
paper's Table 1 only in this one (``evaluation.md``, "The two-level GAN paper's metric
protocol").

What the library does differently, all of it reproduced here (written from its definitions):

- **Every metric sees one data set** of ``N`` (factors, codes) rows. There is no train/test split:
  EXP and SAP fit and score their models on the same rows, and Z-diff draws its pairs of rows from
  the same set rather than from the generator.
- **Factors are quantised too** (its default ``continuous_factors=True``): each factor is min-max
  scaled to [0, 1] and cut into ``num_bins = 10`` equal-width bins (:func:`quantize`) before JEMMIG,
  MOD, EXP and Z-diff see it. A factor with at most 10 classes keeps its classes (the bins then
  separate every class); dSprites' 32 positions and 40 orientations become 10 bins each. SAP
  regresses on the factor values themselves, unbinned.
- **Codes are quantised the same way** (min-max, 10 bins) for JEMMIG and MOD, and min-max scaled for
  EXP.

Array level: :func:`z_diff`, :func:`explicitness`, :func:`jemmig`, :func:`modularity`, :func:`sap`
(and :func:`sap_r2_matrix`, :func:`quantize`), each a function of codes (N x D floats) and factors
(N x F numbers: class indices or values). Protocol level: :func:`evaluate_paper` draws ``N`` factor
vectors from a ground-truth dataset, encodes their images and runs the five metrics.

Mutual information and entropies are plug-in estimates in nats (the library uses bits); every
score below is a ratio of information quantities or does not use them, so the unit cancels.
The input checks, the information helpers, the modularity and SAP-gap formulas and the sampling
helpers are those of :mod:`disentangle.metrics`, imported from it.
"""

from __future__ import annotations

import math
import time
from importlib import metadata
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import minmax_scale

from disentangle import config
from disentangle.metrics import (
    ArrayLike,
    Encoder,
    GroundTruthLike,
    _as_codes,
    _as_factors,
    _check_bins,
    _check_count,
    _check_seed,
    _child_seed,
    _entropy_of_labels,
    _joint_labels,
    _quiet_fit,
    _top_two,
    _varying_factors,
    encode_factors,
    modularity_from_mi,
    plugin_mutual_information,
    sap_from_scores,
)

#: The metric-review library's defaults (``src/experiments/config.py``), which
#: :func:`evaluate_paper` uses unless told otherwise. ``num_points`` is not one of the library's
#: settings (it scores whatever data set it is given): 20,000 is the size its own experiments draw
#: (``NB_EXAMPLES`` in ``src/experiments/section5.*``); the paper does not state its own.
DEFAULTS: dict[str, Any] = {
    "num_points": 20_000,
    "num_bins": 10,
    "batch_size": 200,
    "num_train": 10_000,
    "num_eval": 5_000,
    "max_iter": 10_000,
    "continuous_factors": True,
}

#: The five scores of the paper's Table 1, under the names :func:`evaluate_paper` reports them.
SCORES = ("exp", "jemmig", "modularity", "sap", "z_diff")
#: The same five as a trained run records them (:func:`run_scores`), beside the book's scores.
RUN_SCORES = tuple(f"paper_{name}" for name in SCORES)


def protocol(profile: str) -> dict:
    """The sizes a trained run is scored with in ``profile``: the library's defaults
    (:data:`DEFAULTS`) in gpu; in cpu half the points (10,000, Z-diff on 5,000 and 2,500 of
    them), every definition, bin count and Z-diff's 200 pairs a point unchanged; in smoke just
    enough to exercise every score."""
    return config.by_profile(
        profile,
        smoke={"num_points": 1000, "num_train": 400, "num_eval": 200, "batch_size": 20,
               "max_iter": 200},
        cpu={"num_points": 10_000, "num_train": 5000, "num_eval": 2500},
        gpu={},
    )


def run_scores(source: GroundTruthLike, encode: Encoder, seed: int, profile: str) -> dict:
    """:func:`evaluate_paper` of a trained run in ``profile`` (:func:`protocol`), shaped for its
    ``metrics.json``: the five scores as :data:`RUN_SCORES`, and ``paper``, the rest of the
    result (raw Z-diff accuracy, factors, settings, versions, seconds)."""
    result = evaluate_paper(source, encode, seed, **protocol(profile))
    scores = {f"paper_{name}": result.pop(name) for name in SCORES}
    return {**scores, "paper": result}

# Z-diff builds its features this many points at a time (200 pairs each) to bound memory.
_Z_DIFF_CHUNK = 500


# --------------------------------------------------------------------------------------------
# Input checks and quantisation


def _as_factor_values(factors: ArrayLike, continuous_factors: bool) -> np.ndarray:
    """Factors as the library takes them: any finite numbers when they are ``continuous`` (they are
    scaled and binned, or regressed on), integer class indices otherwise."""
    if not continuous_factors:
        return _as_factors(factors)
    values = _as_codes(factors, "factors")
    for k in range(values.shape[1]):
        if np.all(values[:, k] == values[0, k]):
            raise ValueError(
                f"Factor {k} of factors takes the single value {values[0, k]:g} in all "
                f"{len(values)} examples: a constant factor cannot be predicted, binned or "
                "regressed on (its entropy and variance are 0). Drop it (evaluate_paper drops "
                "factors of size 1 itself)."
            )
    return values


def _as_paper_pair(
    codes: ArrayLike, factors: ArrayLike, continuous_factors: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    z = _as_codes(codes)
    v = _as_factor_values(factors, continuous_factors)
    if len(z) != len(v):
        raise ValueError(
            f"codes has {len(z)} examples but factors has {len(v)}: pass one row of factors per "
            "row of codes, in the same order."
        )
    return z, v


def quantize(values: ArrayLike, num_bins: int = 10) -> np.ndarray:
    """The library's discretisation of each column: min-max scale it to [0, 1] (sklearn's
    ``minmax_scale``; a constant column becomes 0), then cut [0, 1] into ``num_bins`` equal-width
    bins ``[i/B, (i+1)/B)``, the top edge 1 falling into the last bin. Returns int64 bin indices
    0 ... B - 1, the shape of ``values``.

    Distinct from :func:`disentangle.metrics.discretize` (disentanglement_lib's rule, 20 bins by
    default) only in the bin count and in which side of an edge a value lying exactly on it falls;
    the library compares against the edges of ``np.linspace(0, 1, B + 1)``, and so does this."""
    x = _as_codes(values, "values")
    _check_bins(num_bins, len(x))
    scaled = minmax_scale(x)
    edges = np.linspace(0.0, 1.0, num_bins + 1)[:-1]
    return (np.digitize(scaled, edges, right=False) - 1).astype(np.int64)


def _factor_labels(v: np.ndarray, num_bins: int, continuous_factors: bool) -> np.ndarray:
    if continuous_factors:
        return quantize(v, num_bins)
    return v.astype(np.int64)


def _mi_matrix(binned_codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array(
        [[plugin_mutual_information(binned_codes[:, j], labels[:, k])
          for k in range(labels.shape[1])]
         for j in range(binned_codes.shape[1])]
    )


# --------------------------------------------------------------------------------------------
# Z-diff (Higgins et al., 2017), the library's variant


def _value_groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by label, restricted to labels held by at least two rows; with the start and
    count of each label's run."""
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    keep = counts >= 2
    return order, starts[keep], counts[keep]


def _z_diff_features(
    codes: np.ndarray, targets: np.ndarray, batch_size: int,
    rng: np.random.Generator, groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> np.ndarray:
    features = np.empty((len(targets), codes.shape[1]))
    for k, (order, starts, counts) in enumerate(groups):
        points = np.flatnonzero(targets == k)
        for begin in range(0, len(points), _Z_DIFF_CHUNK):
            chunk = points[begin:begin + _Z_DIFF_CHUNK]
            # Each pair: a value of factor k drawn uniformly among those held by two rows or
            # more, then two distinct rows that hold it.
            value = rng.integers(len(counts), size=(len(chunk), batch_size))
            size = counts[value]
            first = rng.integers(0, size)
            second = (first + 1 + rng.integers(0, size - 1)) % size
            rows1 = order[starts[value] + first]
            rows2 = order[starts[value] + second]
            features[chunk] = np.abs(codes[rows1] - codes[rows2]).mean(axis=1)
    return features


def z_diff(
    codes: ArrayLike,
    factors: ArrayLike,
    seed: int = 0,
    *,
    num_bins: int = 10,
    batch_size: int = 200,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    max_iter: int = 10_000,
    continuous_factors: bool = True,
    scale: bool = True,
) -> float:
    """Z-diff (the BetaVAE score of Higgins et al., 2017) as the metric-review library computes it
    (``src/metrics/z_diff.py``), on one data set of codes and factors.

    Factors are quantised (:func:`quantize`, ``num_bins = 10``) when ``continuous_factors``. Each of
    ``num_train`` training and ``num_eval`` evaluation points draws a factor ``k`` uniformly and
    ``batch_size = 200`` pairs of distinct rows that share factor ``k``'s (binned) value, the value
    drawn uniformly among those held by at least two rows; its feature is
    ``(1/L) sum_l |z(row1_l) - z(row2_l)|`` on the raw codes and its label ``k``. A logistic
    regression (sklearn's, ``max_iter = 10,000``, other settings at their defaults: L2, C = 1,
    lbfgs, multinomial) is fitted on the training points; the score is its accuracy on the
    evaluation points, rescaled for chance when ``scale`` (the library's default):

        ``Z-diff = (acc - 1/F) / (1 - 1/F)``, F the number of factors,

    so 0 is chance and 1 a perfect classifier (raw accuracy ``= 1/F + (1 - 1/F) Z-diff``).

    One departure, in sampling only: the library forms each value's pairs by passing over its rows
    without replacement (shuffle, pair the first half with the second); here every pair is drawn
    independently. Each pair has the same law (two distinct rows with that value), but the random
    draws differ, so the numbers agree with the library's in distribution, not digit for digit.
    """
    seed = _check_seed(seed)
    for name, value in (("batch_size", batch_size), ("num_train", num_train),
                        ("num_eval", num_eval), ("max_iter", max_iter)):
        _check_count(name, value)
    z, v = _as_paper_pair(codes, factors, continuous_factors)
    num_factors = v.shape[1]
    if num_factors < 2:
        raise ValueError(
            "Z-diff classifies which factor was held fixed: it needs at least 2 factors "
            "(with one, chance is 1 and the rescaled score is 0/0)."
        )
    labels = _factor_labels(v, num_bins, continuous_factors)
    groups = []
    for k in range(num_factors):
        group = _value_groups(labels[:, k])
        if len(group[2]) == 0:
            raise ValueError(
                f"Factor {k}: no value (bin) is held by two rows, so no pair can share it. "
                "Pass more points or fewer bins."
            )
        groups.append(group)
    rng = np.random.default_rng(seed)
    y_train = rng.integers(num_factors, size=num_train)
    y_eval = rng.integers(num_factors, size=num_eval)
    if len(np.unique(y_train)) < 2:
        raise ValueError(
            f"num_train = {num_train} points drew a single factor: a classifier needs at least "
            "two. Use more training points (the library's default is 10,000)."
        )
    x_train = _z_diff_features(z, y_train, batch_size, rng, groups)
    x_eval = _z_diff_features(z, y_eval, batch_size, rng, groups)
    model = _quiet_fit(LogisticRegression(max_iter=max_iter), x_train, y_train)
    accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    if not scale:
        return accuracy
    chance = 1.0 / num_factors
    return (accuracy - chance) / (1.0 - chance)


# --------------------------------------------------------------------------------------------
# Explicitness (Ridgeway & Mozer, 2018), the library's variant


def explicitness(
    codes: ArrayLike,
    factors: ArrayLike,
    *,
    num_bins: int = 10,
    continuous_factors: bool = True,
) -> float:
    """Explicitness (EXP) as the metric-review library computes it (``src/metrics/explicitness.py``,
    its default ``impl=1``, ``scale=True``).

    Codes are min-max scaled to [0, 1]; factors are quantised into ``num_bins = 10`` bins when
    ``continuous_factors``. For each factor a one-vs-rest logistic regression (sklearn's, with
    ``class_weight="balanced"``, other settings at their defaults: L2, C = 1, lbfgs, 100
    iterations) is fitted on all rows and scored **on the same rows**: ``AUC_k`` is the mean over
    the factor's classes of the ROC-AUC of that class's predicted probability (the one-vs-rest
    probabilities normalised to sum to one per row). Then

        ``EXP = 2 (mean_k AUC_k - 1/2)``,

    0 for a code no better than chance, 1 for one that ranks every class perfectly. Scoring on the
    training rows makes it optimistic: a noise code of ``D`` dimensions scores a little above 0,
    more so the fewer the rows.

    The library asks ``LogisticRegression(multi_class="ovr")``, an argument recent scikit-learn no
    longer has; ``OneVsRestClassifier`` around the binary model is the same construction (one
    balanced binary fit per class, probabilities normalised per row). The score has no random part.
    """
    z, v = _as_paper_pair(codes, factors, continuous_factors)
    labels = _factor_labels(v, num_bins, continuous_factors)
    scaled = minmax_scale(z)
    aucs = []
    for k in range(labels.shape[1]):
        target = labels[:, k]
        model = OneVsRestClassifier(LogisticRegression(class_weight="balanced"))
        model = _quiet_fit(model, scaled, target)
        proba = model.predict_proba(scaled)
        aucs.append(np.mean([roc_auc_score(target == label, proba[:, column])
                             for column, label in enumerate(model.classes_)]))
    return float(2.0 * (np.mean(aucs) - 0.5))


# --------------------------------------------------------------------------------------------
# JEMMIG (Do & Tran, 2020) and modularity (Ridgeway & Mozer, 2018), the library's variants


def jemmig(
    codes: ArrayLike,
    factors: ArrayLike,
    *,
    num_bins: int = 10,
    continuous_factors: bool = True,
) -> float:
    """JEMMIG as the metric-review library computes it (``src/metrics/jemmig.py``), reported, as it
    reports it, as ``1 - JEMMIG`` (higher is better).

    Codes and (when ``continuous_factors``) factors are quantised into ``num_bins = 10`` bins
    (:func:`quantize`). With ``z_(1)``, ``z_(2)`` the two code dimensions of highest plug-in mutual
    information with factor ``v_k``:

        ``J_k = (H(v_k, z_(1)) - I(v_k; z_(1)) + I(v_k; z_(2))) / (H(v_k) + log B)``,
        ``score = (1/F) sum_k (1 - J_k)``.

    1 for a code that is exactly the (binned) factor; 0 for a code independent of the factor
    whose bins are equally filled (``H(z) = log B``). A code that fills its bins unequally
    (Gaussian noise, a constant) scores above 0: its floor is ``(log B - H(z)) / (H(v) + log B)``.
    With one code dimension the second-best information counts as 0 (the library fails there).
    """
    z, v = _as_paper_pair(codes, factors, continuous_factors)
    binned = quantize(z, num_bins)
    labels = _factor_labels(v, num_bins, continuous_factors)
    mi = _mi_matrix(binned, labels)
    per_factor = []
    for k in range(labels.shape[1]):
        best, top, second = _top_two(mi[:, k])
        joint = _entropy_of_labels(_joint_labels(labels[:, k], binned[:, best]))
        normaliser = _entropy_of_labels(labels[:, k]) + math.log(num_bins)
        per_factor.append(1.0 - (joint - top + second) / normaliser)
    return float(np.mean(per_factor))


def modularity(
    codes: ArrayLike,
    factors: ArrayLike,
    *,
    num_bins: int = 10,
    continuous_factors: bool = True,
) -> float:
    """Modularity (MOD) as the metric-review library computes it (``src/metrics/modularity.py``):
    :func:`disentangle.metrics.modularity_from_mi` of the plug-in mutual information between the
    codes and the factors, both quantised into ``num_bins = 10`` bins (the factors only when
    ``continuous_factors``):

        ``MOD = (1/D) sum_j [1 - (sum_k m_jk^2 - theta_j^2) / (theta_j^2 (F - 1))]``,
        ``theta_j = max_k m_jk``.

    1 when each code dimension carries information about one factor only. One departure: a code
    dimension with no information about any factor (a constant one) scores 0 here, as in
    :mod:`disentangle.metrics`; in the library it is 0/0 and makes the whole score NaN.
    """
    z, v = _as_paper_pair(codes, factors, continuous_factors)
    if v.shape[1] < 2:
        raise ValueError("Modularity compares factors: it needs at least 2 factors.")
    mi = _mi_matrix(quantize(z, num_bins), _factor_labels(v, num_bins, continuous_factors))
    return modularity_from_mi(mi)


# --------------------------------------------------------------------------------------------
# SAP (Kumar et al., 2018), the library's regression variant


def sap_r2_matrix(codes: ArrayLike, factors: ArrayLike) -> np.ndarray:
    """The (D x F) matrix ``S_jk = max(0, R^2)`` of a linear regression (sklearn's
    ``LinearRegression``, with intercept) of factor ``k``'s values on code dimension ``j`` alone,
    fitted and scored on the same rows. For one regressor ``R^2`` is the squared correlation of the
    code and the factor, so it ignores any affine rescaling of either (class indices stand in for
    factor values that are affine in them, as dSprites' are). A constant code scores 0."""
    z, v = _as_paper_pair(codes, factors, continuous_factors=True)
    scores = np.zeros((z.shape[1], v.shape[1]))
    for j in range(z.shape[1]):
        x = z[:, [j]]
        for k in range(v.shape[1]):
            prediction = LinearRegression().fit(x, v[:, k]).predict(x)
            scores[j, k] = max(0.0, r2_score(v[:, k], prediction))
    return scores


def sap(codes: ArrayLike, factors: ArrayLike) -> float:
    """SAP as the metric-review library computes it by default (``src/metrics/sap.py``,
    ``regression=True``): the gap between the two best codes' ``R^2`` of :func:`sap_r2_matrix`,
    averaged over factors (:func:`disentangle.metrics.sap_from_scores`),

        ``SAP = (1/F) sum_k (S_(1)k - S_(2)k)``.

    Factors are regressed on as numbers, unbinned (a categorical factor such as dSprites' shape is
    taken by its index, as the library takes it). 1 when each factor is a linear function of one
    code dimension and uncorrelated with the others; unlike disentanglement_lib's SVM accuracies
    (:func:`disentangle.metrics.sap`), an uninformative code scores ``R^2 = 0``, not chance, so the
    ceiling is 1. With one code dimension the second-best counts as 0 (the library fails there).
    """
    return sap_from_scores(sap_r2_matrix(codes, factors))


# --------------------------------------------------------------------------------------------
# Protocol level


def evaluate_paper(
    source: GroundTruthLike,
    encode: Encoder,
    seed: int = 0,
    *,
    num_points: int = DEFAULTS["num_points"],
    num_bins: int = DEFAULTS["num_bins"],
    batch_size: int = DEFAULTS["batch_size"],
    num_train: int = DEFAULTS["num_train"],
    num_eval: int = DEFAULTS["num_eval"],
    max_iter: int = DEFAULTS["max_iter"],
    continuous_factors: bool = DEFAULTS["continuous_factors"],
) -> dict[str, Any]:
    """The five scores of the two-level GAN paper's Table 1 in its protocol (the metric-review
    library's defaults, :data:`DEFAULTS`), on one encoder.

    Draws ``num_points`` factor vectors from ``source`` (seeded by ``seed``), encodes their images
    (``encode(images) -> codes``; for a VAE the mean, as in :func:`disentangle.metrics.evaluate`)
    and scores that one data set: ``exp`` (:func:`explicitness`), ``jemmig`` (:func:`jemmig`),
    ``modularity`` (:func:`modularity`), ``sap`` (:func:`sap`) and ``z_diff`` (:func:`z_diff`,
    rescaled for chance, with ``z_diff_accuracy`` its raw evaluation accuracy beside it). Factors
    with a single class (dSprites' colour) are left out, so F is the number of the others (5 on
    dSprites). The result also records the factors used, the seed, the settings, the numpy and
    scikit-learn versions and the seconds each step took. Deterministic for a fixed seed and a
    deterministic ``encode``.
    """
    seed = _check_seed(seed)
    _check_count("num_points", num_points)
    varying = _varying_factors(source)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def timed(name: str, start: float) -> None:
        seconds[name] = round(time.perf_counter() - start, 3)

    tick = time.perf_counter()
    rng = np.random.default_rng(_child_seed(seed, 0))
    factors = source.sample_factors(num_points, rng)
    codes = encode_factors(source, encode, factors)
    v = factors[:, varying]
    timed("encode", tick)

    shared = {"num_bins": num_bins, "continuous_factors": continuous_factors}
    result: dict[str, Any] = {}
    tick = time.perf_counter()
    result["exp"] = explicitness(codes, v, **shared)
    timed("exp", tick)
    tick = time.perf_counter()
    result["jemmig"] = jemmig(codes, v, **shared)
    result["modularity"] = (
        modularity(codes, v, **shared) if len(varying) > 1 else float("nan")
    )
    timed("jemmig_modularity", tick)
    tick = time.perf_counter()
    result["sap"] = sap(codes, v)
    timed("sap", tick)
    tick = time.perf_counter()
    if len(varying) > 1:
        score = z_diff(codes, v, _child_seed(seed, 1), batch_size=batch_size,
                       num_train=num_train, num_eval=num_eval, max_iter=max_iter, **shared)
        chance = 1.0 / len(varying)
        result["z_diff"] = score
        result["z_diff_accuracy"] = chance + (1.0 - chance) * score
    else:
        result["z_diff"] = result["z_diff_accuracy"] = float("nan")
    timed("z_diff", tick)
    seconds["total"] = round(time.perf_counter() - started, 3)

    result.update({
        "protocol": "metric-review library (Zaidi et al. 2020), as in arXiv 2409.02672",
        "factors": [source.factor_names[k] for k in varying],
        "code_dims": int(codes.shape[1]),
        "seed": seed,
        "settings": {
            "num_points": num_points, "num_bins": num_bins, "batch_size": batch_size,
            "num_train": num_train, "num_eval": num_eval, "max_iter": max_iter,
            "continuous_factors": continuous_factors,
        },
        "numpy": np.__version__,
        "scikit-learn": metadata.version("scikit-learn"),
        "seconds": seconds,
    })
    return result
