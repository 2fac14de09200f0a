"""The interface every ground-truth dataset of the book offers, used by training and by the metrics.

A ground-truth dataset is a grid of factors of variation (shape, scale, position...), each with a
finite number of classes, and an image for every point of the grid. Points are numbered in C order
with the last factor fastest, the convention of dSprites:
``index = sum_k factors[k] * prod(sizes[k+1:])``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch


class GroundTruthData(ABC):
    """Base class: subclasses set ``factor_names``, ``factor_sizes``, ``image_shape`` (C, H, W) and
    implement ``_images(factors)`` for an already-checked int64 array of factor classes."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    image_shape: tuple[int, int, int]

    @abstractmethod
    def _images(self, factors: np.ndarray) -> torch.Tensor:
        """Float32 images (n, C, H, W) in [0, 1] for checked factor classes (n, F)."""

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def bases(self) -> np.ndarray:
        """Place values of each factor in the C-order index: ``prod(sizes[k+1:])``."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def __repr__(self) -> str:
        grid = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return f"{type(self).__name__}({grid}; {len(self):,} images of {self.image_shape})"

    def factor_index(self, name: str) -> int:
        """Position of the factor called ``name``; an unknown name lists the valid ones."""
        if name not in self.factor_names:
            raise KeyError(
                f"Unknown factor {name!r} for {type(self).__name__}; "
                f"its factors are {', '.join(self.factor_names)}."
            )
        return self.factor_names.index(name)

    def check_factors(self, factors: np.ndarray | Sequence) -> np.ndarray:
        """Return ``factors`` as an int64 array (n, F), or raise naming the factor out of range."""
        array = np.asarray(factors)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.num_factors:
            raise ValueError(
                f"Expected factors of shape (n, {self.num_factors}) for the factors "
                f"{', '.join(self.factor_names)}; got shape {np.shape(factors)}."
            )
        if not np.issubdtype(array.dtype, np.integer):
            if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
                raise ValueError("Factors must be integer class indices, not fractional values.")
        array = array.astype(np.int64)
        for k, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
            bad = (array[:, k] < 0) | (array[:, k] >= size)
            if bad.any():
                raise ValueError(
                    f"Factor {name!r} has class {array[bad, k][0]} out of range: "
                    f"valid classes are 0..{size - 1}."
                )
        return array

    def index(self, factors: np.ndarray | Sequence) -> np.ndarray:
        """Flat C-order index of each factor vector (last factor fastest)."""
        return self.check_factors(factors) @ self.bases

    def factors(self, index: np.ndarray | Sequence | int) -> np.ndarray:
        """Factor classes (n, F) of each flat index; the inverse of :meth:`index`."""
        flat = np.atleast_1d(np.asarray(index))
        if not np.issubdtype(flat.dtype, np.integer):
            raise ValueError(f"Indices must be integers, got dtype {flat.dtype}.")
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"Index out of range: valid indices are 0..{len(self) - 1}.")
        return np.stack(np.unravel_index(flat.astype(np.int64), self.factor_sizes), axis=1)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor vectors drawn uniformly and independently over the grid, int64 (n, F)."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1)

    def traversal(
        self, factor: str, base: Sequence[int] | None = None, steps: int | None = None
    ) -> np.ndarray:
        """Factor vectors (steps, F) that walk ``factor`` through ``steps`` evenly spaced classes
        (all of them by default) while every other factor stays at ``base`` (default: the middle
        class of each factor)."""
        k = self.factor_index(factor)
        start = self.check_factors(
            base if base is not None else [size // 2 for size in self.factor_sizes]
        )[0]
        size = self.factor_sizes[k]
        classes = np.unique(np.linspace(0, size - 1, min(steps or size, size)).round().astype(int))
        walk = np.repeat(start[None], len(classes), axis=0)
        walk[:, k] = classes
        return walk

    def traversal_images(
        self,
        names: Sequence[str] | None = None,
        steps: int | None = None,
        base: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """One :meth:`traversal` per factor in ``names`` (default: every factor with more than
        one class), as images (rows, cols, C, H, W); short rows are padded with black images."""
        if names is None:
            names = [n for n, size in zip(self.factor_names, self.factor_sizes) if size > 1]
        rows = [self.images(self.traversal(name, base, steps)) for name in names]
        width = max(len(row) for row in rows)
        return torch.stack(
            [torch.cat([row, row.new_zeros(width - len(row), *row.shape[1:])]) for row in rows]
        )

    def images(self, factors: np.ndarray | Sequence) -> torch.Tensor:
        """Images of the given factor vectors: float32 tensor (n, C, H, W) with values in [0, 1]."""
        return self._images(self.check_factors(factors))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """``n`` random images and their factors (images on the CPU)."""
        factors = self.sample_factors(n, rng)
        return self.images(factors), factors

    def __getitem__(self, i: int) -> tuple[torch.Tensor, np.ndarray]:
        factors = self.factors(int(i))
        return self.images(factors)[0], factors[0]

    def batch(
        self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training fast path: ``n`` random images and their factors, both on ``device``.

        Subclasses that hold their images on the device override this to avoid every host
        round-trip; this default draws factors on the host and moves the images once.
        """
        where = generator.device if generator is not None else "cpu"
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=where).item())
        factors = self.sample_factors(n, np.random.default_rng(seed))
        images = self.images(factors).to(device, non_blocking=True)
        return images, torch.as_tensor(factors, device=device)


class PackedImages:
    """Binary images stored one bit per pixel (np.packbits order), unpacked on the fly on the
    device they live on. The full dSprites grid takes 377 MB this way instead of 3 GB."""

    def __init__(self, bits: torch.Tensor, height: int, width: int):
        if bits.dtype != torch.uint8 or bits.ndim != 2 or bits.shape[1] * 8 < height * width:
            raise ValueError(
                f"Expected packed bits as a uint8 tensor (n, >= {height * width // 8}); "
                f"got {tuple(bits.shape)} of {bits.dtype}."
            )
        self.bits, self.height, self.width = bits, height, width
        self._shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=bits.device)

    @classmethod
    def pack(cls, images: np.ndarray) -> PackedImages:
        """Pack a boolean or 0/1 array (n, H, W)."""
        n, height, width = images.shape
        bits = np.packbits(images.reshape(n, height * width).astype(bool), axis=1)
        return cls(torch.from_numpy(bits), height, width)

    def __len__(self) -> int:
        return self.bits.shape[0]

    @property
    def device(self) -> torch.device:
        return self.bits.device

    def to(self, device: str | torch.device) -> PackedImages:
        return PackedImages(self.bits.to(device), self.height, self.width)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        """Unpacked float32 images (n, 1, H, W) for a tensor of indices on the same device."""
        rows = self.bits[index]
        pixels = (rows.unsqueeze(-1) >> self._shifts) & 1
        flat = pixels.reshape(rows.shape[0], -1)[:, : self.height * self.width]
        return flat.reshape(-1, 1, self.height, self.width).to(torch.float32)
