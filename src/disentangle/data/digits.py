"""Digits: procedurally rendered digits whose style factors are known, and the real 8 x 8 digits
that ship with scikit-learn.

:class:`StyledDigits` draws the digits 0-9 from fonts that ship with matplotlib, so every image has
known nuisance factors (font, rotation, scale, stroke thickness, position) besides its label. That
is what lets the book *measure* how much nuisance information leaks into a code, instead of only
picturing it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.font_manager import FontProperties
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from scipy import ndimage

from disentangle.data.base import GroundTruthData

#: Fonts that ship with matplotlib, so every machine draws the same glyphs.
FONTS: dict[str, str] = {
    "sans": "DejaVuSans.ttf",
    "serif": "DejaVuSerif.ttf",
    "mono": "DejaVuSansMono.ttf",
    "roman": "cmr10.ttf",
}
ROTATIONS_DEG = np.linspace(-40.0, 40.0, 9)
SCALES = np.linspace(0.6, 1.0, 5)
#: Stroke change, in pixels of the glyph bitmap (about 1/170 of the glyph height each): thin,
#: regular, bold, heavy.
THICKNESS = (-4, 0, 4, 8)
POSITIONS = np.linspace(-0.1, 0.1, 8)  # centre offset, as a fraction of the image side

_BITMAP = 256  # glyph bitmap side; covers [-0.75, 0.75] glyph heights around the glyph's centre
_EXTENT = 0.75
_SUPERSAMPLE = 4
_GLYPH_HEIGHT = 0.6  # glyph height at scale 1, as a fraction of the image side


def _glyph_rings(font: str, digit: int) -> list[np.ndarray]:
    """The digit's outline as closed polylines, centred on its bounding box, height 1, y up."""
    path = TextPath((0, 0), str(digit), size=1.0, prop=FontProperties(fname=_font_file(font)))
    rings: list[list[np.ndarray]] = []
    steps = np.linspace(0.0, 1.0, 9)[1:]
    for segment, code in path.iter_bezier():
        if code == MplPath.MOVETO:
            rings.append([segment.control_points[0]])
        else:
            rings[-1].extend(segment(steps))
    points = [np.array(ring) for ring in rings if len(ring) > 2]
    everything = np.vstack(points)
    low, high = everything.min(axis=0), everything.max(axis=0)
    return [(ring - (low + high) / 2) / (high[1] - low[1]) for ring in points]


def _font_file(font: str) -> str:
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[font])


@functools.cache
def _filled(font: str, digit: int) -> np.ndarray:
    centres = (np.arange(_BITMAP) + 0.5) / _BITMAP * 2 * _EXTENT - _EXTENT
    px, py = np.meshgrid(centres, -centres)  # y up in glyph space, row 0 on top
    points = np.column_stack([px.ravel(), py.ravel()])
    inside = np.zeros(len(points), dtype=bool)
    # Even-odd rule: a point inside an odd number of rings is ink, so holes stay open.
    for ring in _glyph_rings(font, digit):
        inside ^= MplPath(ring, closed=False).contains_points(points)
    return inside.reshape(_BITMAP, _BITMAP)


@functools.cache
def glyph_bitmap(font: str, digit: int, thickness: int) -> np.ndarray:
    """Boolean bitmap (256, 256) of one digit, row 0 at the top, with its stroke grown
    (``thickness`` > 0) or shrunk (< 0) by that many bitmap pixels; filled with the even-odd rule
    so that the holes of 0, 4, 6, 8 and 9 stay open."""
    inside = _filled(font, digit)
    disk = np.hypot(*np.mgrid[-8:9, -8:9]) <= abs(thickness)
    if thickness > 0:
        return ndimage.binary_dilation(inside, structure=disk)
    if thickness < 0:
        return ndimage.binary_erosion(inside, structure=disk)
    return inside


class StyledDigits(GroundTruthData):
    """Digits 0-9 with known style: factors ``digit`` (the label), ``font`` (4 fonts that ship
    with matplotlib), ``rotation`` (9 angles, -40 to 40 degrees), ``scale`` (5, 0.6 to 1),
    ``thickness`` (4 stroke widths), ``posX`` and ``posY`` (8 offsets each, +-10% of the side).

    Images are grey levels in [0, 1], ``size`` x ``size`` (28 by default, like MNIST; 64 works
    too), anti-aliased by averaging a 4 x 4 supersampled grid. 460,800 images in all.
    """

    factor_names = ("digit", "font", "rotation", "scale", "thickness", "posX", "posY")

    def __init__(self, size: int = 28):
        if size not in (28, 32, 64):
            raise ValueError(f"StyledDigits renders 28, 32 or 64 pixels square; got size={size}.")
        self.size = size
        self.image_shape = (1, size, size)
        self.factor_sizes = (
            10, len(FONTS), len(ROTATIONS_DEG), len(SCALES), len(THICKNESS),
            len(POSITIONS), len(POSITIONS),
        )

    def _images(self, factors: np.ndarray) -> torch.Tensor:
        side = self.size * _SUPERSAMPLE
        centres = (np.arange(side) + 0.5) / _SUPERSAMPLE  # supersampled pixel centres, in pixels
        images = np.empty((len(factors), self.size, self.size), dtype=np.float32)
        fonts = list(FONTS)
        angles = np.round(np.deg2rad(ROTATIONS_DEG), 12)
        cosines, sines = np.round(np.cos(angles), 12), np.round(np.sin(angles), 12)
        for i, (digit, font, rot, scale, thick, pos_x, pos_y) in enumerate(factors):
            bitmap = glyph_bitmap(fonts[font], int(digit), THICKNESS[thick])
            height = _GLYPH_HEIGHT * SCALES[scale] * self.size  # glyph height in pixels
            u = (centres - self.size * (0.5 + POSITIONS[pos_x]))[None, :] / height
            v = (centres - self.size * (0.5 + POSITIONS[pos_y]))[:, None] / height
            # Turning the glyph counter-clockwise on the screen by the angle: sample the
            # bitmap at the pixel centres turned back the other way (v points down).
            c, s = cosines[rot], sines[rot]
            gx = c * u - s * v
            gy = s * u + c * v
            col = np.floor((gx + _EXTENT) / (2 * _EXTENT) * _BITMAP).astype(np.int64)
            row = np.floor((gy + _EXTENT) / (2 * _EXTENT) * _BITMAP).astype(np.int64)
            valid = (col >= 0) & (col < _BITMAP) & (row >= 0) & (row < _BITMAP)
            fine = np.zeros((side, side), dtype=np.float32)
            fine[valid] = bitmap[row[valid], col[valid]]
            blocks = fine.reshape(self.size, _SUPERSAMPLE, self.size, _SUPERSAMPLE)
            images[i] = blocks.mean(axis=(1, 3))
        return torch.from_numpy(images).unsqueeze(1)


def load_digits(
    test_fraction: float = 0.25, seed: int = 0, size: int = 8
) -> dict[str, torch.Tensor]:
    """scikit-learn's 1,797 real handwritten digits (8 x 8, bundled, no download) as float32
    tensors in [0, 1]: ``x_train`` (n, 1, size, size), ``y_train``, ``x_test``, ``y_test``.

    The split is fixed by ``seed`` (a quarter held out by default). ``size`` > 8 upsamples
    bilinearly, for models built for 28 x 28 or 64 x 64 inputs.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction}.")
    if size < 8:
        raise ValueError(f"size must be at least 8 (the digits' own resolution); got {size}.")
    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        images = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False
        ).clamp(0, 1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(labels)))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return {
        "x_train": images[train], "y_train": labels[train],
        "x_test": images[test], "y_test": labels[test],
    }
