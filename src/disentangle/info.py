"""Exact information quantities on discrete joint tables, Bayesian networks and the transmitted
information they carry, and the two graphs of DisTIB from which its objective is derived.

A *joint table* is a numpy array with one axis per variable, whose entries are the probabilities
of every joint state: ``p[i, j, k] = P(X0=i, X1=j, X2=k)``. Sets of variables are named by their
axes. Every quantity is in nats unless ``unit="bits"`` is passed.

The estimators for learned continuous codes live in :mod:`disentangle.estimators`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

UNITS = {"nats": 1.0, "bits": 1.0 / np.log(2.0)}
_TABLE_TOL = 1e-9


class DistributionError(ValueError):
    """A table that is not a probability distribution."""


class GraphError(ValueError):
    """A parent mapping that does not describe a directed acyclic graph."""


# --------------------------------------------------------------------------------------------
# Tables


def unit_scale(unit: str) -> float:
    """The factor that turns a quantity in nats into ``unit`` (``"nats"`` or ``"bits"``): every
    function with a ``unit`` argument, here and in :mod:`disentangle.estimators`, computes in nats
    and multiplies by it. An unknown unit raises ValueError."""
    if unit not in UNITS:
        raise ValueError(f"Unknown unit {unit!r}: use 'nats' or 'bits'.")
    return UNITS[unit]


def check_distribution(p: np.ndarray | Sequence, tol: float = _TABLE_TOL) -> np.ndarray:
    """Return ``p`` as a float array after checking it is a distribution: no NaN or infinity, no
    negative entry, and a total of one within ``tol``. A failed check raises DistributionError."""
    table = np.asarray(p, dtype=float)
    if table.ndim == 0 or table.size == 0:
        raise DistributionError("A joint table needs at least one axis and one entry.")
    if not np.all(np.isfinite(table)):
        raise DistributionError(
            "The table holds NaN or infinite entries; check how it was computed."
        )
    if table.min() < 0:
        raise DistributionError(
            f"The table has negative entries (smallest {table.min():.3g}); "
            "probabilities must be >= 0."
        )
    total = table.sum()
    if abs(total - 1.0) > tol:
        raise DistributionError(
            f"The table sums to {total:.12g}, not 1 (tolerance {tol:g}); divide it by its sum "
            "if it holds unnormalised weights."
        )
    return table


def _axes(p: np.ndarray, axes: int | Iterable[int] | None, what: str = "axes") -> tuple[int, ...]:
    if axes is None:
        return tuple(range(p.ndim))
    chosen = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    bad = [a for a in chosen if not isinstance(a, (int, np.integer)) or not -p.ndim <= a < p.ndim]
    if bad:
        raise ValueError(
            f"{what} {bad} do not name axes of a table with {p.ndim} axes "
            f"(valid: 0..{p.ndim - 1})."
        )
    normal = tuple(int(a) % p.ndim for a in chosen)
    if len(set(normal)) != len(normal):
        raise ValueError(f"{what} {list(chosen)} name the same axis twice.")
    return normal


def marginal(p: np.ndarray, axes: int | Iterable[int]) -> np.ndarray:
    """The marginal table p(x_S) = sum over the other variables of p, with its axes in the order
    of ``axes``."""
    table = check_distribution(p)
    keep = _axes(table, axes)
    summed = table.sum(axis=tuple(a for a in range(table.ndim) if a not in keep))
    return np.transpose(summed, np.argsort(np.argsort(keep)))


def _entropy_of(table: np.ndarray) -> float:
    nz = table[table > 0]
    return float(-(nz * np.log(nz)).sum())


def _h(table: np.ndarray, axes: tuple[int, ...]) -> float:
    if not axes:
        return 0.0
    other = tuple(a for a in range(table.ndim) if a not in axes)
    return _entropy_of(table.sum(axis=other) if other else table)


def entropy(p: np.ndarray, axes: int | Iterable[int] | None = None, *, unit: str = "nats") -> float:
    """Entropy H(X_S) = -sum_x p(x_S) log p(x_S) of the variables on ``axes`` (all of them when
    None, which is the joint entropy of the table)."""
    table = check_distribution(p)
    return _h(table, _axes(table, axes)) * unit_scale(unit)


def conditional_entropy(
    p: np.ndarray, axes: int | Iterable[int], given: int | Iterable[int], *, unit: str = "nats"
) -> float:
    """Conditional entropy H(X_S | X_T) = H(X_S, X_T) - H(X_T)."""
    table = check_distribution(p)
    a, g = _axes(table, axes), _axes(table, given, "given")
    union = tuple(sorted(set(a) | set(g)))
    return (_h(table, union) - _h(table, g)) * unit_scale(unit)


def mutual_information(
    p: np.ndarray, a: int | Iterable[int], b: int | Iterable[int], *, unit: str = "nats"
) -> float:
    """Mutual information between two sets of variables, I(X_S; X_T) = H(X_S) + H(X_T) -
    H(X_S, X_T). An empty set carries no information: I(X_S; nothing) = 0."""
    table = check_distribution(p)
    sa, sb = _axes(table, a), _axes(table, b)
    union = tuple(sorted(set(sa) | set(sb)))
    return (_h(table, sa) + _h(table, sb) - _h(table, union)) * unit_scale(unit)


def conditional_mutual_information(
    p: np.ndarray,
    a: int | Iterable[int],
    b: int | Iterable[int],
    given: int | Iterable[int],
    *,
    unit: str = "nats",
) -> float:
    """Conditional mutual information I(X_S; X_T | X_U) = H(X_S, X_U) + H(X_T, X_U) -
    H(X_S, X_T, X_U) - H(X_U)."""
    table = check_distribution(p)
    sa, sb, sc = _axes(table, a), _axes(table, b), _axes(table, given, "given")

    def union(*sets: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(set().union(*sets)))

    value = _h(table, union(sa, sc)) + _h(table, union(sb, sc))
    value -= _h(table, union(sa, sb, sc)) + _h(table, sc)
    return value * unit_scale(unit)


def kl_divergence(p: np.ndarray, q: np.ndarray, *, unit: str = "nats") -> float:
    """Kullback-Leibler divergence KL(p || q) = sum_x p(x) log(p(x) / q(x)); infinite when q is
    zero somewhere p is not."""
    pt, qt = check_distribution(p), check_distribution(q)
    if pt.shape != qt.shape:
        raise ValueError(f"KL needs tables of one shape; got {pt.shape} and {qt.shape}.")
    support = pt > 0
    if np.any(qt[support] == 0):
        return float("inf")
    return float((pt[support] * np.log(pt[support] / qt[support])).sum()) * unit_scale(unit)


def product_of_marginals(p: np.ndarray) -> np.ndarray:
    """The table prod_i p(x_i) with the same one-variable marginals as ``p``."""
    table = check_distribution(p)
    out = np.ones((1,) * table.ndim)
    for axis in range(table.ndim):
        shape = [1] * table.ndim
        shape[axis] = table.shape[axis]
        out = out * marginal(table, axis).reshape(shape)
    return out


def multi_information(p: np.ndarray, *, unit: str = "nats") -> float:
    """Multi-information (total correlation) I(p) = KL(p || prod_i p(x_i)) = sum_i H(X_i) - H(X).
    The entropy form is used: it is exact and avoids building the product table."""
    table = check_distribution(p)
    value = sum(_h(table, (a,)) for a in range(table.ndim)) - _h(table, tuple(range(table.ndim)))
    return value * unit_scale(unit)


def conditional(
    p: np.ndarray, target: int | Iterable[int], given: int | Iterable[int]
) -> np.ndarray:
    """The conditional table p(x_S | x_T) = p(x_S, x_T) / p(x_T), axes ordered target then given.

    Where p(x_T) = 0 the conditional is undefined; we fill it with the uniform distribution so the
    result is always a valid conditional (it never matters where x_T cannot occur)."""
    table = check_distribution(p)
    t, g = _axes(table, target), _axes(table, given, "given")
    if set(t) & set(g):
        raise ValueError(f"target {list(t)} and given {list(g)} share axes.")
    joint = marginal(table, t + g)
    norm = joint.sum(axis=tuple(range(len(t))), keepdims=True)
    size = int(np.prod([table.shape[a] for a in t]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, joint / np.where(norm > 0, norm, 1.0), 1.0 / size)


def variational_upper_bound(
    p: np.ndarray,
    source: int | Iterable[int],
    code: int | Iterable[int],
    prior: np.ndarray,
    *,
    unit: str = "nats",
) -> float:
    """The bound I(X; A) <= E_x KL(p(a|x) || r(a)) for any prior r (here ``prior``, a table over
    the ``code`` axes). The gap is exactly KL(p(a) || r(a))."""
    table = check_distribution(p)
    s, c = _axes(table, source), _axes(table, code)
    r = check_distribution(prior)
    if r.shape != tuple(table.shape[a] for a in c):
        raise ValueError(f"prior has shape {r.shape}; the code axes have shape "
                         f"{tuple(table.shape[a] for a in c)}.")
    joint = marginal(table, c + s)
    cond = conditional(table, c, s)
    r_full = np.broadcast_to(r.reshape(r.shape + (1,) * len(s)), joint.shape)
    support = joint > 0
    if np.any(r_full[support] == 0):
        return float("inf")
    ratio = cond[support] / r_full[support]
    return float((joint[support] * np.log(ratio)).sum()) * unit_scale(unit)


def variational_lower_bound(
    p: np.ndarray,
    target: int | Iterable[int],
    code: int | Iterable[int],
    decoder: np.ndarray,
    *,
    unit: str = "nats",
) -> float:
    """The bound I(T; A) >= H(T) + E_{p(t,a)} log q(t|a) for any decoder q (a table with axes
    target then code, summing to one over the target axes). The gap is E_a KL(p(t|a) || q(t|a))."""
    table = check_distribution(p)
    t, c = _axes(table, target), _axes(table, code)
    joint = marginal(table, t + c)
    q = np.asarray(decoder, dtype=float)
    if q.shape != joint.shape:
        raise ValueError(f"decoder has shape {q.shape}; it needs axes target then code, "
                         f"shape {joint.shape}.")
    sums = q.sum(axis=tuple(range(len(t))))
    if q.min() < 0 or not np.allclose(sums, 1.0, atol=1e-9):
        raise DistributionError("decoder must be >= 0 and sum to one over the target axes.")
    support = joint > 0
    if np.any(q[support] == 0):
        return float("-inf")
    expected_log_q = float((joint[support] * np.log(q[support])).sum())
    return (_h(table, t) + expected_log_q) * unit_scale(unit)


# --------------------------------------------------------------------------------------------
# Bayesian networks


class BayesianNetwork:
    """A directed acyclic graph given by its parents: ``BayesianNetwork({"X": [], "A": ["X"]})``.

    A joint distribution *factorises* over the graph when p(x) = prod_i p(x_i | pa_i). Its
    *transmitted information* is, per node, I(X_i; Pa_i): the information the joint of a node's
    parents carries about the node (McGill 1954; Friedman et al. 2001).
    """

    def __init__(self, parents: Mapping[Hashable, Sequence[Hashable]]) -> None:
        if not isinstance(parents, Mapping):
            raise GraphError("BayesianNetwork needs a mapping node -> list of parent nodes.")
        self._parents = {node: tuple(ps) for node, ps in parents.items()}
        unknown = sorted(
            {repr(q) for ps in self._parents.values() for q in ps if q not in self._parents}
        )
        if unknown:
            raise GraphError(
                f"Unknown parents {', '.join(unknown)}: every parent must also be a key of the "
                "mapping (add it with an empty parent list if it is a root)."
            )
        repeated = [n for n, ps in self._parents.items() if len(set(ps)) != len(ps) or n in ps]
        if repeated:
            raise GraphError(
                f"Nodes {repeated} list a parent twice or themselves; list each parent once."
            )
        self._order = self._topological_order()

    def _topological_order(self) -> tuple[Hashable, ...]:
        # Kahn's algorithm, ties broken by the mapping's order so the result is reproducible.
        remaining = {node: set(ps) for node, ps in self._parents.items()}
        order: list[Hashable] = []
        while remaining:
            ready = [node for node, ps in remaining.items() if not ps]
            if not ready:
                raise GraphError(f"The graph has a cycle through {self._find_cycle(remaining)}; "
                                 "a Bayesian network must be acyclic.")
            for node in ready:
                order.append(node)
                del remaining[node]
            for ps in remaining.values():
                ps.difference_update(ready)
        return tuple(order)

    @staticmethod
    def _find_cycle(remaining: Mapping[Hashable, set]) -> str:
        # Every node left has a parent left, so walking up parents must revisit a node.
        node = next(iter(remaining))
        path: list[Hashable] = []
        while node not in path:
            path.append(node)
            node = sorted(remaining[node], key=repr)[0]
        cycle = path[path.index(node):] + [node]
        return " <- ".join(repr(n) for n in cycle)

    @classmethod
    def random(
        cls,
        n_nodes: int,
        rng: np.random.Generator,
        *,
        edge_probability: float = 0.5,
        max_parents: int | None = None,
    ) -> BayesianNetwork:
        """A random DAG on nodes ``X1..Xn``: each pair (Xi, Xj), i < j in a random order, is an
        edge with probability ``edge_probability``; at most ``max_parents`` parents per node."""
        if n_nodes < 1:
            raise ValueError(f"n_nodes must be >= 1, got {n_nodes}.")
        if not 0 <= edge_probability <= 1:
            raise ValueError(f"edge_probability must lie in [0, 1], got {edge_probability}.")
        names = [f"X{i + 1}" for i in range(n_nodes)]
        ranked = [names[i] for i in rng.permutation(n_nodes)]
        parents: dict[str, list[str]] = {}
        for j, node in enumerate(ranked):
            chosen = [ranked[i] for i in range(j) if rng.random() < edge_probability]
            if max_parents is not None and len(chosen) > max_parents:
                chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), max_parents, False))]
            parents[node] = chosen
        return cls({name: parents[name] for name in names})

    @property
    def nodes(self) -> tuple[Hashable, ...]:
        """The nodes in a topological order: every parent comes before its children."""
        return self._order

    @property
    def parents(self) -> dict[Hashable, tuple[Hashable, ...]]:
        """node -> tuple of its parents (a copy)."""
        return dict(self._parents)

    @property
    def edges(self) -> list[tuple[Hashable, Hashable]]:
        """Every edge (parent, child), children in topological order."""
        return [(q, node) for node in self._order for q in self._parents[node]]

    def __repr__(self) -> str:
        body = ", ".join(f"{n!r}: {list(self._parents[n])!r}" for n in self._order)
        return f"BayesianNetwork({{{body}}})"

    def _axis_map(self, p: np.ndarray, order: Sequence[Hashable]) -> dict[Hashable, int]:
        order = tuple(order)
        if len(order) != len(self._order) or set(order) != set(self._order):
            raise ValueError(
                f"order {list(order)} must name every node of the graph once "
                f"({list(self._order)}), in the order of the table's axes."
            )
        if p.ndim != len(order):
            raise ValueError(
                f"The table has {p.ndim} axes but order names {len(order)} nodes; "
                "give one axis per node."
            )
        return {node: axis for axis, node in enumerate(order)}

    def transmitted_information(
        self, p: np.ndarray, order: Sequence[Hashable], *, unit: str = "nats"
    ) -> dict[Hashable, float]:
        """{node: I(X_i; Pa_i)} for the joint table ``p`` whose axes follow ``order``; a root
        transmits nothing (0). Theorem 1: their sum is the multi-information when p factorises."""
        table = check_distribution(p)
        axis = self._axis_map(table, order)
        scale = unit_scale(unit)
        out: dict[Hashable, float] = {}
        for node in self._order:
            pa = tuple(sorted(axis[q] for q in self._parents[node]))
            if not pa:
                out[node] = 0.0
                continue
            me = (axis[node],)
            family = tuple(sorted(me + pa))
            out[node] = (_h(table, me) + _h(table, pa) - _h(table, family)) * scale
        return out

    def project(self, p: np.ndarray, order: Sequence[Hashable]) -> np.ndarray:
        """The projection of ``p`` onto the graph, q(x) = prod_i p(x_i | pa_i), built from the
        conditionals of ``p`` itself. It is the distribution factorising over the graph that is
        closest to p in KL(p || q); q = p exactly when p factorises."""
        table = check_distribution(p)
        axis = self._axis_map(table, order)
        out = np.ones((1,) * table.ndim)
        for node in self._order:
            me = axis[node]
            family = sorted([me] + [axis[q] for q in self._parents[node]])
            others = tuple(a for a in range(table.ndim) if a not in family)
            joint = table.sum(axis=others, keepdims=True) if others else table
            norm = joint.sum(axis=me, keepdims=True)
            # Parent states p never visits still need a conditional; uniform keeps q normalised.
            with np.errstate(invalid="ignore", divide="ignore"):
                cond = np.where(norm > 0, joint / np.where(norm > 0, norm, 1.0),
                                1.0 / table.shape[me])
            out = out * cond
        return out

    def factorizes(self, p: np.ndarray, order: Sequence[Hashable], tol: float = 1e-10) -> bool:
        """Whether p(x) = prod_i p(x_i | pa_i) for every state, within ``tol`` (largest absolute
        difference between p and its projection)."""
        table = check_distribution(p)
        return bool(np.max(np.abs(table - self.project(table, order))) <= tol)

    def random_distribution(
        self,
        states: int | Mapping[Hashable, int],
        rng: np.random.Generator,
        *,
        order: Sequence[Hashable] | None = None,
        concentration: float = 1.0,
    ) -> np.ndarray:
        """A random joint p(x) = prod_i p(x_i | pa_i) that factorises over the graph: every
        conditional p(x_i | pa_i = s) is drawn from Dirichlet(concentration). ``states`` gives the
        number of states of every node (one int for all). The axes follow ``order`` (default:
        :attr:`nodes`)."""
        order = tuple(self._order if order is None else order)
        sizes = {n: states for n in self._order} if isinstance(states, int) else dict(states)
        missing = [n for n in self._order if n not in sizes]
        if missing:
            raise ValueError(f"states gives no number of states for nodes {missing}.")
        small = {n: k for n, k in sizes.items() if int(k) < 1}
        if small:
            raise ValueError(f"Every node needs at least one state; got {small}.")
        if concentration <= 0:
            raise ValueError(f"concentration must be > 0, got {concentration}.")
        shape = tuple(int(sizes[n]) for n in order)
        axis = self._axis_map(np.empty((1,) * len(order)), order)
        out = np.ones((1,) * len(order))
        for node in self._order:
            family = sorted([axis[node]] + [axis[q] for q in self._parents[node]])
            fam_shape = tuple(shape[a] for a in family)
            pos = family.index(axis[node])
            draws = rng.dirichlet(np.full(shape[axis[node]], concentration),
                                  size=fam_shape[:pos] + fam_shape[pos + 1:])
            cond = np.moveaxis(draws, -1, pos)
            full = [1] * len(order)
            for a in family:
                full[a] = shape[a]
            out = out * cond.reshape(full)
        return out / out.sum()

    def draw(
        self,
        ax: Axes | None = None,
        *,
        positions: Mapping[Hashable, tuple[float, float]] | None = None,
        title: str | None = None,
        node_color: str = "#dbe8f6",
    ) -> Axes:
        """Draw the graph with matplotlib (no graphviz): roots on top, each node one row below its
        deepest parent. Returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(3.5, 3))
        pos = dict(positions) if positions is not None else self._layered_positions()
        missing = [n for n in self._order if n not in pos]
        if missing:
            raise ValueError(f"positions gives no place for nodes {missing}.")
        # One circle size for all nodes, wide enough for the longest name (~5 pt a character).
        widest = max(len(str(n)) for n in self._order)
        diameter = dict.fromkeys(self._order, max(30.0, 5.2 * widest + 12.0))
        for parent, child in self.edges:
            ax.annotate(
                "", xy=pos[child], xytext=pos[parent],
                arrowprops={"arrowstyle": "-|>", "color": "0.25", "lw": 1.4,
                            "shrinkA": diameter[parent] / 2 + 1,
                            "shrinkB": diameter[child] / 2 + 1, "mutation_scale": 14},
            )
        xs = [pos[n][0] for n in self._order]
        ys = [pos[n][1] for n in self._order]
        ax.scatter(xs, ys, s=[diameter[n] ** 2 for n in self._order], c=node_color,
                   edgecolors="0.2", zorder=3)
        for node in self._order:
            ax.text(*pos[node], str(node), ha="center", va="center", fontsize=10, zorder=4)
        ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
        ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
        ax.set_aspect("equal")
        ax.axis("off")
        if title:
            ax.set_title(title)
        return ax

    def _layered_positions(self) -> dict[Hashable, tuple[float, float]]:
        depth: dict[Hashable, int] = {}
        for node in self._order:
            depth[node] = 1 + max((depth[q] for q in self._parents[node]), default=-1)
        layers: dict[int, list[Hashable]] = {}
        for node in self._order:
            layers.setdefault(depth[node], []).append(node)
        pos = {}
        for d, members in layers.items():
            for i, node in enumerate(members):
                pos[node] = (i - (len(members) - 1) / 2, -float(d))
        return pos


# --------------------------------------------------------------------------------------------
# DisTIB: two graphs, one objective


def distib_graphs() -> tuple[BayesianNetwork, BayesianNetwork]:
    """The two graphs of DisTIB (Dang et al. 2024): G_in, the encoding graph X->A, X->Z, X->Y,
    and G_out, the generative graph A->Y, A->X, Z->X. Returns (G_in, G_out)."""
    g_in = BayesianNetwork({"X": [], "A": ["X"], "Z": ["X"], "Y": ["X"]})
    g_out = BayesianNetwork({"A": [], "Z": [], "Y": ["A"], "X": ["A", "Z"]})
    return g_in, g_out


@dataclass(frozen=True)
class Term:
    """One transmitted-information term I(Pa_i; X_i) of a graph."""

    node: Hashable
    parents: tuple[Hashable, ...]
    graph: str

    @property
    def name(self) -> str:
        """The term as it is printed, ``I(A,Z; X)``: the parents, then the node."""
        return f"I({','.join(map(str, self.parents))}; {self.node})"

    def value(self, p: np.ndarray, order: Sequence[Hashable], *, unit: str = "nats") -> float:
        """I(Pa_i; X_i) on the joint table ``p`` whose axes follow ``order``."""
        table = check_distribution(p)
        if table.ndim != len(order):
            raise ValueError(f"The table has {table.ndim} axes but order names {len(order)} "
                             "variables; give one name per axis.")
        axis = {node: i for i, node in enumerate(order)}
        missing = [n for n in (self.node, *self.parents) if n not in axis]
        if missing:
            raise ValueError(f"order {list(order)} has no axis for {missing} (term {self.name}).")
        return mutual_information(table, [axis[n] for n in self.parents], [axis[self.node]],
                                  unit=unit)


@dataclass(frozen=True)
class Objective:
    """L = -[sum of preservation terms] + beta * [sum of compression terms], with the terms the
    data fix (``constants``, from either graph) left out of the brackets."""

    preservation: tuple[Term, ...]
    compression: tuple[Term, ...]
    constants: tuple[Term, ...]

    def __str__(self) -> str:
        keep = " + ".join(t.name for t in self.preservation)
        squeeze = " + ".join(t.name for t in self.compression)
        text = f"L = -[ {keep} ] + beta * [ {squeeze} ]"
        if self.constants:
            text += "   (dropped, fixed by the data: " + ", ".join(
                f"{t.name} from {t.graph}" for t in self.constants) + ")"
        return text

    def values(self, p: np.ndarray, order: Sequence[Hashable], *,
               unit: str = "nats") -> dict[str, float]:
        """{term name: value} for every term, constants included, on the joint table ``p``."""
        terms = self.preservation + self.compression + self.constants
        return {t.name: t.value(p, order, unit=unit) for t in terms}

    def evaluate(self, p: np.ndarray, order: Sequence[Hashable], beta: float, *,
                 unit: str = "nats") -> float:
        """The objective L(beta) = -sum(preservation) + beta * sum(compression) on ``p``."""
        keep = sum(t.value(p, order, unit=unit) for t in self.preservation)
        squeeze = sum(t.value(p, order, unit=unit) for t in self.compression)
        return -keep + beta * squeeze


def derive_objective(
    preserve: BayesianNetwork, compress: BayesianNetwork, observed: Iterable[Hashable] = ()
) -> Objective:
    """Derive the transmitted-information bottleneck L = -I^{G_out} + beta I^{G_in} from the two
    graphs: one term I(Pa_i; X_i) per node with parents, preservation terms from ``preserve`` and
    compression terms from ``compress``. A term among ``observed`` variables only is a constant of
    the data, so it is set aside in ``constants``."""
    seen = set(observed)

    def terms(graph: BayesianNetwork, label: str) -> list[Term]:
        ps = graph.parents
        return [Term(n, ps[n], label) for n in graph.nodes if ps[n]]

    keep, squeeze, constants = [], [], []
    for bucket, graph, label in ((keep, preserve, "G_out"), (squeeze, compress, "G_in")):
        for term in terms(graph, label):
            fixed = term.node in seen and all(q in seen for q in term.parents)
            (constants if fixed else bucket).append(term)
    return Objective(tuple(keep), tuple(squeeze), tuple(constants))


def distib_objective() -> Objective:
    """The DisTIB objective derived from its graphs with X and Y observed:
    L = -[ I(A; Y) + I(A,Z; X) ] + beta * [ I(X; A) + I(X; Z) ], I(X; Y) dropped."""
    g_in, g_out = distib_graphs()
    return derive_objective(g_out, g_in, observed=("X", "Y"))
