"""Ground-truth data whose factors are *not* independent: the data of the two-level latent space.

:class:`CorrelatedFactors` draws some factors of a dataset from a stated joint probability table and
the rest uniformly, so the dependence between factors is known exactly: its mutual information is a
number computed from the table, which a model's learned codes can be compared against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from disentangle import info
from disentangle.data.base import GroundTruthData


class CorrelatedFactors(GroundTruthData):
    """``data`` with the factors named in ``over`` drawn jointly from ``joint`` (a probability
    table, one axis per named factor, in that order); every other factor stays uniform and
    independent. Images, names and sizes are those of ``data``."""

    def __init__(self, data: GroundTruthData, over: Sequence[str], joint: np.ndarray):
        self.data = data
        self.over = tuple(over)
        self.axes = [data.factor_index(name) for name in self.over]
        if len(set(self.over)) != len(self.over):
            raise ValueError(f"Factors may appear once each in 'over'; got {self.over}.")
        expected = tuple(data.factor_sizes[k] for k in self.axes)
        joint = np.asarray(joint, dtype=np.float64)
        if joint.shape != expected:
            raise ValueError(
                f"The joint table over {self.over} must have shape {expected} (the factors' "
                f"sizes); got {joint.shape}."
            )
        self.joint = info.check_distribution(joint)
        self.factor_names = data.factor_names
        self.factor_sizes = data.factor_sizes
        self.image_shape = data.image_shape

    def __repr__(self) -> str:
        return f"CorrelatedFactors({self.data!r}, over={self.over})"

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Factor vectors (n, F): the ``over`` factors from the joint table, the rest uniform."""
        factors = self.data.sample_factors(n, rng)
        cells = rng.choice(self.joint.size, size=n, p=self.joint.ravel())
        factors[:, self.axes] = np.stack(np.unravel_index(cells, self.joint.shape), axis=1)
        return factors

    def _images(self, factors: np.ndarray) -> torch.Tensor:
        return self.data.images(factors)

    def mutual_information(self, a: str, b: str) -> float:
        """The exact mutual information I(a; b) in nats between two factors as they are sampled
        here; zero when either one is drawn independently of everything."""
        if a not in self.over or b not in self.over:
            self.data.factor_index(a), self.data.factor_index(b)
            return 0.0
        return info.mutual_information(self.joint, self.over.index(a), self.over.index(b))


def tie(data: GroundTruthData, a: str, b: str, spread: int) -> CorrelatedFactors:
    """Tie factor ``b`` to factor ``a``: ``a`` is uniform, and ``b`` is uniform over the classes
    within ``spread`` of ``a``'s class (clipped to ``b``'s range). ``spread = 0`` makes them equal
    (when their sizes match); a spread as large as the sizes makes them almost independent."""
    size_a = data.factor_sizes[data.factor_index(a)]
    size_b = data.factor_sizes[data.factor_index(b)]
    if spread < 0:
        raise ValueError(f"spread must be a non-negative number of classes; got {spread}.")
    classes_b = np.arange(size_b)
    joint = np.zeros((size_a, size_b))
    for k in range(size_a):
        window = np.abs(classes_b - k) <= spread
        if not window.any():
            raise ValueError(
                f"With spread {spread}, class {k} of {a!r} has no class of {b!r} (0..{size_b - 1}) "
                "within reach; use a larger spread."
            )
        joint[k, window] = 1.0 / (size_a * window.sum())
    return CorrelatedFactors(data, (a, b), joint)
