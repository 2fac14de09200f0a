"""The statistics of a study: a group's metric over seeds, and two groups compared seed by seed.

The inference rule, the contract every comparison in the book follows:

- **Paired by seed.** The same seed gives both groups the same data order and the same evaluation
  points, so the noise they share cancels in the difference ``a - b`` (:func:`compare`).
- **Decided by the paired t-test.** A comparison's interval ``ci_low``, ``ci_high`` is the 95%
  t-interval of the mean paired difference, ``mean +- t(0.975; n-1) * sd / sqrt(n)``
  (:func:`t_interval`), and its p-value ``p_t`` is the two-sided paired t-test's (:func:`t_test_p`).
- **Holm across the primary comparisons.** A study declares one primary metric per pair of groups
  before it runs; :func:`adjust` corrects the primary comparisons' ``p_t`` together by Holm's
  step-down rule (:func:`holm`, ``p_holm``), and a direction is declared only when ``p_holm`` is
  below :data:`ALPHA`. For a study with one primary comparison this is exactly the t-interval
  excluding 0. Every other metric is exploratory: its ``p_t`` is shown uncorrected, labelled so,
  and never gives a verdict.
- **A nonparametric check at ten pairs or more.** :func:`sign_flip_p` is the exact sign-flip
  permutation test of the mean paired difference (all ``2**n`` sign patterns for ``n <=``
  :data:`SIGN_FLIP_EXACT_UP_TO`, a seeded Monte Carlo of :data:`SIGN_FLIP_DRAWS` patterns above).
  Its p cannot fall below ``2 / 2**n`` (0.0625 at five pairs), so it is recorded at every ``n``
  but cited as the check only from :data:`CHECK_FROM_PAIRS` pairs up.
- **The bootstrap describes, never decides.** The percentile bootstrap interval of the mean
  (:func:`bootstrap_interval`, ``boot_low``, ``boot_high``) stays in the record as a description.
  At 5-10 seeds it is too narrow: it resamples the few values seen, so it misses the spread of
  the mean they cannot show, and a nominal 95% interval covers the true mean far less often
  (roughly 83% at five normal pairs, 90% at ten). The t-interval's coverage is exact for normal
  differences at every ``n``.
- **The Wilcoxon signed-rank p is kept, descriptive.** With ``n`` pairs it cannot fall below
  ``2 / 2**n``: five pairs can never reach 0.05, so it cannot decide a five-seed study.
- **What the study could have seen.** :func:`minimum_detectable_effect` is the smallest true mean
  difference that the paired t-test actually run (two-sided at :data:`ALPHA`) detects with power
  :data:`POWER` at that many pairs and the observed spread, solved exactly with the noncentral t.
- **Degenerate cases.** Non-finite values and unmatched seeds are dropped. No pair: nothing. One
  pair: no spread, so no interval, no t-test and no detectable effect (``None``). Differences all
  equal (spread 0): the interval is the point; ``p_t`` is 1.0 when that point is 0 and 0.0
  otherwise, the limits of the t-test as the spread goes to 0 (a metric that is a deterministic
  function of the group, such as a parameter count, differs exactly, not by sampling); the
  sign-flip p still states the floor the number of seeds sets.

:func:`verdict` says in one sentence what a comparison allows. Every resampling is seeded, so a
results file is a function of its runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

#: The level of every interval.
LEVEL = 0.95
#: The test a verdict is decided by, and the minimum detectable effect is stated for: two-sided
#: at ``ALPHA``, with ``POWER``.
ALPHA = 0.05
POWER = 0.8
#: Resamples of every bootstrap interval, and its seed.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
#: The sign-flip test enumerates every sign pattern up to this many pairs; above, it draws
#: ``SIGN_FLIP_DRAWS`` patterns seeded with ``SIGN_FLIP_SEED``.
SIGN_FLIP_EXACT_UP_TO = 20
SIGN_FLIP_DRAWS = 100_000
SIGN_FLIP_SEED = 0
#: From this many pairs the sign-flip test is the verdict's nonparametric check.
CHECK_FROM_PAIRS = 10


def _finite(values: Sequence[float | None]) -> np.ndarray:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return np.asarray(kept, dtype=float)


def bootstrap_interval(
    values: Sequence[float], level: float = LEVEL, seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float] | tuple[None, None]:
    """The percentile bootstrap interval of the mean of ``values``: the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the means of ``resamples`` resamples drawn with
    replacement. ``(None, None)`` for no values; a single value is its own interval. A
    description only: at a few values it undercovers (see the module's rule)."""
    sample = _finite(values)
    if len(sample) == 0:
        return None, None
    rng = np.random.default_rng(seed)
    means = sample[rng.integers(0, len(sample), (resamples, len(sample)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    return float(scipy_stats.t.ppf(q, df))


def t_interval(values: Sequence[float | None],
               level: float = LEVEL) -> tuple[float, float] | tuple[None, None]:
    """The t-interval of the mean of the finite ``values``: ``mean +- t((1 + level) / 2; n-1) *
    sd / sqrt(n)``. ``(None, None)`` below two values; the point itself when they are all
    equal."""
    sample = _finite(values)
    n = len(sample)
    if n < 2:
        return None, None
    mean = float(sample.mean())
    half = _t_quantile((1 + level) / 2, n - 1) * float(sample.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


def t_test_p(differences: Sequence[float | None]) -> float | None:
    """The two-sided one-sample t-test p-value of the finite ``differences`` against a mean of
    0 (the paired t-test of the two groups they are the differences of). ``None`` below two
    differences; with no spread, 1.0 when they are all 0 and 0.0 otherwise (the test's limits)."""
    diffs = _finite(differences)
    n = len(diffs)
    if n < 2:
        return None
    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1))
    if sd == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (sd / math.sqrt(n))
    return float(min(1.0, 2 * scipy_stats.t.sf(abs(t), n - 1)))


def _half_sums(values: np.ndarray) -> np.ndarray:
    """Every signed sum ``sum(+-v)`` of ``values`` (``2**len`` of them)."""
    sums = np.zeros(1)
    for v in values:
        sums = np.concatenate([sums + v, sums - v])
    return sums


def sign_flip_p(differences: Sequence[float | None]) -> float | None:
    """The two-sided sign-flip permutation p-value of the mean of the finite paired
    ``differences``: under no difference each one's sign is a fair coin, so p is the share of
    sign patterns whose mean is at least as far from 0 as the one observed (the observed pattern
    and its mirror included, so p >= 2 / 2**n unless the mean is 0).

    Exact up to :data:`SIGN_FLIP_EXACT_UP_TO` pairs: the ``2**n`` signed sums are counted by
    splitting the differences in two halves and matching each half's sums against the other's
    sorted sums. Above, ``(1 + hits) / (1 + SIGN_FLIP_DRAWS)`` over :data:`SIGN_FLIP_DRAWS`
    patterns drawn with seed :data:`SIGN_FLIP_SEED`. ``None`` without any difference."""
    diffs = _finite(differences)
    n = len(diffs)
    if n == 0:
        return None
    observed = abs(float(diffs.sum()))
    # Patterns whose sum equals the observed one in exact arithmetic may differ in the last bits.
    tolerance = 1e-9 * float(np.abs(diffs).sum())
    threshold = observed - tolerance
    if threshold <= 0:
        return 1.0
    if n <= SIGN_FLIP_EXACT_UP_TO:
        left, right = _half_sums(diffs[: n // 2]), np.sort(_half_sums(diffs[n // 2:]))
        # |l + r| >= threshold  <=>  r >= threshold - l  or  r <= -threshold - l
        high = len(right) - np.searchsorted(right, threshold - left, side="left")
        low = np.searchsorted(right, -threshold - left, side="right")
        return float(min(1.0, (high + low).sum() / 2.0**n))
    rng = np.random.default_rng(SIGN_FLIP_SEED)
    hits = 0
    for start in range(0, SIGN_FLIP_DRAWS, 10_000):
        count = min(10_000, SIGN_FLIP_DRAWS - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(count, n))
        hits += int((np.abs(signs @ diffs) >= threshold).sum())
    return (1 + hits) / (1 + SIGN_FLIP_DRAWS)


def wilcoxon_p(differences: Sequence[float | None]) -> float | None:
    """The two-sided Wilcoxon signed-rank p-value of paired differences (exact for small samples,
    as scipy chooses); 1.0 when every difference is zero, ``None`` without any pair. With n pairs
    it cannot fall below 2 / 2**n: five pairs can never reach 0.05. Descriptive only."""
    diffs = _finite(differences)
    if len(diffs) == 0:
        return None
    if not np.any(diffs):
        return 1.0
    return float(scipy_stats.wilcoxon(diffs).pvalue)


def t_test_power(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """The power of the two-sided paired t-test at level ``alpha`` with ``n`` pairs whose
    differences are normal with mean ``effect`` and standard deviation ``sd``: the chance that
    ``|T| > t(1 - alpha/2; n-1)`` when ``T`` is noncentral t with ``n - 1`` degrees of freedom and
    noncentrality ``effect * sqrt(n) / sd``."""
    df = n - 1
    critical = scipy_stats.t.ppf(1 - alpha / 2, df)
    shift = effect * math.sqrt(n) / sd
    # P(T < -c) is written as P(-T > c), -T being noncentral t with the opposite shift: scipy's
    # cdf returns NaN far in the lower tail, its sf does not.
    return float(scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.sf(critical, df, -shift))


def minimum_detectable_effect(sd: float | None, n: int) -> float | None:
    """The smallest true mean difference that the paired t-test run on ``n`` pairs whose
    differences spread by ``sd`` detects with power :data:`POWER` (80%), two-sided at level
    :data:`ALPHA` (5%): the root in ``effect`` of ``t_test_power(effect, sd, n) = POWER``
    (:func:`t_test_power`, the exact noncentral-t power), found with Brent's method. It is
    proportional to ``sd``; the familiar ``(t(1 - ALPHA/2) + t(POWER)) * sd / sqrt(n)`` is an
    approximation of it. A difference smaller than this can be real and still go unseen. ``None``
    below two pairs or without a spread; 0.0 when the differences do not spread at all."""
    if sd is None or n < 2 or not math.isfinite(sd):
        return None
    if sd == 0.0:
        return 0.0
    upper = 1.0
    while t_test_power(upper, 1.0, n) < POWER:
        upper *= 2
    standard = optimize.brentq(lambda e: t_test_power(e, 1.0, n) - POWER, 0.0, upper,
                               xtol=1e-12, rtol=1e-12)
    return float(standard * sd)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down correction of ``pvalues`` for testing them together: sorted ascending,
    the ``i``-th smallest of ``m`` becomes ``(m - i + 1) * p``, made non-decreasing along the
    order and capped at 1, and each is returned in its original place. ``None`` (a comparison
    without a p) passes through and does not count in ``m``."""
    kept = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(kept)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(kept)):
        running = max(running, min(1.0, (m - rank) * float(p)))
        adjusted[i] = running
    return adjusted


def summarise(values: Sequence[float | None]) -> dict:
    """``n``, ``mean``, ``sd`` (n - 1 in the denominator), the 95% t-interval of the mean
    ``ci_low``, ``ci_high`` (``None`` below two values) and, as a description, the percentile
    bootstrap interval ``boot_low``, ``boot_high`` of the finite ``values`` (a run that failed or
    reported no number counts in none of them)."""
    sample = _finite(values)
    n = len(sample)
    low, high = t_interval(sample)
    boot_low, boot_high = bootstrap_interval(sample)
    return {
        "n": n,
        "mean": float(sample.mean()) if n else None,
        "sd": float(sample.std(ddof=1)) if n > 1 else None,
        "ci_low": low,
        "ci_high": high,
        "boot_low": boot_low,
        "boot_high": boot_high,
    }


def compare(a: Mapping[int, float | None], b: Mapping[int, float | None]) -> dict:
    """Group ``a`` against group ``b`` paired by seed (dicts seed -> value), over the seeds where
    both have a finite value: ``n_pairs``; ``mean_diff`` (a - b) and ``sd_diff``; the 95%
    t-interval ``ci_low``, ``ci_high`` (:func:`t_interval`) and the paired t-test's ``p_t``
    (:func:`t_test_p`), which decide; ``p_sign_flip`` (:func:`sign_flip_p`, the check from ten
    pairs) with ``sign_flip_draws`` (``None`` when exact, else the patterns drawn);
    ``p_wilcoxon`` and the bootstrap interval ``boot_low``, ``boot_high``, which describe;
    ``mde`` (:func:`minimum_detectable_effect`); and ``differences``, seed -> difference."""
    seeds = sorted(s for s in set(a) & set(b)
                   if _finite([a[s]]).size and _finite([b[s]]).size)
    diffs = np.asarray([float(a[s]) - float(b[s]) for s in seeds], dtype=float)
    n = len(seeds)
    sd = float(diffs.std(ddof=1)) if n > 1 else None
    low, high = t_interval(diffs)
    boot_low, boot_high = bootstrap_interval(diffs)
    return {
        "n_pairs": n,
        "mean_diff": float(diffs.mean()) if n else None,
        "sd_diff": sd,
        "ci_low": low,
        "ci_high": high,
        "p_t": t_test_p(diffs),
        "p_sign_flip": sign_flip_p(diffs),
        "sign_flip_draws": None if n <= SIGN_FLIP_EXACT_UP_TO else SIGN_FLIP_DRAWS,
        "p_wilcoxon": wilcoxon_p(diffs),
        "boot_low": boot_low,
        "boot_high": boot_high,
        "mde": minimum_detectable_effect(sd, n),
        "differences": {str(s): float(d) for s, d in zip(seeds, diffs)},
    }


def adjust(comparisons: Sequence[Mapping]) -> list[dict]:
    """A study's comparisons (each with ``primary``) corrected together: copies in which each
    primary comparison gains ``p_holm``, Holm's correction (:func:`holm`) of its ``p_t`` across
    all the primary comparisons, and every other one gains ``exploratory: True``."""
    adjusted = [dict(c) for c in comparisons]
    primary = [c for c in adjusted if c["primary"]]
    for comparison, p in zip(primary, holm([c.get("p_t") for c in primary])):
        comparison["p_holm"] = p
    for comparison in adjusted:
        if not comparison["primary"]:
            comparison["exploratory"] = True
    return adjusted


def comparison(record: Mapping, a: str, b: str, metric: str | None = None) -> dict:
    """The comparison ``a - b`` of a study's record (what :func:`adjust` left in its
    ``comparisons``) on ``metric``, or its primary comparison of ``a`` with ``b`` when ``metric``
    is None. Raises ``ValueError`` naming the comparisons the record holds when it has none such."""
    for found in record["comparisons"]:
        if (found["a"], found["b"]) == (a, b) and (
                found["primary"] if metric is None else found["metric"] == metric):
            return found
    held = sorted({f"{c['a']} - {c['b']}" for c in record["comparisons"]})
    on = "as a primary comparison" if metric is None else f"on {metric!r}"
    raise ValueError(f"The study compares no {a} - {b} {on}; it compares {', '.join(held)}. Add it "
                   "to the study file's [[comparisons]] and run the study command again.")


def p_text(p: float) -> str:
    """A p-value as a verdict quotes it: ``= 0.31``, ``= 0.004``, ``< 0.001``; two
    significant digits, more when rounding would put the p on the other side of
    :data:`ALPHA` (``= 0.0496``, never ``= 0.05`` for a p below it)."""
    if p < 0.001:
        return "< 0.001"
    for digits in range(2, 6):
        text = f"{p:.{digits}g}"
        if (float(text) < ALPHA) == (p < ALPHA):
            break
    return f"= {text}"


def verdict(comparison: Mapping, a: str, b: str, metric: str) -> str:
    """One sentence of what a comparison allows under the module's rule, e.g. ``tcgan - infogan
    on mig: +0.030 [-0.020, +0.080] (t, 95%), 10 pairs, Holm p = 0.31: no difference this study
    can see; it could detect 0.060``. A primary comparison (one :func:`adjust` gave ``p_holm``)
    says ``a scores higher than b`` or ``lower`` when ``p_holm`` is below :data:`ALPHA`; from
    :data:`CHECK_FROM_PAIRS` pairs it cites the sign-flip check, and says so when the check does
    not agree. An exploratory one gives its uncorrected p and no verdict; so does a comparison
    not yet adjusted."""
    n = comparison["n_pairs"]
    head = f"{a} - {b} on {metric}"
    if n == 0:
        return f"{head}: no pair of finished runs to compare"
    mean = comparison["mean_diff"]
    if n < 2 or comparison.get("ci_low") is None:
        return (f"{head}: {mean:+.3f}, {n} pair: one pair says nothing about the spread between "
                "seeds")
    numbers = (f"{mean:+.3f} [{comparison['ci_low']:+.3f}, {comparison['ci_high']:+.3f}] "
               f"(t, 95%), {n} pairs")
    p_t = comparison.get("p_t")
    if p_t is None:
        return f"{head}: {numbers}: recorded under an earlier rule, no t-test; recompute it"
    if comparison.get("exploratory") or not comparison.get("primary", True):
        return f"{head}: {numbers} (exploratory, p {p_text(p_t)} uncorrected)"
    p_holm = comparison.get("p_holm")
    if p_holm is None:
        return (f"{head}: {numbers}, p {p_text(p_t)} uncorrected: not yet adjusted across the "
                "study's primary comparisons, no verdict")
    numbers += f", Holm p {p_text(p_holm)}"
    flip = comparison.get("p_sign_flip")
    checked = n >= CHECK_FROM_PAIRS and flip is not None
    if checked:
        numbers += f", sign-flip p {p_text(flip)}"
    if p_holm < ALPHA and mean != 0:
        side = "higher" if mean > 0 else "lower"
        disagree = "; the sign-flip check does not agree" if checked and flip >= ALPHA else ""
        return f"{head}: {numbers}: {a} scores {side} than {b}{disagree}"
    mde = comparison.get("mde")
    if comparison.get("sd_diff") == 0:  # every pair the same difference: no spread to test
        return f"{head}: {numbers}: every pair differs by exactly {mean:+.3f}"
    detect = f"; it could detect {mde:.3f}" if mde is not None else ""
    return f"{head}: {numbers}: no difference this study can see{detect}"

