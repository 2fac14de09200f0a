"""Estimators for continuous codes against closed forms.

Every estimate is a random quantity; the tolerances below were set from its spread over 10 to 20
independent seeds at the sample size used (standard deviation sd, systematic bias b, measured when
the tests were written) as roughly |b| + 3 sd, so a correct estimator fails about once in a
thousand seeds, while a wrong formula misses: a variance read as a log-variance fails the Gaussian
channel, and an off-by-one in KSG's neighbour counts (psi(n) for psi(n + 1)) fails the 2-D case.
Seeds are fixed, so every run is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disentangle import estimators as est
from disentangle import metrics


def correlated_pair(rho: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ksg_on_correlated_gaussians(rho):
    # I = -1/2 log(1 - rho^2). N = 2,000, k = 3: sd 0.015-0.018, bias up to +0.014 at rho = 0.9.
    x, y = correlated_pair(rho, 2000, seed=7)
    exact = -0.5 * np.log(1 - rho**2)
    assert est.ksg_mutual_information(x, y) == pytest.approx(exact, abs=0.06)


def test_ksg_on_two_dimensional_codes():
    # Blocks U = (u1, u2), V = (v1, v2) with cross-correlations; I = -1/2 log det C (unit
    # variances, independent coordinates within each block). sd 0.015 at N = 2,000.
    cov = np.array([[1, 0, 0.6, 0.2], [0, 1, 0.1, 0.5], [0.6, 0.1, 1, 0], [0.2, 0.5, 0, 1.0]])
    exact = -0.5 * np.linalg.slogdet(cov)[1]
    z = np.random.default_rng(3).multivariate_normal(np.zeros(4), cov, 2000)
    assert est.ksg_mutual_information(z[:, :2], z[:, 2:]) == pytest.approx(exact, abs=0.06)


def test_ksg_is_deterministic_and_accepts_tensors():
    x, y = correlated_pair(0.5, 5000, seed=1)
    first = est.ksg_mutual_information(x, y, seed=4)
    assert est.ksg_mutual_information(torch.tensor(x), torch.tensor(y), seed=4) == first


def test_ksg_breaks_ties_in_discrete_looking_codes():
    # Rounded codes repeat values; without the jitter, points at distance exactly eps would make
    # the counts ill-defined. With Y = X on 10 levels the estimate should land on log 10 (2.303;
    # seeds 0-3 gave 2.291 to 2.316), not blow up or collapse.
    x = np.random.default_rng(0).integers(0, 10, 3000).astype(float)
    value = est.ksg_mutual_information(x, x.copy())
    assert abs(value - np.log(10)) < 0.05, value


def test_gaussian_encoder_mi_on_a_gaussian_channel():
    # X ~ N(0, I_2), encoder N(x, 0.25 I): I(X; A) = log(1 + 1/0.25) = log 5. N = 2,000:
    # bias +0.018, sd 0.018 over seeds.
    n, d, var = 2000, 2, 0.25
    x = np.random.default_rng(11).standard_normal((n, d))
    log_var = np.full((n, d), np.log(var))
    exact = d / 2 * np.log(1 + 1 / var)
    estimate = est.gaussian_encoder_mi(x, log_var, seed=5)
    assert estimate == pytest.approx(exact, abs=0.08)
    assert est.gaussian_encoder_mi(torch.tensor(x), torch.tensor(log_var), seed=5) == estimate
    # The variational bound with prior N(0, I) sits above: E KL = d/2 (E x^2 + var - log var - 1),
    # whose population value exceeds I(X; A) by KL(N(0, 1 + var) || N(0, 1)) per dimension.
    bound = est.kl_to_standard_normal(x, log_var)
    sample = 0.5 * (np.mean((x**2).sum(1)) + d * (var - np.log(var) - 1))
    assert bound == pytest.approx(sample, abs=1e-12)
    gap = d / 2 * (var - np.log(1 + var))
    assert bound - exact == pytest.approx(gap, abs=0.1)
    assert bound > estimate


def test_gaussian_encoder_mi_cannot_exceed_log_n():
    # A nearly deterministic encoder carries unbounded information, but the estimator's mixture of
    # N posteriors caps it at log N: the documented limit.
    x = np.random.default_rng(0).standard_normal((200, 3))
    estimate = est.gaussian_encoder_mi(x, np.full((200, 3), np.log(1e-6)))
    assert estimate == pytest.approx(np.log(200), abs=1e-6)


def test_classifier_bound_on_a_binary_symmetric_channel():
    # A = Y flipped with probability e; the Bayes classifier q(y|a) = p(y|a) makes the bound
    # tight, I = log 2 - h(e). N = 20,000: sd 0.0044, no visible bias.
    e, n = 0.1, 20000
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < e, 1 - y, y)
    posterior = np.where(a[:, None] == np.arange(2)[None, :], 1 - e, e)
    exact = np.log(2) + e * np.log(e) + (1 - e) * np.log(1 - e)
    tight = est.classifier_mi_lower_bound(np.log(posterior), y)
    assert tight == pytest.approx(exact, abs=0.015)
    # Any other classifier gives less: an overconfident one pays cross-entropy on the flips.
    overconfident = np.where(a[:, None] == np.arange(2)[None, :], 0.0, -8.0)
    assert est.classifier_mi_lower_bound(overconfident, y) < tight - 0.1
    assert est.classifier_mi_lower_bound(torch.tensor(np.log(posterior)), torch.tensor(y)) == (
        pytest.approx(tight, abs=1e-12)
    )
    assert est.classifier_mi_lower_bound(np.log(posterior), y, unit="bits") == pytest.approx(
        tight / np.log(2), abs=1e-12
    )


def test_classifier_bound_rejects_bad_labels():
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        est.classifier_mi_lower_bound(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="integer classes"):
        est.classifier_mi_lower_bound(logits, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="same number of samples"):
        est.classifier_mi_lower_bound(logits, np.array([0, 1]))


def test_gaussian_total_correlation_of_equicorrelated_codes():
    # d = 4 codes with pairwise correlation 0.5: det C = (1 - r)^(d-1) (1 + (d-1) r), so
    # TC = -1/2 log det C = 0.5816. N = 20,000: sd 0.009, bias -0.002.
    d, r = 4, 0.5
    cov = np.full((d, d), r) + (1 - r) * np.eye(d)
    exact = -0.5 * np.log((1 - r) ** (d - 1) * (1 + (d - 1) * r))
    z = np.random.default_rng(6).multivariate_normal(np.zeros(d), cov, 20000)
    assert est.gaussian_total_correlation(z) == pytest.approx(exact, abs=0.03)
    # Two blocks of two: TC between blocks is their mutual information.
    blocks = est.gaussian_total_correlation(z, [[0, 1], [2, 3]])
    assert blocks == pytest.approx(est.gaussian_mutual_information(z[:, :2], z[:, 2:]), abs=1e-12)
    inner = -0.5 * np.log(1 - r**2)
    assert blocks == pytest.approx(exact - 2 * inner, abs=0.03)


def test_gaussian_total_correlation_is_the_closed_form_of_the_sample_covariance():
    z = np.random.default_rng(2).standard_normal((500, 4)) @ np.triu(np.ones((4, 4)))
    cov = np.cov(z, rowvar=False)
    groups = [[0, 2], [1], [3]]
    assert est.gaussian_total_correlation(z, groups) == pytest.approx(
        est.gaussian_total_correlation_from_cov(cov, groups), abs=1e-12)
    # The closed form on S itself, without the rescaling to correlations it computes on.
    direct = 0.5 * (sum(np.linalg.slogdet(cov[np.ix_(g, g)])[1] for g in groups)
                    - np.linalg.slogdet(cov)[1])
    assert est.gaussian_total_correlation(z, groups) == pytest.approx(direct, abs=1e-9)
    nats = est.gaussian_total_correlation(torch.from_numpy(z))
    assert est.gaussian_total_correlation(z, unit="bits") == pytest.approx(
        nats / np.log(2), abs=1e-12)
    # metrics reports this very function, not a copy of it.
    assert metrics.gaussian_total_correlation is est.gaussian_total_correlation
    assert metrics.gaussian_total_correlation_from_cov is est.gaussian_total_correlation_from_cov


def test_gaussian_total_correlation_of_a_duplicated_column_is_infinite():
    z = np.random.default_rng(0).standard_normal((100, 3))
    assert est.gaussian_total_correlation(np.hstack([z, z[:, :1]])) == np.inf
    # Inside one block the copy leaves the blocks' total correlation undefined.
    with pytest.raises(ValueError, match="singular"):
        est.gaussian_total_correlation(np.hstack([z, z[:, :1]]), [[0, 3], [1, 2]])


def test_gaussian_total_correlation_rejects_bad_input():
    z = np.random.default_rng(0).standard_normal((100, 3))
    with pytest.raises(ValueError, match="each column once"):
        est.gaussian_total_correlation(z, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="more samples than dimensions"):
        est.gaussian_total_correlation(z[:3])
    with pytest.raises(ValueError, match="NaN"):
        est.gaussian_total_correlation(np.where(z > 2, np.nan, z))
    with pytest.raises(ValueError, match="constant code"):
        est.gaussian_total_correlation(np.hstack([z, np.ones((100, 1))]))
    with pytest.raises(ValueError, match="Unknown unit"):
        est.gaussian_total_correlation(z, unit="bans")
