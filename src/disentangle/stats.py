"""The statistics of a study: a group's metric over seeds, and two groups compared seed by seed.

A group's summary (:func:`summarise`) is the mean, the sample standard deviation and a percentile
bootstrap 95% interval of the mean over the runs that finished. A comparison (:func:`compare`)
pairs two groups by seed (the same seed gives both the same data order and the same evaluation
points, so the noise they share cancels in the difference) and reports the mean paired difference
``a - b``, its bootstrap interval, the Wilcoxon signed-rank p-value and the minimum detectable
effect (:func:`minimum_detectable_effect`). :func:`verdict` says in one sentence what the interval
allows. Every resampling is seeded, so a results file is a function of its runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

#: Resamples of every bootstrap interval, and its seed.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
#: The test the minimum detectable effect is stated for: two-sided at ``ALPHA``, with ``POWER``.
ALPHA = 0.05
POWER = 0.8


def _finite(values: Sequence[float | None]) -> np.ndarray:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return np.asarray(kept, dtype=float)


def bootstrap_interval(
    values: Sequence[float], level: float = 0.95, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | tuple[None, None]:
    """The percentile bootstrap interval of the mean of ``values``: the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the means of :data:`BOOTSTRAP_RESAMPLES` resamples drawn with
    replacement. ``(None, None)`` for no values; a single value is its own interval."""
    sample = _finite(values)
    if len(sample) == 0:
        return None, None
    rng = np.random.default_rng(seed)
    means = sample[rng.integers(0, len(sample), (BOOTSTRAP_RESAMPLES, len(sample)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def summarise(values: Sequence[float | None]) -> dict:
    """``n``, ``mean``, ``sd`` (n - 1 in the denominator) and the bootstrap 95% interval
    ``ci_low``, ``ci_high`` of the finite ``values`` (a run that failed or reported no number
    counts in none of them)."""
    sample = _finite(values)
    n = len(sample)
    low, high = bootstrap_interval(sample)
    return {
        "n": n,
        "mean": float(sample.mean()) if n else None,
        "sd": float(sample.std(ddof=1)) if n > 1 else None,
        "ci_low": low,
        "ci_high": high,
    }


def minimum_detectable_effect(sd: float | None, n: int) -> float | None:
    """The smallest true mean difference that ``n`` pairs whose differences spread by ``sd``
    would detect: ``(t(1 - ALPHA/2; n-1) + t(POWER; n-1)) * sd / sqrt(n)``, the paired t-test's
    rule for a two-sided test at level ``ALPHA`` (5%) with power ``POWER`` (80%). A difference
    smaller than this can be real and still go unseen; ``None`` below two pairs."""
    if sd is None or n < 2:
        return None
    t_level = scipy_stats.t.ppf(1 - ALPHA / 2, n - 1)
    t_power = scipy_stats.t.ppf(POWER, n - 1)
    return float((t_level + t_power) * sd / math.sqrt(n))


def wilcoxon_p(differences: Sequence[float]) -> float | None:
    """The two-sided Wilcoxon signed-rank p-value of paired differences (exact for small samples,
    as scipy chooses); 1.0 when every difference is zero, ``None`` without any pair. With n pairs
    it cannot fall below 2 / 2**n: five pairs can never reach 0.05."""
    diffs = _finite(differences)
    if len(diffs) == 0:
        return None
    if not np.any(diffs):
        return 1.0
    return float(scipy_stats.wilcoxon(diffs).pvalue)


def compare(a: Mapping[int, float | None], b: Mapping[int, float | None]) -> dict:
    """Group ``a`` against group ``b`` paired by seed (dicts seed -> value): over the seeds where
    both have a finite value, ``n_pairs``, ``mean_diff`` (a - b), its bootstrap 95% interval
    ``ci_low``, ``ci_high``, ``sd_diff``, ``p_wilcoxon``, ``mde``
    (:func:`minimum_detectable_effect`) and the seeds with each difference."""
    seeds = sorted(s for s in set(a) & set(b)
                   if _finite([a[s]]).size and _finite([b[s]]).size)
    diffs = np.asarray([float(a[s]) - float(b[s]) for s in seeds], dtype=float)
    summary = summarise(diffs)
    return {
        "n_pairs": len(seeds),
        "mean_diff": summary["mean"],
        "ci_low": summary["ci_low"],
        "ci_high": summary["ci_high"],
        "sd_diff": summary["sd"],
        "p_wilcoxon": wilcoxon_p(diffs),
        "mde": minimum_detectable_effect(summary["sd"], len(seeds)),
        "differences": {str(s): float(d) for s, d in zip(seeds, diffs)},
    }


def verdict(comparison: Mapping, a: str, b: str, metric: str) -> str:
    """One sentence of what a comparison's interval allows, e.g. ``tcgan - infogan on mig: +0.030
    [-0.020, +0.080], 10 pairs: no difference this study can see; it could detect 0.060``."""
    n = comparison["n_pairs"]
    head = f"{a} - {b} on {metric}"
    if n == 0:
        return f"{head}: no pair of finished runs to compare"
    low, high, mde = comparison["ci_low"], comparison["ci_high"], comparison["mde"]
    numbers = (f"{comparison['mean_diff']:+.3f} [{low:+.3f}, {high:+.3f}], {n} "
               f"pair{'s' if n != 1 else ''}")
    if n < 2:
        return f"{head}: {numbers}: one pair says nothing about the spread between seeds"
    if low > 0 or high < 0:
        side = "higher" if low > 0 else "lower"
        return f"{head}: {numbers}: {a} scores {side} than {b} (the interval excludes 0)"
    detect = f"; it could detect {mde:.3f}" if mde is not None else ""
    return f"{head}: {numbers}: no difference this study can see{detect}"
