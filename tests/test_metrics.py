"""The disentanglement metrics: closed-form cases, the scores each definition predicts for identity,
constant, duplicated and shuffled codes, invariances, bad input, and the seeded protocol.

Point counts are small (2,000 train / 1,000 test) so that the file runs in well under a minute; the
tolerances below say which finite-sample effect they allow for.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from disentangle import metrics

SIZES = (3, 4, 5)
LN2_OVER_LN10 = math.log(2) / math.log(10)
# Plug-in MI between two independent discrete variables is biased upwards by about
# (K1 - 1)(K2 - 1) / (2N) nats: 12 / 4000 = 0.003 for the largest pair here. Divided by a factor
# entropy of at least ln 3, an ideal code loses at most ~0.003 of MIG; 0.01 leaves a 3x margin.
MI_BIAS_TOLERANCE = 0.01


class GridData:
    """A fake ground-truth dataset whose 'image' of a factor vector is the vector itself, scaled
    into [0, 1] and laid out as a 1 x 1 x F image, so that an encoder can be any function of the
    true factors."""

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


def constant_encoder(images: torch.Tensor) -> np.ndarray:
    return np.zeros((len(images), 3))


def sample(n: int, seed: int, sizes: tuple[int, ...] = SIZES) -> np.ndarray:
    return GridData(sizes).sample_factors(n, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def split():
    """Factors of a train and a test split, independent and uniform over the grid."""
    return sample(2000, seed=1), sample(1000, seed=2)


@pytest.fixture(scope="module")
def noisy(split):
    """Each factor plus Gaussian noise (sd 0.3), then a pure-noise dimension: a good but imperfect
    code without exact ties, for the invariance checks."""
    rng = np.random.default_rng(3)

    def codes(factors):
        return np.column_stack([factors + 0.3 * rng.normal(size=factors.shape),
                                rng.normal(size=len(factors))])

    return codes(split[0]), codes(split[1])


def all_split_scores(z_train, v_train, z_test, v_test) -> dict[str, float]:
    scores = metrics.dci(z_train, v_train, z_test, v_test)
    return {
        "mig": metrics.mig(z_train, v_train),
        "jemmig": metrics.jemmig(z_train, v_train),
        "modularity": metrics.modularity(z_train, v_train),
        "sap": metrics.sap(z_train, v_train, z_test, v_test),
        "explicitness": metrics.explicitness(z_train, v_train, z_test, v_test),
        "dci_disentanglement": scores["disentanglement"],
        "dci_completeness": scores["completeness"],
        "dci_informativeness": scores["informativeness"],
    }


# ---------------------------------------------------------------------------------------------
# Closed-form cases (evaluation.md): exact up to float rounding, hence 1e-12.


def test_dci_one_code_for_two_factors():
    scores = metrics.dci_scores_from_importance(np.hstack([np.eye(5), np.eye(5)]))
    assert scores["disentanglement"] == pytest.approx(1 - LN2_OVER_LN10, abs=1e-12)
    assert scores["disentanglement"] == pytest.approx(0.69897, abs=5e-6)
    assert scores["completeness"] == pytest.approx(1.0, abs=1e-12)


def test_dci_duplicated_codes():
    scores = metrics.dci_scores_from_importance(np.vstack([np.eye(5), np.eye(5)]))
    assert scores["completeness"] == pytest.approx(1 - LN2_OVER_LN10, abs=1e-12)
    assert scores["disentanglement"] == pytest.approx(1.0, abs=1e-12)


def test_dci_of_no_importance_is_zero():
    assert metrics.dci_scores_from_importance(np.zeros((3, 2))) == {
        "disentanglement": 0.0, "completeness": 0.0,
    }


def test_modularity_closed_forms():
    assert metrics.modularity_from_mi([[1, 0], [0, 1], [0, 0]]) == pytest.approx(2 / 3, abs=1e-12)
    both = np.hstack([np.eye(5), np.eye(5)])
    assert metrics.modularity_from_mi(both) == pytest.approx(8 / 9, abs=1e-12)


def test_gaussian_total_correlation_closed_form():
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    expected = -0.5 * math.log(1 - 0.81)
    assert metrics.gaussian_total_correlation_from_cov(cov) == pytest.approx(expected, abs=1e-12)
    assert round(expected, 4) == 0.8304
    # TC depends on correlations only: rescaling a variable leaves it alone.
    scaled = cov * np.outer([1.0, 5.0], [1.0, 5.0])
    assert metrics.gaussian_total_correlation_from_cov(scaled) == pytest.approx(expected, abs=1e-12)
    assert metrics.gaussian_total_correlation_from_cov(np.eye(3)) == 0.0
    assert metrics.gaussian_total_correlation_from_cov(np.ones((2, 2))) == math.inf


def test_gaussian_total_correlation_from_samples():
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    codes = np.random.default_rng(0).multivariate_normal([0, 0], cov, size=100_000)
    # The sample correlation has sd (1 - rho^2)/sqrt(N) = 6e-4 and dTC/drho = rho/(1 - rho^2) =
    # 4.7, so the estimate has sd ~0.003: 0.015 is five of them.
    assert metrics.gaussian_total_correlation(codes) == pytest.approx(0.8304, abs=0.015)


def test_mig_and_sap_from_matrices():
    ln2, ln3 = math.log(2), math.log(3)
    mi = [[ln2, 0.0], [ln2 / 2, ln3], [0.0, 0.0]]
    # Factor 0: (ln2 - ln2/2) / ln2 = 1/2; factor 1: (ln3 - 0) / ln3 = 1.
    assert metrics.mig_from_mi(mi, [ln2, ln3]) == pytest.approx(0.75, abs=1e-12)
    scores = [[0.9, 0.5], [0.6, 0.5], [0.5, 0.8]]
    assert metrics.sap_from_scores(scores) == pytest.approx(0.3, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Where each definition puts identity, constant, duplicated and shuffled codes.


def test_identity_codes_score_near_one(split):
    v_train, v_test = split
    scores = all_split_scores(v_train.astype(float), v_train, v_test.astype(float), v_test)
    for name in ("mig", "jemmig", "modularity"):
        assert scores[name] >= 1 - MI_BIAS_TOLERANCE, (name, scores[name])
    # Trees split each factor off its own code perfectly: nothing is left to shuffle importance.
    for name in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert scores[name] >= 0.99, (name, scores[name])
    assert scores["explicitness"] >= 0.99
    # SAP's ceiling is below 1 (next test); it must still clearly beat an uninformative code.
    assert scores["sap"] >= 0.3


def test_sap_of_identity_codes_is_one_minus_chance():
    v_train, v_test = sample(2000, 4, (2, 2, 2)), sample(1000, 5, (2, 2, 2))
    score = metrics.sap(v_train.astype(float), v_train, v_test.astype(float), v_test)
    # Best code: accuracy 1. Second best: an independent code, at chance 1/2, give or take the
    # sd of an accuracy on 1,000 points (0.016); the max of two such is about +0.01. So 1/2 within
    # 0.05 (three sd).
    assert score == pytest.approx(0.5, abs=0.05)


def test_constant_codes(split):
    v_train, v_test = split
    zeros_train, zeros_test = np.zeros((len(v_train), 3)), np.zeros((len(v_test), 3))
    scores = all_split_scores(zeros_train, v_train, zeros_test, v_test)
    assert scores["mig"] == 0.0
    assert scores["modularity"] == 0.0
    assert scores["sap"] == 0.0
    assert scores["dci_disentanglement"] == 0.0 and scores["dci_completeness"] == 0.0
    # Every probability is the same, so every ROC-AUC is exactly the chance value.
    assert scores["explicitness"] == pytest.approx(0.5, abs=1e-12)
    # A constant code has joint entropy H(v) with the factor, so 1 - JEMMIG = ln B / (H(v) + ln B).
    entropies = metrics.factor_entropies(v_train)
    expected = np.mean(math.log(20) / (entropies + math.log(20)))
    assert scores["jemmig"] == pytest.approx(expected, abs=1e-12)


def test_duplicated_codes(split):
    v_train, v_test = split
    twice_train = np.repeat(v_train.astype(float), 2, axis=1)
    twice_test = np.repeat(v_test.astype(float), 2, axis=1)
    scores = all_split_scores(twice_train, v_train, twice_test, v_test)
    # MIG and SAP compare the two best codes, which are now identical: exactly 0.
    assert scores["mig"] == 0.0
    assert scores["sap"] == 0.0
    # Modularity asks only that each code depend on one factor: still ~1.
    assert scores["modularity"] >= 1 - MI_BIAS_TOLERANCE
    # JEMMIG sees a gap of 0, leaving joint entropy H(v): the constant-code value.
    entropies = metrics.factor_entropies(v_train)
    expected = np.mean(math.log(20) / (entropies + math.log(20)))
    assert scores["jemmig"] == pytest.approx(expected, abs=1e-12)
    # DCI: each code still serves one factor, but each factor spreads over two of six codes. An
    # even split gives completeness 1 - ln2/ln6 = 0.613; trees break ties between the two copies
    # at random, so the split is near even and completeness lands just above that floor.
    floor = 1 - math.log(2) / math.log(6)
    assert scores["dci_disentanglement"] >= 0.99
    assert floor - 1e-9 <= scores["dci_completeness"] <= floor + 0.05


def test_shuffled_codes_carry_no_information(split, noisy):
    v_train, v_test = split
    rng = np.random.default_rng(6)
    z_train = noisy[0][rng.permutation(len(v_train))]
    z_test = noisy[1][rng.permutation(len(v_test))]
    scores = all_split_scores(z_train, v_train, z_test, v_test)
    # Independent codes: MI and gaps are only the plug-in bias; accuracies sit at chance.
    assert scores["mig"] <= MI_BIAS_TOLERANCE
    assert scores["sap"] <= 0.05
    assert scores["explicitness"] == pytest.approx(0.5, abs=0.03)
    assert scores["dci_disentanglement"] <= 0.1 and scores["dci_completeness"] <= 0.1
    # A noisy code is nearly independent of everything and has high entropy: near 0.
    assert scores["jemmig"] <= 0.15
    # Modularity normalises each code by its own largest MI, so pure noise is not penalised: it
    # stays far above 0. This is a known blind spot of the metric, kept visible here.
    assert scores["modularity"] >= 0.3


# ---------------------------------------------------------------------------------------------
# Invariances


def test_permuting_code_dimensions_changes_no_score(split, noisy):
    v_train, v_test = split[0][:1000], split[1][:500]
    z_train, z_test = noisy[0][:1000], noisy[1][:500]
    order = np.array([3, 1, 0, 2])
    before = all_split_scores(z_train, v_train, z_test, v_test)
    after = all_split_scores(z_train[:, order], v_train, z_test[:, order], v_test)
    for name, value in before.items():
        if name.startswith("dci"):
            # sklearn's trees break exact ties between equally good splits in a random feature
            # order, which a column permutation changes: DCI moves by ~1e-3 here, not more.
            assert after[name] == pytest.approx(value, abs=0.01), name
        else:
            assert after[name] == pytest.approx(value, abs=1e-12), name
    assert metrics.gaussian_total_correlation(z_train[:, order]) == pytest.approx(
        metrics.gaussian_total_correlation(z_train), abs=1e-12)
    assert metrics.mean_pairwise_mutual_information(z_train[:, order]) == pytest.approx(
        metrics.mean_pairwise_mutual_information(z_train), abs=1e-12)


def test_rescaling_a_code_leaves_mig_dci_and_factor_vae_alone(split, noisy):
    v_train, v_test = split[0][:1000], split[1][:500]
    z_train, z_test = noisy[0][:1000], noisy[1][:500]
    scale = np.array([1.0, 3.7, 1.0, 1.0])
    assert metrics.mig(z_train * scale, v_train) == metrics.mig(z_train, v_train)
    before = metrics.dci(z_train, v_train, z_test, v_test)
    after = metrics.dci(z_train * scale, v_train, z_test * scale, v_test)
    for name in ("disentanglement", "completeness", "informativeness"):
        assert after[name] == pytest.approx(before[name], abs=1e-12), name
    data = GridData(SIZES)
    plain = metrics.factor_vae_score(data, identity_encoder, 0, num_train=200, num_eval=200,
                                     num_variance_estimate=1000)
    stretched = metrics.factor_vae_score(data, lambda x: identity_encoder(x) * 3.7, 0,
                                         num_train=200, num_eval=200, num_variance_estimate=1000)
    assert stretched == plain


def test_torch_and_numpy_inputs_agree(split, noisy):
    v_train, _ = split
    z_train, _ = noisy
    assert metrics.mig(torch.tensor(z_train), torch.tensor(v_train)) == metrics.mig(z_train,
                                                                                   v_train)


def test_parallel_dci_equals_serial(split, noisy):
    v_train, v_test = split
    z_train, z_test = noisy
    serial = metrics.dci(z_train[:300], v_train[:300], z_test[:200], v_test[:200])
    parallel = metrics.dci(z_train[:300], v_train[:300], z_test[:200], v_test[:200], n_jobs=2)
    np.testing.assert_array_equal(serial["importance"], parallel["importance"])
    assert serial["classifier"] == "gbt"
    # The factors are fitted most classes first; each column must still belong to its factor.
    for k in range(v_train.shape[1]):
        alone = metrics.dci(z_train[:300], v_train[:300, [k]], z_test[:200], v_test[:200, [k]])
        np.testing.assert_array_equal(parallel["importance"][:, k], alone["importance"][:, 0])


def test_fast_dci_classifier_agrees_on_the_clear_cases(split):
    v_train, v_test = split
    v_train, v_test = v_train[:500], v_test[:300]
    ideal = metrics.dci(v_train.astype(float), v_train, v_test.astype(float), v_test,
                        classifier="hist")
    assert ideal["disentanglement"] >= 0.99 and ideal["informativeness"] >= 0.99
    # Scaled like sklearn's impurity importances, so that every factor weighs the same in R.
    np.testing.assert_allclose(ideal["importance"].sum(axis=0), 1.0)


# ---------------------------------------------------------------------------------------------
# Bad input


def test_mismatched_lengths(split):
    v_train, _ = split
    with pytest.raises(ValueError, match="2000 examples but factors has 1999"):
        metrics.mig(v_train.astype(float), v_train[:-1])


def test_nan_codes(split):
    v_train, _ = split
    codes = v_train.astype(float)
    codes[5, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite.*example 5, dimension 1"):
        metrics.mig(codes, v_train)


def test_constant_factor(split):
    v_train, _ = split
    factors = v_train.copy()
    factors[:, 2] = 4
    with pytest.raises(ValueError, match="Factor 2 of factors takes the single value 4"):
        metrics.mig(v_train.astype(float), factors)


def test_fewer_points_than_bins(split):
    v_train, _ = split
    with pytest.raises(ValueError, match="Only 10 points for 20 bins"):
        metrics.mig(v_train[:10].astype(float), v_train[:10])


def test_other_bad_input(split):
    v_train, v_test = split
    with pytest.raises(ValueError, match="integer class indices"):
        metrics.mig(v_train.astype(float), v_train + 0.5)
    with pytest.raises(ValueError, match="2-D array"):
        metrics.mig(v_train[:, 0].astype(float), v_train)
    with pytest.raises(ValueError, match="Unknown DCI classifier 'xgb'"):
        metrics.dci(v_train, v_train, v_test, v_test, classifier="xgb")
    with pytest.raises(ValueError, match="constant code"):
        metrics.gaussian_total_correlation(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="encode returned shape"):
        metrics.beta_vae_score(GridData(SIZES), lambda x: x.flatten(), num_train=5, num_eval=5)


# ---------------------------------------------------------------------------------------------
# Protocol level


def test_beta_vae_and_factor_vae_scores():
    data = GridData(SIZES)
    sizes = {"num_train": 300, "num_eval": 300}
    assert metrics.beta_vae_score(data, identity_encoder, 0, **sizes) == {
        "train_accuracy": 1.0, "eval_accuracy": 1.0,
    }
    ideal = metrics.factor_vae_score(data, identity_encoder, 0, num_variance_estimate=1000, **sizes)
    assert ideal == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}
    # No dimension survives the 0.05 pruning: the score is defined as 0.
    dead = metrics.factor_vae_score(data, constant_encoder, 0, num_variance_estimate=1000, **sizes)
    assert dead == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    generator = torch.Generator().manual_seed(0)
    noise = metrics.beta_vae_score(
        data, lambda x: torch.randn(len(x), 3, generator=generator), 0, **sizes)
    # Three factors, so chance is 1/3; 300 eval points give an sd of 0.027: 0.45 is four sd above.
    assert noise["eval_accuracy"] <= 0.45


def test_evaluate_records_and_repeats():
    data = GridData((1, 3, 4, 5))  # a first factor of size 1, like dSprites' colour
    sizes = {"num_train": 500, "num_test": 300, "num_variance_estimate": 500}
    first = metrics.evaluate(data, identity_encoder, seed=7, **sizes)
    again = metrics.evaluate(data, identity_encoder, seed=7, **sizes)
    other = metrics.evaluate(data, identity_encoder, seed=8, dci_classifier="hist", **sizes)
    first.pop("seconds"), other.pop("seconds")
    assert "total" in again.pop("seconds")
    assert first == again
    assert first["mig"] != other["mig"] and other["dci_classifier"] == "hist"
    assert first["factors"] == ["factor1", "factor2", "factor3"]
    assert first["seed"] == 7 and first["dci_classifier"] == "gbt"
    assert first["numpy"] == np.__version__ and first["scikit-learn"]
    assert first["settings"]["num_bins"] == 20 and first["settings"]["prune_threshold"] == 0.05
    assert first["beta_vae_eval"] == 1.0 and first["factor_vae_eval"] == 1.0
    assert first["mig"] >= 1 - 3 * MI_BIAS_TOLERANCE  # 500 points: three times the bias of 2,000
    assert np.shape(first["dci_importance"]) == (4, 3)
    # SCORES lists every number evaluate reports (the names a study may ask for).
    numbers = {k for k, v in first.items() if isinstance(v, float | int) and k != "seed"}
    assert numbers - {"code_dims"} == set(metrics.SCORES)


def test_evaluate_defaults_are_the_protocol():
    defaults = {
        name: p.default for name, p in inspect.signature(metrics.evaluate).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    expected = {"num_train": 10_000, "num_test": 5_000, "batch_size": 64,
                "num_variance_estimate": 10_000, "num_bins": 20, "prune_threshold": 0.05,
                "dci_classifier": "gbt", "seed": 0}
    assert {name: defaults[name] for name in expected} == expected
