"""The two-level GAN paper's metric protocol (the metric-review library's definitions): scores on
codes whose answer is known (aligned, rotated, noise), the library's conventions (binning, chance
rescaling, in-sample fitting, R^2), determinism, and bad input.

Data sets are small (2,000 rows, three factors of 3, 4 and 5 classes) so that the file runs in
seconds; each tolerance says which finite-sample effect it allows for.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from disentangle import metrics, paper_metrics

SIZES = (3, 4, 5)
N = 2000
# Z-diff sizes for the array-level tests: 1,000 evaluation points give the accuracy of a chance
# classifier over 3 factors an sd of sqrt(1/3 * 2/3 / 1000) = 0.015, 0.022 once rescaled.
Z_SIZES = {"num_train": 1000, "num_eval": 1000}


class GridData:
    """A fake ground-truth dataset (the pattern of tests/test_metrics.py): the 'image' of a factor
    vector is the vector itself scaled into [0, 1], laid out as a 1 x 1 x F image."""

    def __init__(self, sizes: tuple[int, ...]):
        self.factor_sizes = tuple(sizes)
        self.factor_names = tuple(f"factor{k}" for k in range(len(sizes)))

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1)

    def images(self, factors: np.ndarray) -> torch.Tensor:
        scale = np.maximum(np.asarray(self.factor_sizes) - 1, 1)
        values = np.asarray(factors) / scale
        return torch.as_tensor(values, dtype=torch.float32).reshape(len(values), 1, 1, -1)


def identity_encoder(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)


_SCRAMBLE = torch.tensor([[3.1, -7.3, 5.9, 1.7], [2.3, 4.1, -6.7, 9.2], [-5.3, 1.9, 8.8, -2.6],
                          [6.1, -3.7, 2.2, 7.4]], dtype=torch.float64)


def mixing_encoder(images: torch.Tensor) -> torch.Tensor:
    """A fixed, deterministic, imperfect code of up to 4 factors: each factor plus 0.4 of its
    neighbour, plus a pseudo-random offset (a fast sine of a mixture) that depends on the whole
    factor vector, so that every score sits strictly between its floor and its ceiling."""
    x = images.flatten(1).double()
    d = x.shape[1]
    return x + 0.4 * x.roll(1, dims=1) + 0.5 * torch.sin(1000.0 * x @ _SCRAMBLE[:d, :d])


def sample(n: int = N, seed: int = 1, sizes: tuple[int, ...] = SIZES) -> np.ndarray:
    return GridData(sizes).sample_factors(n, np.random.default_rng(seed))


def rotate_first_two(codes: np.ndarray) -> np.ndarray:
    """Codes 0 and 1 rotated by 45 degrees: each of the two carries both factors."""
    out = codes.astype(float).copy()
    c = s = np.sqrt(0.5)
    out[:, 0], out[:, 1] = c * codes[:, 0] + s * codes[:, 1], -s * codes[:, 0] + c * codes[:, 1]
    return out


def all_scores(codes: np.ndarray, factors: np.ndarray) -> dict[str, float]:
    return {
        "exp": paper_metrics.explicitness(codes, factors),
        "jemmig": paper_metrics.jemmig(codes, factors),
        "modularity": paper_metrics.modularity(codes, factors),
        "sap": paper_metrics.sap(codes, factors),
        "z_diff": paper_metrics.z_diff(codes, factors, 0, **Z_SIZES),
    }


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return sample()


@pytest.fixture(scope="module")
def aligned(factors) -> dict[str, float]:
    return all_scores(factors.astype(float), factors)


# ---------------------------------------------------------------------------------------------
# Codes whose answer is known


def test_aligned_code_scores_the_maximum(aligned):
    # Z-diff: the held-fixed factor's code differs by exactly 0 in every pair, the others do not,
    # so the classifier is exact and the rescaled score is 1.
    assert aligned["z_diff"] == pytest.approx(1.0, abs=1e-12)
    # SAP: R^2 = 1 with its own factor; the best other code's R^2 is a squared sample
    # correlation of independent variables, about 1/N = 0.0005: 0.01 is 20 times that.
    assert aligned["sap"] >= 0.99
    # JEMMIG: 1 - I(v; z_(2)) / (H(v) + ln 10); the plug-in MI of independent variables is biased
    # up by about (K - 1)(B - 1)/(2N) <= 4 * 4 / 4000 = 0.004 nats, over a normaliser above 3.4.
    assert aligned["jemmig"] >= 0.99
    # Modularity: the off-peak MI enters squared, relative to the peak's square: ~(0.004/1)^2.
    assert aligned["modularity"] >= 0.99
    # EXP: in-sample one-vs-rest AUCs; the per-row normalisation ranks even the middle classes.
    assert aligned["exp"] >= 0.99


def test_uniform_noise_scores_the_floor(factors):
    noise = np.random.default_rng(5).uniform(size=(N, 3))
    scores = all_scores(noise, factors)
    # Rescaled chance: 0 in expectation, sd 0.022 (see Z_SIZES): 0.08 is over 3.5 sd.
    assert abs(scores["z_diff"]) <= 0.08
    # R^2 of independent variables is about 1/N each; the gap between two of them is smaller.
    assert 0.0 <= scores["sap"] <= 0.01
    # Independent codes that fill their 10 bins evenly: JEMMIG's floor is 0, up to the plug-in
    # bias of 2 I(top) - I(second) + (ln 10 - H(z)), about 0.01 nats over a normaliser of 3.4+.
    assert 0.0 <= scores["jemmig"] <= 0.02
    # EXP is fitted and scored on the same rows, so noise scores a little above 0 (the optimism
    # of a 3-dimensional linear fit, ~0.05 at 2,000 rows): see test_explicitness_is_in_sample.
    assert 0.0 < scores["exp"] <= 0.1


def test_explicitness_is_in_sample():
    """The optimism of scoring on the training rows shrinks like 1/sqrt(N): quadrupling the rows
    about halves it. (Scored on held-out rows a noise code would sit at 0 at any size.)"""
    rng = np.random.default_rng(6)
    small = paper_metrics.explicitness(rng.uniform(size=(N, 3)), sample(N, seed=2))
    large = paper_metrics.explicitness(rng.uniform(size=(4 * N, 3)), sample(4 * N, seed=3))
    assert 0.0 < large < 0.75 * small


def test_gaussian_noise_jemmig_floor_is_above_zero(factors):
    """A code that fills its bins unevenly has a floor of (ln B - H(z)) / (H(v) + ln B) > 0."""
    noise = np.random.default_rng(7).normal(size=(N, 3))
    binned = paper_metrics.quantize(noise)
    entropy_z = np.mean([metrics._entropy_of_labels(binned[:, j]) for j in range(3)])
    entropy_v = np.mean([metrics._entropy_of_labels(factors[:, k]) for k in range(3)])
    floor = (np.log(10) - entropy_z) / (entropy_v + np.log(10))
    score = paper_metrics.jemmig(noise, factors)
    assert floor > 0.05
    # Plug-in bias, as in test_uniform_noise_scores_the_floor.
    assert score == pytest.approx(floor, abs=0.02)


def test_rotation_lowers_modularity_and_sap(factors):
    """The factors jittered by U(-0.2, 0.2) (so that no code value sits exactly on a bin edge,
    where the last bit of the rotation would decide its bin), then codes 0 and 1 rotated."""
    jittered = factors + np.random.default_rng(11).uniform(-0.2, 0.2, size=factors.shape)
    rotated = rotate_first_two(jittered)
    aligned_sap = paper_metrics.sap(jittered, factors)
    rotated_sap = paper_metrics.sap(rotated, factors)
    # SAP: two independent factors mixed at 45 degrees are explained by both codes with the same
    # R^2 = var(v_k) / (var(v_0) + var(v_1) + 2 var(jitter)), so their gaps vanish; the third
    # keeps R^2 = 2 / (2 + 0.013) = 0.99: SAP = 0.33, plus ~0.015 of sampling noise in the two
    # vanished gaps (each R^2 ~0.4 has an sd of ~0.017 at 2,000 rows).
    assert aligned_sap >= 0.98
    assert rotated_sap == pytest.approx(1 / 3, abs=0.05)
    # Modularity: each mixed code's second MI is about half its first, which costs it about
    # (1/2)^2 / (F - 1) = 1/8; two codes of three mixed: a drop of ~0.08 from 1.
    assert paper_metrics.modularity(jittered, factors) >= 0.99
    assert paper_metrics.modularity(rotated, factors) <= 0.95
    assert paper_metrics.jemmig(rotated, factors) <= paper_metrics.jemmig(jittered, factors) - 0.2


# ---------------------------------------------------------------------------------------------
# The library's conventions


def test_quantize_bins():
    # Ten classes keep apart in ten bins; 0 opens the first bin and the maximum closes the last.
    classes = np.arange(10)[:, None]
    assert paper_metrics.quantize(classes).ravel().tolist() == list(range(10))
    # Min-max first: an affine map of the values gives the same bins.
    values = np.random.default_rng(8).uniform(size=(500, 2))
    np.testing.assert_array_equal(paper_metrics.quantize(values),
                                  paper_metrics.quantize(3.0 * values - 7.0))
    # 32 classes fall into 10 bins; a constant column into bin 0.
    assert len(np.unique(paper_metrics.quantize(np.arange(32)[:, None]))) == 10
    assert np.all(paper_metrics.quantize(np.ones((20, 1))) == 0)
    # Half-open bins [i/10, (i+1)/10): each edge opens its bin; the top edge 1 closes the last.
    edges = np.linspace(0.0, 1.0, 11)[:, None]
    assert paper_metrics.quantize(edges).ravel().tolist() == [*range(10), 9]


def test_factors_are_binned_for_the_information_metrics(factors):
    """With continuous_factors (the default) a 40-class factor is cut into 10 bins, so a code equal
    to it is an exact copy of the binned factor: JEMMIG 1 up to the plug-in bias. Without binning
    the 40 classes meet a 10-bin code whose every bin holds 4 of them: H(v | z) = ln 4 takes
    ln 4 / (ln 40 + ln 10) off that factor's 1, and the 3-class factor keeps its 1."""
    rng = np.random.default_rng(9)
    fine = np.column_stack([rng.integers(0, 40, N), rng.integers(0, 3, N)])
    codes = fine.astype(float)
    assert paper_metrics.jemmig(codes, fine) >= 0.99
    expected = (1 - np.log(4) / (np.log(40) + np.log(10)) + 1) / 2
    # The plug-in bias of test_aligned_code_scores_the_maximum, and the classes' unequal counts.
    assert paper_metrics.jemmig(codes, fine, continuous_factors=False) == pytest.approx(
        expected, abs=0.02)


def test_z_diff_rescaling_and_defaults(factors):
    # Noise of sd 1 and 10 pairs a point: an imperfect score (~0.7), away from both ends.
    codes = factors + np.random.default_rng(3).normal(size=factors.shape)
    scaled = paper_metrics.z_diff(codes, factors, 3, batch_size=10, **Z_SIZES)
    raw = paper_metrics.z_diff(codes, factors, 3, batch_size=10, scale=False, **Z_SIZES)
    assert 0.3 < scaled < 0.95
    assert raw == pytest.approx(1 / 3 + (2 / 3) * scaled, abs=1e-12)
    defaults = {name: p.default for name, p in inspect.signature(paper_metrics.z_diff).parameters
                .items() if p.default is not inspect.Parameter.empty}
    assert defaults == {"seed": 0, "num_bins": 10, "batch_size": 200, "num_train": 10_000,
                        "num_eval": 5_000, "max_iter": 10_000, "continuous_factors": True,
                        "scale": True}


def test_sap_is_the_r2_gap():
    """S_jk is the squared correlation of code j and factor k (one regressor with intercept),
    clipped at 0; SAP the mean gap between the two best codes."""
    rng = np.random.default_rng(10)
    v = rng.integers(0, 6, size=(500, 2)).astype(float)
    z = v @ np.array([[1.0, 0.2, 0.5], [0.1, 1.0, -0.5]]) + rng.normal(size=(500, 3))
    expected = np.array([[np.corrcoef(z[:, j], v[:, k])[0, 1] ** 2 for k in range(2)]
                         for j in range(3)])
    np.testing.assert_allclose(paper_metrics.sap_r2_matrix(z, v), expected, atol=1e-10)
    gaps = [np.diff(np.sort(expected[:, k])[-2:])[0] for k in range(2)]
    assert paper_metrics.sap(z, v) == pytest.approx(np.mean(gaps), abs=1e-10)
    # A constant code explains nothing.
    flat = np.column_stack([z, np.full(500, 2.5)])
    assert np.all(paper_metrics.sap_r2_matrix(flat, v)[3] == 0.0)


def test_constant_code_scores_zero_in_modularity(factors):
    """The library makes modularity NaN (0/0) for a constant code; here it counts as 0."""
    codes = np.column_stack([factors.astype(float), np.zeros(N)])
    score = paper_metrics.modularity(codes, factors)
    per_informative = paper_metrics.modularity(factors.astype(float), factors)
    assert np.isfinite(score)
    assert score == pytest.approx(per_informative * 3 / 4, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Protocol level


def test_evaluate_paper_records_and_repeats():
    data = GridData((1, 3, 4, 5))  # a first factor of size 1, like dSprites' colour
    # 20 pairs a point rather than 200, so that Z-diff too is imperfect (~0.8) on this code.
    sizes = {"num_points": 1500, "num_train": 500, "num_eval": 500, "batch_size": 20}
    first = paper_metrics.evaluate_paper(data, mixing_encoder, seed=4, **sizes)
    again = paper_metrics.evaluate_paper(data, mixing_encoder, seed=4, **sizes)
    other = paper_metrics.evaluate_paper(data, mixing_encoder, seed=5, **sizes)
    first.pop("seconds"), other.pop("seconds")
    assert "total" in again.pop("seconds")
    assert first == again
    assert all(first[name] != other[name] for name in ("exp", "jemmig", "sap", "z_diff"))
    assert first["factors"] == ["factor1", "factor2", "factor3"]
    assert first["seed"] == 4 and first["code_dims"] == 4
    assert first["settings"]["num_bins"] == 10 and first["settings"]["batch_size"] == 20
    assert first["numpy"] == np.__version__ and first["scikit-learn"]
    # F = 3 varying factors: chance is 1/3.
    assert first["z_diff_accuracy"] == pytest.approx(1 / 3 + 2 / 3 * first["z_diff"], abs=1e-12)
    for name in paper_metrics.SCORES:
        assert 0.0 < first[name] < 1.0, name  # an imperfect code, inside every range


def test_evaluate_paper_on_the_aligned_code():
    sizes = {"num_points": 1500, "num_train": 500, "num_eval": 500}
    scores = paper_metrics.evaluate_paper(GridData(SIZES), identity_encoder, 0, **sizes)
    # The tolerances of test_aligned_code_scores_the_maximum, at 1,500 rather than 2,000 rows.
    assert scores["z_diff"] == 1.0 and scores["z_diff_accuracy"] == 1.0
    assert min(scores[name] for name in paper_metrics.SCORES) >= 0.985


def test_evaluate_paper_defaults_are_the_library_defaults():
    defaults = {
        name: p.default for name, p in inspect.signature(paper_metrics.evaluate_paper)
        .parameters.items() if p.default is not inspect.Parameter.empty
    }
    expected = {"seed": 0, "num_points": 20_000, "num_bins": 10, "batch_size": 200,
                "num_train": 10_000, "num_eval": 5_000, "max_iter": 10_000,
                "continuous_factors": True}
    assert defaults == expected
    assert {k: v for k, v in expected.items() if k != "seed"} == paper_metrics.DEFAULTS
    assert paper_metrics.SCORES == ("exp", "jemmig", "modularity", "sap", "z_diff")


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("metric", [
    paper_metrics.explicitness, paper_metrics.jemmig, paper_metrics.modularity,
    paper_metrics.sap, paper_metrics.z_diff,
])
def test_wrong_shapes(metric, factors):
    codes = factors.astype(float)
    with pytest.raises(ValueError, match="codes must be a 2-D array"):
        metric(codes[:, 0], factors)
    with pytest.raises(ValueError, match="factors must be a 2-D array"):
        metric(codes, factors[:, 0])
    with pytest.raises(ValueError, match="2000 examples but factors has 1999"):
        metric(codes, factors[:-1])
    bad = codes.copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite.*example 3, dimension 2"):
        metric(bad, factors)
    constant = factors.copy()
    constant[:, 1] = 2
    with pytest.raises(ValueError, match="Factor 1 of factors takes the single value 2"):
        metric(codes, constant)


def test_other_bad_input(factors):
    codes = factors.astype(float)
    with pytest.raises(ValueError, match="at least 2 factors"):
        paper_metrics.z_diff(codes, factors[:, :1], **Z_SIZES)
    with pytest.raises(ValueError, match="at least 2 factors"):
        paper_metrics.modularity(codes, factors[:, :1])
    with pytest.raises(ValueError, match="Only 8 points for 10 bins"):
        paper_metrics.jemmig(codes[:8], factors[:8])
    with pytest.raises(ValueError, match="num_train must be an integer >= 1"):
        paper_metrics.z_diff(codes, factors, num_train=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        paper_metrics.z_diff(codes, factors, -1)
    with pytest.raises(ValueError, match="integer class indices"):
        paper_metrics.jemmig(codes, factors + 0.5, continuous_factors=False)
    distinct = np.arange(10)[:, None] * np.ones((1, 2))
    with pytest.raises(ValueError, match="no value \\(bin\\) is held by two rows"):
        paper_metrics.z_diff(distinct, distinct, **Z_SIZES)
    with pytest.raises(ValueError, match="encode returned shape"):
        paper_metrics.evaluate_paper(GridData(SIZES), lambda x: x.flatten(), num_points=50)
