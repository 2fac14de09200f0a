"""The inference rule (``disentangle.stats``): the paired t-interval and t-test that decide, Holm's
correction across a study's primary comparisons, the sign-flip check, the minimum detectable
effect of the t-test run, and the verdict sentence; each against an independent computation."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from disentangle import stats

A = [0.61, 0.55, 0.72, 0.48, 0.66, 0.59, 0.70]
B = [0.52, 0.57, 0.60, 0.41, 0.58, 0.50, 0.66]


# --- The paired t-test that decides ------------------------------------------------------------


def test_the_interval_and_p_are_the_paired_t_tests():
    result = stats.compare(dict(enumerate(A)), dict(enumerate(B)))
    diffs = np.subtract(A, B)
    reference = scipy_stats.ttest_rel(A, B)
    low, high = scipy_stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(),
                                       scale=scipy_stats.sem(diffs))
    assert result["n_pairs"] == 7
    assert result["p_t"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert result["sd_diff"] == pytest.approx(diffs.std(ddof=1))
    # The bootstrap is recorded beside it, as a description, and is not the same interval.
    assert result["boot_low"] > low and result["boot_high"] < high
    # Another level, and the one-sample form the paired test is.
    low90, high90 = scipy_stats.t.interval(0.9, 6, loc=diffs.mean(), scale=scipy_stats.sem(diffs))
    assert stats.t_interval(diffs, 0.9) == pytest.approx((low90, high90), rel=1e-9)
    assert stats.t_test_p(diffs) == pytest.approx(scipy_stats.ttest_1samp(diffs, 0).pvalue)


def test_a_group_summary_carries_the_t_interval_and_the_bootstrap():
    summary = stats.summarise([1.0, 2.0, 4.0, None, float("nan")])
    low, high = scipy_stats.t.interval(0.95, 2, loc=7 / 3, scale=scipy_stats.sem([1, 2, 4]))
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(7 / 3)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    # Resampling three values draws all-1 or all-4 with chance 1/27 each, above 2.5%: the
    # percentile interval's ends are the smallest and largest values.
    assert (summary["boot_low"], summary["boot_high"]) == (1.0, 4.0)
    one = stats.summarise([3.0])
    assert one["ci_low"] is None and one["sd"] is None and one["boot_low"] == 3.0
    assert stats.summarise([])["mean"] is None


# --- Holm across the primary comparisons -------------------------------------------------------


def test_holm_by_hand():
    # Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # None passes through and is not counted: m = 2.
    assert stats.holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]  # capped
    assert stats.holm([0.03]) == [0.03] and stats.holm([]) == [] and stats.holm([None]) == [None]


def test_holm_agrees_with_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    pvalues = np.random.default_rng(3).uniform(0, 0.2, 9)
    reference = multitest.multipletests(pvalues, method="holm")[1]
    assert stats.holm(list(pvalues)) == pytest.approx(list(reference))


def test_adjust_corrects_the_primary_comparisons_together():
    comparisons = [{"metric": "m", "primary": True, "p_t": 0.02},
                   {"metric": "s", "primary": False, "p_t": 0.001},
                   {"metric": "m", "primary": True, "p_t": 0.04},
                   {"metric": "m", "primary": True, "p_t": None}]
    adjusted = stats.adjust(comparisons)
    assert [c.get("p_holm") for c in adjusted] == [pytest.approx(0.04), None,
                                                   pytest.approx(0.04), None]
    assert [c.get("exploratory") for c in adjusted] == [None, True, None, None]
    assert "p_holm" not in comparisons[0]  # copies: the study's list is left as it was


# --- The sign-flip check -----------------------------------------------------------------------


def _brute_force_sign_flip(diffs):
    observed = abs(sum(diffs))
    hits = sum(abs(sum(s * d for s, d in zip(signs, diffs))) >= observed - 1e-12
               for signs in itertools.product((1, -1), repeat=len(diffs)))
    return hits / 2 ** len(diffs)


def _integer_sign_flip(diffs):
    """The exact p of integer differences from the distribution of their signed sum, built by
    convolution: an independent route to the same number."""
    total = sum(abs(d) for d in diffs)
    counts = np.zeros(2 * total + 1, dtype=object)
    counts[total] = 1
    for d in diffs:
        counts = np.roll(counts, d) + np.roll(counts, -d)
    sums = np.arange(-total, total + 1)
    return counts[np.abs(sums) >= abs(sum(diffs))].sum() / 2 ** len(diffs)


def test_the_sign_flip_p_is_the_share_of_sign_patterns():
    rng = np.random.default_rng(5)
    for n in (1, 3, 8, 11):
        diffs = list(rng.normal(0.3, 1.0, n))
        assert stats.sign_flip_p(diffs) == pytest.approx(_brute_force_sign_flip(diffs))
    # Integer differences tie with many patterns: each tie counts.
    ties = [1, 2, 3, 1, 2, -1, 0, 4, 2, -2]
    assert stats.sign_flip_p(ties) == pytest.approx(_brute_force_sign_flip(ties))
    assert stats.sign_flip_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 2**5)  # its floor
    integers = list(rng.integers(-2, 6, 18))
    assert stats.sign_flip_p(integers) == pytest.approx(_integer_sign_flip(integers))


def test_the_sign_flip_p_is_symmetric():
    diffs = list(np.random.default_rng(6).normal(0.4, 1.0, 12))
    p = stats.sign_flip_p(diffs)
    assert 0 < p < 1
    assert stats.sign_flip_p([-d for d in diffs]) == pytest.approx(p)
    assert stats.sign_flip_p(diffs[::-1]) == pytest.approx(p)
    assert stats.sign_flip_p([3 * d for d in diffs]) == pytest.approx(p)
    assert stats.sign_flip_p([0.0, 0.0]) == 1.0 and stats.sign_flip_p([]) is None


def test_above_twenty_pairs_the_sign_flip_p_is_drawn():
    diffs = [int(d) for d in np.random.default_rng(7).integers(-3, 5, 26)]
    exact = _integer_sign_flip(diffs)
    drawn = stats.sign_flip_p(diffs)
    error = 4 * math.sqrt(exact * (1 - exact) / stats.SIGN_FLIP_DRAWS) + 1e-5
    assert 0.001 < exact < 0.5 and drawn == pytest.approx(exact, abs=error)
    assert stats.compare(dict(enumerate(diffs)), dict.fromkeys(range(26), 0))[
        "sign_flip_draws"] == stats.SIGN_FLIP_DRAWS


# --- The minimum detectable effect of the t-test run --------------------------------------------


@pytest.mark.parametrize("n", [3, 5, 10])
def test_at_the_minimum_detectable_effect_the_t_test_has_its_power(n):
    # At n = 3 the familiar (t + t) sd / sqrt(n) rule would give 0.77: the exact root is needed.
    mde = stats.minimum_detectable_effect(1.0, n)
    samples = np.random.default_rng(n).normal(mde, 1.0, (20_000, n))
    rejected = scipy_stats.ttest_1samp(samples, 0.0, axis=1).pvalue < stats.ALPHA
    assert rejected.mean() == pytest.approx(stats.POWER, abs=0.02)


def test_the_minimum_detectable_effect_scales_with_the_spread():
    assert stats.minimum_detectable_effect(2.0, 10) == pytest.approx(
        2 * stats.minimum_detectable_effect(1.0, 10))
    assert stats.minimum_detectable_effect(1.0, 40) < stats.minimum_detectable_effect(1.0, 10)
    assert stats.minimum_detectable_effect(1.0, 1) is None
    assert stats.minimum_detectable_effect(None, 5) is None
    assert stats.minimum_detectable_effect(0.0, 5) == 0.0
    assert stats.minimum_detectable_effect(1.0, 2) > 10  # two pairs see only huge effects


# --- Why the bootstrap describes and does not decide --------------------------------------------


def test_at_five_pairs_the_t_interval_covers_and_the_bootstrap_does_not():
    samples = np.random.default_rng(11).normal(0.0, 1.0, (20_000, 5))
    covered_t = sum(low <= 0.0 <= high for low, high in map(stats.t_interval, samples))
    assert covered_t / len(samples) == pytest.approx(0.95, abs=0.01)
    # The bootstrap on a quarter of them (each interval costs far more): well below 95%.
    boot = [stats.bootstrap_interval(sample, resamples=1_000) for sample in samples[:5_000]]
    assert sum(low <= 0.0 <= high for low, high in boot) / len(boot) < 0.90


# --- The degenerate cases ----------------------------------------------------------------------


def test_no_pair_and_one_pair():
    none = stats.compare({0: 1.0}, {1: 2.0})
    assert none["n_pairs"] == 0 and none["differences"] == {}
    assert all(none[k] is None for k in ("mean_diff", "sd_diff", "ci_low", "ci_high", "p_t",
                                         "p_sign_flip", "p_wilcoxon", "boot_low", "mde"))
    one = stats.compare({0: 1.0, 1: 3.0}, {0: 0.5, 2: 1.0})
    assert one["n_pairs"] == 1 and one["mean_diff"] == 0.5
    assert all(one[k] is None for k in ("sd_diff", "ci_low", "ci_high", "p_t", "mde"))


def test_values_that_are_not_finite_are_dropped():
    a = {0: 0.9, 1: 0.8, 2: 0.7, 3: None, 4: 0.5, 5: float("nan"), 6: 0.4}
    b = {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5, 5: 0.5, 6: float("inf")}
    result = stats.compare(a, b)
    assert result["n_pairs"] == 3  # 3 and 5 failed in a, 4 is missing in b, 6 is inf in b
    assert result["differences"] == pytest.approx({"0": 0.4, "1": 0.3, "2": 0.2})
    assert result["mean_diff"] == pytest.approx(0.3)
    assert result["p_t"] == pytest.approx(scipy_stats.ttest_1samp([0.4, 0.3, 0.2], 0).pvalue)


def test_differences_that_do_not_spread():
    same = stats.compare(dict.fromkeys(range(4), 2.0), dict.fromkeys(range(4), 2.0))
    assert (same["ci_low"], same["ci_high"], same["p_t"], same["p_sign_flip"]) == (0, 0, 1.0, 1.0)
    shifted = stats.compare(dict.fromkeys(range(4), 3.0), dict.fromkeys(range(4), 1.0))
    assert (shifted["ci_low"], shifted["ci_high"], shifted["p_t"]) == (2.0, 2.0, 0.0)
    assert shifted["p_sign_flip"] == pytest.approx(2 / 2**4) and shifted["mde"] == 0.0


# --- The verdict -------------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "text"), [
    (0.31, "= 0.31"), (0.004, "= 0.004"), (0.0004, "< 0.001"), (0.0496, "= 0.0496"),
    (0.0504, "= 0.05"), (0.051, "= 0.051"), (1.0, "= 1")])
def test_a_p_value_is_quoted_on_its_side_of_alpha(p, text):
    assert stats.p_text(p) == text
    if p >= 0.001:
        assert (float(text[2:]) < stats.ALPHA) == (p < stats.ALPHA)


def test_a_comparison_is_found_by_its_groups_and_metric():
    record = {"comparisons": [
        {"a": "x", "b": "y", "metric": "m", "primary": True, "mean_diff": 0.1},
        {"a": "x", "b": "y", "metric": "n", "primary": False, "mean_diff": 0.2},
        {"a": "z", "b": "y", "metric": "m", "primary": True, "mean_diff": 0.3}]}
    assert stats.comparison(record, "x", "y")["mean_diff"] == 0.1
    assert stats.comparison(record, "x", "y", "n")["mean_diff"] == 0.2
    assert stats.comparison(record, "z", "y", "m")["mean_diff"] == 0.3
    with pytest.raises(ValueError, match="no y - x as a primary comparison; it compares x - y, "
                                         "z - y"):
        stats.comparison(record, "y", "x")
    with pytest.raises(ValueError, match="no z - y on 'n'"):
        stats.comparison(record, "z", "y", "n")


def _comparison(**changes):
    base = {"n_pairs": 10, "mean_diff": 0.03, "ci_low": -0.02, "ci_high": 0.08, "p_t": 0.31,
            "p_holm": 0.31, "p_sign_flip": 0.27, "mde": 0.06, "primary": True}
    return {**base, **changes}


def test_a_primary_verdict_says_what_the_holm_corrected_test_allows():
    assert stats.verdict(_comparison(), "tcgan", "infogan", "mig") == (
        "tcgan - infogan on mig: +0.030 [-0.020, +0.080] (t, 95%), 10 pairs, Holm p = 0.31, "
        "sign-flip p = 0.27: no difference this study can see; it could detect 0.060")
    higher = _comparison(mean_diff=0.05, ci_low=0.02, p_t=0.001, p_holm=0.004, p_sign_flip=0.002)
    assert stats.verdict(higher, "a", "b", "m") == (
        "a - b on m: +0.050 [+0.020, +0.080] (t, 95%), 10 pairs, Holm p = 0.004, "
        "sign-flip p = 0.002: a scores higher than b")
    lower = _comparison(n_pairs=5, mean_diff=-0.05, ci_low=-0.08, ci_high=-0.02, p_holm=0.0496)
    assert stats.verdict(lower, "a", "b", "m") == (
        "a - b on m: -0.050 [-0.080, -0.020] (t, 95%), 5 pairs, Holm p = 0.0496: "
        "a scores lower than b")  # below ten pairs the sign-flip p is not cited
    # The interval excludes 0 but Holm over the study's primaries does not reach 0.05.
    corrected = _comparison(mean_diff=0.05, ci_low=0.01, p_t=0.03, p_holm=0.09)
    assert stats.verdict(corrected, "a", "b", "m").endswith("no difference this study can see; "
                                                             "it could detect 0.060")
    # Three seeds that all ended at 0 active codes in both groups: no spread, no test.
    equal = _comparison(n_pairs=3, mean_diff=0.0, sd_diff=0.0, ci_low=0.0, ci_high=0.0, p_t=1.0,
                        p_holm=1.0, mde=0.0)
    assert stats.verdict(equal, "a", "b", "m").endswith("every pair differs by exactly +0.000")
    unchecked = _comparison(mean_diff=0.05, ci_low=0.01, p_holm=0.01, p_sign_flip=0.08)
    assert stats.verdict(unchecked, "a", "b", "m").endswith(
        "a scores higher than b; the sign-flip check does not agree")


def test_a_secondary_verdict_is_exploratory():
    secondary = _comparison(primary=False, exploratory=True, p_t=0.02, p_holm=None,
                            mean_diff=0.05, ci_low=0.01)
    assert stats.verdict(secondary, "a", "b", "sap") == (
        "a - b on sap: +0.050 [+0.010, +0.080] (t, 95%), 10 pairs (exploratory, p = 0.02 "
        "uncorrected)")
    unadjusted = _comparison(p_t=0.001, mean_diff=0.05, ci_low=0.02)
    del unadjusted["p_holm"]
    assert "higher" not in stats.verdict(unadjusted, "a", "b", "m")
    assert "no pair" in stats.verdict({"n_pairs": 0}, "a", "b", "m")
    assert stats.verdict({"n_pairs": 1, "mean_diff": 0.5, "ci_low": None}, "a", "b", "m") == (
        "a - b on m: +0.500, 1 pair: one pair says nothing about the spread between seeds")


def test_one_primary_comparison_decides_as_its_t_interval_does():
    rng = np.random.default_rng(12)
    decided = 0
    for _trial in range(100):
        n = int(rng.integers(2, 12))
        diffs = rng.normal(rng.normal(0, 0.5), 1.0, n)
        comparison = stats.compare(dict(enumerate(diffs)), dict.fromkeys(range(n), 0.0))
        (comparison,) = stats.adjust([{**comparison, "primary": True}])
        sentence = stats.verdict(comparison, "a", "b", "m")
        excludes = comparison["ci_low"] > 0 or comparison["ci_high"] < 0
        assert ("scores" in sentence) == excludes, sentence
        decided += excludes
    assert 10 < decided < 90  # both outcomes were exercised
