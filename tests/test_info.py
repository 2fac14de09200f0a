"""Exact discrete information quantities, Bayesian networks, Theorem 1 and the DisTIB graphs.

Everything here is exact arithmetic on small tables, so the tolerances are floating-point ones:
1e-12 for single quantities (a few hundred terms of size ~1 summed in float64), 1e-10 for
identities that add and subtract a dozen such quantities on 4,096-entry tables.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from disentangle import info

matplotlib.use("Agg")

LOG2 = np.log(2.0)


def binary_entropy(e: float) -> float:
    return -(e * np.log(e) + (1 - e) * np.log(1 - e))


def xor_table() -> np.ndarray:
    """X = Y xor Z with Y, Z fair independent bits; axes (X, Y, Z)."""
    p = np.zeros((2, 2, 2))
    for y in range(2):
        for z in range(2):
            p[y ^ z, y, z] = 0.25
    return p


def random_table(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.dirichlet(np.ones(int(np.prod(shape)))).reshape(shape)


# ---------------------------------------------------------------------------------- tables


def test_entropy_closed_forms():
    assert info.entropy([0.5, 0.5]) == pytest.approx(LOG2, abs=1e-12)
    assert info.entropy([0.5, 0.5], unit="bits") == pytest.approx(1.0, abs=1e-12)
    assert info.entropy(np.full(8, 1 / 8), unit="bits") == pytest.approx(3.0, abs=1e-12)
    assert info.entropy([0.1, 0.9]) == pytest.approx(binary_entropy(0.1), abs=1e-12)
    assert info.entropy([1.0, 0.0]) == 0.0


@pytest.mark.parametrize(
    "table, message",
    [
        ([0.5, -0.1, 0.6], "negative"),
        ([0.5, 0.4], "sums to 0.9"),
        ([0.5, np.nan, 0.5], "NaN"),
        ([], "at least one"),
    ],
)
def test_invalid_tables_are_rejected(table, message):
    with pytest.raises(info.DistributionError, match=message):
        info.entropy(table)


def test_unknown_unit_and_bad_axes_are_named():
    assert info.unit_scale("nats") == 1.0
    assert info.unit_scale("bits") == pytest.approx(1 / np.log(2), abs=1e-15)
    with pytest.raises(ValueError, match="Unknown unit 'bans'"):
        info.entropy([0.5, 0.5], unit="bans")
    with pytest.raises(ValueError, match=r"\[3\] do not name axes"):
        info.entropy(np.full((2, 2), 0.25), axes=[0, 3])
    with pytest.raises(ValueError, match="same axis twice"):
        info.mutual_information(np.full((2, 2), 0.25), [0, 0], [1])


def test_chain_rule_and_mutual_information_identities():
    rng = np.random.default_rng(1)
    p = random_table(rng, (3, 4, 2))
    h_xy = info.entropy(p, [0, 1])
    assert h_xy == pytest.approx(info.entropy(p, 0) + info.conditional_entropy(p, 1, 0), abs=1e-12)
    mi = info.mutual_information(p, 0, 1)
    assert mi == pytest.approx(info.entropy(p, 0) - info.conditional_entropy(p, 0, 1), abs=1e-12)
    assert mi == pytest.approx(info.mutual_information(p, 1, 0), abs=1e-12)
    pair = info.marginal(p, [0, 1])
    assert mi == pytest.approx(info.kl_divergence(pair, info.product_of_marginals(pair)), abs=1e-12)
    # Chain rule for mutual information: I(X; Y,Z) = I(X; Z) + I(X; Y | Z).
    lhs = info.mutual_information(p, 0, [1, 2])
    rhs = info.mutual_information(p, 0, 2) + info.conditional_mutual_information(p, 0, 1, 2)
    assert lhs == pytest.approx(rhs, abs=1e-12)
    assert info.mutual_information(p, 0, []) == 0.0


def test_binary_symmetric_channel():
    e = 0.1
    p = 0.5 * np.array([[1 - e, e], [e, 1 - e]])
    assert info.mutual_information(p, 0, 1) == pytest.approx(LOG2 - binary_entropy(e), abs=1e-12)


def test_sets_of_variables_xor():
    p = xor_table()
    assert info.mutual_information(p, 0, 1) == pytest.approx(0.0, abs=1e-12)
    assert info.mutual_information(p, 0, 2) == pytest.approx(0.0, abs=1e-12)
    assert info.mutual_information(p, 0, [1, 2], unit="bits") == pytest.approx(1.0, abs=1e-12)
    assert info.conditional_mutual_information(p, 0, 1, 2, unit="bits") == pytest.approx(1.0,
                                                                                        abs=1e-12)


def test_kl_divergence():
    a, b = 0.3, 0.6
    closed = a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))
    assert info.kl_divergence([a, 1 - a], [b, 1 - b]) == pytest.approx(closed, abs=1e-12)
    assert info.kl_divergence([a, 1 - a], [a, 1 - a]) == 0.0
    assert info.kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    with pytest.raises(ValueError, match="one shape"):
        info.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])


def test_multi_information():
    rng = np.random.default_rng(2)
    p = random_table(rng, (2, 3, 4))
    assert info.multi_information(p) == pytest.approx(
        info.kl_divergence(p, info.product_of_marginals(p)), abs=1e-12
    )
    assert info.multi_information(info.product_of_marginals(p)) == pytest.approx(0.0, abs=1e-12)
    copies = np.zeros((2, 2, 2))
    copies[0, 0, 0] = copies[1, 1, 1] = 0.5
    assert info.multi_information(copies, unit="bits") == pytest.approx(2.0, abs=1e-12)


def test_marginal_and_conditional():
    rng = np.random.default_rng(3)
    p = random_table(rng, (2, 3, 4))
    np.testing.assert_allclose(info.marginal(p, [2, 0]), p.sum(1).T, atol=1e-15)
    cond = info.conditional(p, [1], [2, 0])
    np.testing.assert_allclose(cond.sum(0), np.ones((4, 2)), atol=1e-12)
    np.testing.assert_allclose(cond * info.marginal(p, [2, 0])[None], info.marginal(p, [1, 2, 0]),
                               atol=1e-15)
    q = np.array([[0.5, 0.0], [0.5, 0.0]])  # the second column never occurs
    np.testing.assert_allclose(info.conditional(q, 0, 1), [[0.5, 0.5], [0.5, 0.5]])


def test_variational_bounds_and_their_gaps():
    rng = np.random.default_rng(4)
    p = random_table(rng, (5, 4))  # axes (X, A)
    exact = info.mutual_information(p, 0, 1)
    prior = rng.dirichlet(np.ones(4))
    upper = info.variational_upper_bound(p, 0, 1, prior)
    assert upper - exact == pytest.approx(info.kl_divergence(p.sum(0), prior), abs=1e-12)
    assert info.variational_upper_bound(p, 0, 1, p.sum(0)) == pytest.approx(exact, abs=1e-12)
    decoder = rng.dirichlet(np.ones(5), size=4).T  # q(x | a), axes (X, A)
    lower = info.variational_lower_bound(p, 0, 1, decoder)
    posterior = info.conditional(p, 0, 1)
    gap = sum(p.sum(0)[a] * info.kl_divergence(posterior[:, a], decoder[:, a]) for a in range(4))
    assert exact - lower == pytest.approx(gap, abs=1e-12)
    assert info.variational_lower_bound(p, 0, 1, posterior) == pytest.approx(exact, abs=1e-12)
    with pytest.raises(info.DistributionError, match="sum to one over the target"):
        info.variational_lower_bound(p, 0, 1, decoder * 2)


# -------------------------------------------------------------------------- Bayesian networks


def test_network_structure():
    g = info.BayesianNetwork({"C": ["A", "B"], "A": [], "B": ["A"]})
    assert g.nodes == ("A", "B", "C")
    assert sorted(g.edges) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert g.parents["C"] == ("A", "B")


def test_cycles_and_unknown_parents_are_named():
    with pytest.raises(info.GraphError, match="cycle through .*'b'.*'c'"):
        info.BayesianNetwork({"a": [], "b": ["c"], "c": ["b"]})
    with pytest.raises(info.GraphError, match="Unknown parents 'q'"):
        info.BayesianNetwork({"a": ["q"]})
    with pytest.raises(info.GraphError, match="themselves"):
        info.BayesianNetwork({"a": ["a"]})


def test_order_must_match_the_graph():
    g = info.BayesianNetwork({"A": [], "B": ["A"]})
    p = np.full((2, 2), 0.25)
    with pytest.raises(ValueError, match="must name every node"):
        g.transmitted_information(p, ["A", "C"])
    with pytest.raises(ValueError, match="has 3 axes"):
        g.transmitted_information(np.full((2, 2, 2), 1 / 8), ["A", "B"])


def test_transmitted_information_of_a_chain():
    g = info.BayesianNetwork({"X": [], "Y": ["X"]})
    e = 0.2
    p = 0.5 * np.array([[1 - e, e], [e, 1 - e]])
    ti = g.transmitted_information(p, ["X", "Y"])
    assert ti["X"] == 0.0
    assert ti["Y"] == pytest.approx(LOG2 - binary_entropy(e), abs=1e-12)
    # The axes may come in any order as long as `order` says so.
    assert g.transmitted_information(p.T, ["Y", "X"]) == pytest.approx(ti, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_theorem_1_on_random_networks(seed):
    rng = np.random.default_rng(seed)
    g = info.BayesianNetwork.random(int(rng.integers(2, 7)), rng, edge_probability=0.5)
    states = {n: int(rng.integers(2, 4)) for n in g.nodes}
    order = [str(n) for n in rng.permutation(list(g.nodes))]
    p = g.random_distribution(states, rng, order=order)
    assert p.shape == tuple(states[n] for n in order)
    assert g.factorizes(p, order)
    total = sum(g.transmitted_information(p, order).values())
    assert abs(info.multi_information(p) - total) < 1e-10


@pytest.mark.parametrize("seed", range(10))
def test_identity_breaks_by_exactly_the_kl_to_the_projection(seed):
    rng = np.random.default_rng(100 + seed)
    g = info.BayesianNetwork.random(5, rng, edge_probability=0.4)
    p = random_table(rng, (3,) * 5)
    order = list(g.nodes)
    q = g.project(p, order)
    assert abs(q.sum() - 1) < 1e-12
    assert g.factorizes(q, order)
    gap = info.multi_information(p) - sum(g.transmitted_information(p, order).values())
    kl = info.kl_divergence(p, q)
    assert abs(gap - kl) < 1e-10
    if len(g.edges) < 10:  # a complete DAG on 5 nodes would fit every table
        assert not g.factorizes(p, order)
        assert kl > 1e-3
    # The projection beats any other distribution that factorises over the graph.
    other = g.random_distribution(3, rng)
    assert info.kl_divergence(p, other) >= kl


def test_projection_fills_unseen_parent_states_uniformly():
    # X1 and X2 are perfect copies, so (X1, X2) = (0, 1) never occurs under p but does under the
    # product p(x1) p(x2) that the collider X1 -> X3 <- X2 projects to.
    g = info.BayesianNetwork({"X1": [], "X2": [], "X3": ["X1", "X2"]})
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5
    q = g.project(p, ["X1", "X2", "X3"])
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(q[0, 1], [0.125, 0.125])
    gap = info.multi_information(p) - sum(g.transmitted_information(p, g.nodes).values())
    assert gap == pytest.approx(info.kl_divergence(p, q), abs=1e-12)


def test_random_distribution_checks_its_inputs():
    g = info.BayesianNetwork({"A": [], "B": ["A"]})
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"nodes \['B'\]"):
        g.random_distribution({"A": 2}, rng)
    with pytest.raises(ValueError, match="concentration"):
        g.random_distribution(2, rng, concentration=0)


def test_draw_returns_axes_with_every_node_and_edge():
    import matplotlib.pyplot as plt

    g_in, _ = info.distib_graphs()
    ax = g_in.draw(title="G_in")
    labels = sorted(t.get_text() for t in ax.texts if t.get_text())
    assert labels == ["A", "X", "Y", "Z"]
    arrows = [c for c in ax.get_children() if isinstance(c, matplotlib.text.Annotation)]
    assert len(arrows) == 3
    plt.close(ax.figure)


# ----------------------------------------------------------------------------------- DisTIB


def test_distib_graphs():
    g_in, g_out = info.distib_graphs()
    assert sorted(g_in.edges) == [("X", "A"), ("X", "Y"), ("X", "Z")]
    assert sorted(g_out.edges) == [("A", "X"), ("A", "Y"), ("Z", "X")]


def test_distib_objective_is_derived_from_the_graphs():
    objective = info.distib_objective()
    assert [t.name for t in objective.preservation] == ["I(A; Y)", "I(A,Z; X)"]
    assert [t.name for t in objective.compression] == ["I(X; A)", "I(X; Z)"]
    assert [t.name for t in objective.constants] == ["I(X; Y)"]
    assert str(objective).startswith("L = -[ I(A; Y) + I(A,Z; X) ] + beta * [ I(X; A) + I(X; Z) ]")
    # Without observed variables nothing is set aside.
    g_in, g_out = info.distib_graphs()
    assert len(info.derive_objective(g_out, g_in).compression) == 3


def test_distib_objective_on_an_exact_joint():
    rng = np.random.default_rng(5)
    g_in, g_out = info.distib_graphs()
    order = ["X", "A", "Z", "Y"]
    p = g_in.random_distribution({"X": 6, "A": 3, "Z": 4, "Y": 2}, rng, order=order)
    objective = info.distib_objective()
    values = objective.values(p, order)
    i_x_az = info.mutual_information(p, 0, [1, 2])
    assert values["I(A,Z; X)"] == pytest.approx(i_x_az, abs=1e-12)
    beta = 0.3
    manual = -(values["I(A; Y)"] + i_x_az) + beta * (values["I(X; A)"] + values["I(X; Z)"])
    assert objective.evaluate(p, order, beta) == pytest.approx(manual, abs=1e-12)
    # Both encoders read only x, so A and Z are independent given X and the compression bracket
    # is I(X; A,Z) + I(A; Z): the objective penalises I(A; Z) without naming it.
    bracket = values["I(X; A)"] + values["I(X; Z)"]
    assert bracket == pytest.approx(i_x_az + info.mutual_information(p, 1, 2), abs=1e-12)
    # Theorem 1 on G_in, and its failure on G_out measured by the KL to the projection.
    ti_in = sum(g_in.transmitted_information(p, order).values())
    ti_out = sum(g_out.transmitted_information(p, order).values())
    assert ti_in == pytest.approx(info.multi_information(p), abs=1e-10)
    assert ti_in - ti_out == pytest.approx(info.kl_divergence(p, g_out.project(p, order)),
                                           abs=1e-10)
    with pytest.raises(ValueError, match="no axis for"):
        objective.values(p, ["X", "A", "Q", "Y"])
    with pytest.raises(ValueError, match="one name per axis"):
        objective.values(p, ["X", "A", "Z"])
