"""dSprites-style shapes: the exact dSprites factor grid, rendered procedurally; and a loader for
the official dSprites files for readers who have them.

The official renderer is unpublished, so the geometry below was calibrated on the 320 real frames in
``data/reference/dsprites.gif`` (:func:`reference_frames`) until each one closely matches an image
of this grid: :func:`best_matches` finds that image and the intersection-over-union of the two
(chapter 01 shows them; ``tests/test_data.py`` states the bar they must clear).

Geometry, in pixel units of the 64 x 64 image (pixel ``i`` spans ``[i, i + 1]``, y points down):

- position: the sprite's centre is at ``16 + 32 * v`` for ``v = posX`` (columns) and ``v = posY``
  (rows), with ``v`` in 32 steps from 0 to 1;
- scale ``s`` in 6 steps from 0.5 to 1 multiplies every length below;
- square: half-side 9.6; ellipse: semi-axes 12.77 (horizontal at orientation 0) and 7.22;
- heart: two lobes of radius 5.14 centred at (+-4.66, -4.01), joined by their tangents to the tip at
  (0, 8.77), relative to the centre;
- orientation: 40 steps from 0 to 2 pi *inclusive* (classes 0 and 39 are the same angle), turning
  the sprite counter-clockwise on the screen, as in the dataset's own animation;
- a pixel is on when its centre lies inside the sprite.

Rendering uses only float64 additions, multiplications and comparisons, with the few sines,
cosines and tangent points rounded to 12 decimals, so the same factors give the same pixels on
every machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from disentangle import config
from disentangle.data.base import GroundTruthData, PackedImages

FACTOR_NAMES: tuple[str, ...] = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES: tuple[int, ...] = (1, 3, 6, 40, 32, 32)
SHAPES: tuple[str, ...] = ("square", "ellipse", "heart")
#: The values each class stands for, as in the official file's ``latents_values``.
FACTOR_VALUES: dict[str, np.ndarray] = {
    "color": np.array([1.0]),
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "posX": np.linspace(0.0, 1.0, 32),
    "posY": np.linspace(0.0, 1.0, 32),
}

SIZE = 64
#: Calibrated geometry (pixels at scale 1); see the module docstring.
GEOMETRY: dict[str, float] = {
    "centre_offset": 16.0,
    "centre_span": 32.0,
    "square_half_side": 9.6,
    "ellipse_a": 12.77,
    "ellipse_b": 7.22,
    "heart_lobe_radius": 5.14,
    "heart_lobe_x": 4.66,
    "heart_lobe_y": -4.01,
    "heart_tip_y": 8.77,
}
# Bumped whenever a change of geometry changes pixels, so that no stale cache is ever read.
GEOMETRY_VERSION = 1
_WINDOW = 32  # every sprite fits in 32 x 32 pixels around its centre pixel


def _rounded(x: np.ndarray) -> np.ndarray:
    return np.round(x, 12)


_COS = _rounded(np.cos(FACTOR_VALUES["orientation"]))
_SIN = _rounded(np.sin(FACTOR_VALUES["orientation"]))
_CENTRES = GEOMETRY["centre_offset"] + GEOMETRY["centre_span"] * FACTOR_VALUES["posX"]


def _heart_polygon() -> np.ndarray:
    """Vertices of the heart's convex body: left lobe centre, left tangent point, tip, right
    tangent point, right lobe centre. The tangent points are where a line from the tip touches
    each lobe on its outer side."""
    r, d = GEOMETRY["heart_lobe_radius"], GEOMETRY["heart_lobe_x"]
    yc, yt = GEOMETRY["heart_lobe_y"], GEOMETRY["heart_tip_y"]
    tip = np.array([0.0, yt])
    to_centre = np.array([d, yc]) - tip
    dist = np.hypot(*to_centre)
    angle = np.arcsin(r / dist)
    length = np.sqrt(dist**2 - r**2) / dist
    candidates = []
    for sign in (1.0, -1.0):
        c, s = np.cos(sign * angle), np.sin(sign * angle)
        x, y = to_centre
        direction = np.array([c * x - s * y, s * x + c * y])
        candidates.append(tip + length * direction)
    right = max(candidates, key=lambda p: p[0])
    left = np.array([-right[0], right[1]])
    return _rounded(np.array([[-d, yc], left, tip, right, [d, yc]]))


_HEART = _heart_polygon()


def _inside(shape: int, x: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Whether sprite-frame points (x, y), already unrotated, lie inside the shape at ``scale``."""
    g = GEOMETRY
    if shape == 0:
        return np.maximum(np.abs(x), np.abs(y)) <= g["square_half_side"] * scale
    if shape == 1:
        return (x / (g["ellipse_a"] * scale)) ** 2 + (y / (g["ellipse_b"] * scale)) ** 2 <= 1.0
    x, y = x / scale, y / scale
    r2 = g["heart_lobe_radius"] ** 2
    lobes = ((x - g["heart_lobe_x"]) ** 2 + (y - g["heart_lobe_y"]) ** 2 <= r2) | (
        (x + g["heart_lobe_x"]) ** 2 + (y - g["heart_lobe_y"]) ** 2 <= r2
    )
    body = np.ones(x.shape, dtype=bool)
    # The polygon runs counter-clockwise in these y-down coordinates: inside means every edge's
    # cross product is non-positive.
    for a, b in zip(_HEART, np.roll(_HEART, -1, axis=0)):
        body &= (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) <= 0
    return lobes | body


def render(official: np.ndarray) -> np.ndarray:
    """Boolean images (n, 64, 64) for official dSprites class vectors (n, 6).

    Each sprite is drawn in a 32 x 32 window around its centre pixel and pasted into the canvas:
    a pixel is on when its centre, rotated back by the orientation and taken relative to the
    sprite's centre, lies inside the shape.
    """
    official = np.asarray(official, dtype=np.int64)
    n = len(official)
    shape, scale_k, orient, pos_x, pos_y = (official[:, k] for k in range(1, 6))
    scale = FACTOR_VALUES["scale"][scale_k][:, None, None]
    cx, cy = _CENTRES[pos_x], _CENTRES[pos_y]
    ox = np.floor(cx).astype(np.int64) - _WINDOW // 2
    oy = np.floor(cy).astype(np.int64) - _WINDOW // 2
    offsets = np.arange(_WINDOW) + 0.5
    u = (ox[:, None] + offsets - cx[:, None])[:, None, :]
    v = (oy[:, None] + offsets - cy[:, None])[:, :, None]
    c, s = _COS[orient][:, None, None], _SIN[orient][:, None, None]
    x = c * u - s * v
    y = s * u + c * v
    window = np.zeros((n, _WINDOW, _WINDOW), dtype=bool)
    for k in range(len(SHAPES)):
        chosen = shape == k
        if chosen.any():
            window[chosen] = _inside(k, x[chosen], y[chosen], scale[chosen])
    canvas = np.zeros((n, SIZE, SIZE), dtype=bool)
    rows = (oy[:, None] + np.arange(_WINDOW))[:, :, None]
    cols = (ox[:, None] + np.arange(_WINDOW))[:, None, :]
    canvas[np.arange(n)[:, None, None], rows, cols] = window
    return canvas


def _check_subset(subset: Mapping[str, Sequence[int]] | None) -> dict[str, np.ndarray]:
    kept = {name: np.arange(size) for name, size in zip(FACTOR_NAMES, FACTOR_SIZES)}
    for name, classes in (subset or {}).items():
        if name not in kept:
            raise KeyError(
                f"Unknown factor {name!r}; dSprites factors are {', '.join(FACTOR_NAMES)}."
            )
        size = FACTOR_SIZES[FACTOR_NAMES.index(name)]
        values = np.unique(np.asarray(list(classes), dtype=np.int64))
        if values.size == 0:
            raise ValueError(f"The subset of factor {name!r} is empty: keep at least one class.")
        bad = values[(values < 0) | (values >= size)]
        if bad.size:
            raise ValueError(
                f"The subset of factor {name!r} holds class {bad[0]}: "
                f"valid classes are 0..{size - 1}."
            )
        kept[name] = values
    return kept


class DSpritesStyle(GroundTruthData):
    """The dSprites grid (color 1, shape 3, scale 6, orientation 40, posX 32, posY 32: 737,280
    binary 64 x 64 images), rendered procedurally; "dSprites-style", not the official images.

    ``subset`` keeps only some classes of some factors, e.g.
    ``DSpritesStyle(subset={"orientation": range(0, 40, 4), "posX": range(0, 32, 2)})``; factor
    classes are then indices into the kept classes (``official_classes`` maps them back).

    Images are rendered on demand. ``materialize()`` renders the whole grid once into a bit-packed
    store cached on disk; ``to(device)`` moves that store to a GPU, after which ``batch`` draws
    random batches entirely on the device.
    """

    image_shape = (1, SIZE, SIZE)

    def __init__(self, subset: Mapping[str, Sequence[int]] | None = None):
        self.kept = _check_subset(subset)
        self.factor_names = FACTOR_NAMES
        self.factor_sizes = tuple(len(self.kept[name]) for name in FACTOR_NAMES)
        self._store: PackedImages | None = None

    def official_classes(self, factors: np.ndarray | Sequence) -> np.ndarray:
        """The official dSprites class indices of (possibly reduced-grid) factor vectors."""
        factors = self.check_factors(factors)
        return np.stack(
            [self.kept[name][factors[:, k]] for k, name in enumerate(FACTOR_NAMES)], axis=1
        )

    def latent_values(self, factors: np.ndarray | Sequence) -> np.ndarray:
        """The values the factors stand for (scale 0.5..1, orientation in radians, position 0..1),
        as in the official file's ``latents_values``."""
        official = self.official_classes(factors)
        return np.stack(
            [FACTOR_VALUES[name][official[:, k]] for k, name in enumerate(FACTOR_NAMES)], axis=1
        )

    def _images(self, factors: np.ndarray) -> torch.Tensor:
        if self._store is not None:
            index = torch.from_numpy(factors @ self.bases).to(self._store.device)
            return self._store[index].cpu()
        return torch.from_numpy(render(self.official_classes(factors))).float().unsqueeze(1)

    def _cache_path(self, cache_dir: Path) -> Path:
        kept = {name: classes.tolist() for name, classes in self.kept.items()}
        key = json.dumps({"v": GEOMETRY_VERSION, "g": GEOMETRY, "kept": kept}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cache_dir / f"dsprites_style_v{GEOMETRY_VERSION}_{digest}.npy"

    def materialize(
        self, cache_dir: str | Path | None = None, chunk: int = 8192, progress: bool = True
    ) -> PackedImages:
        """Render every image of the grid once, bit-packed (1 bit per pixel), and keep it.

        The packed grid is saved to ``cache_dir`` (default :func:`disentangle.config.cache_dir`)
        and read back on later calls; the file name carries a hash of the geometry and the subset,
        so a changed renderer never reads an old file.
        """
        if self._store is not None:
            return self._store
        path = self._cache_path(Path(cache_dir) if cache_dir else config.cache_dir())
        if path.exists():
            bits = np.load(path)
        else:
            bits = np.empty((len(self), SIZE * SIZE // 8), dtype=np.uint8)
            starts = range(0, len(self), chunk)
            for start in tqdm(starts, desc="rendering dSprites-style", disable=not progress):
                index = np.arange(start, min(start + chunk, len(self)))
                official = self.official_classes(self.factors(index))
                bits[start : start + len(official)] = np.packbits(
                    render(official).reshape(len(official), -1), axis=1
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial.npy")
            np.save(partial, bits)
            partial.replace(path)
        self._store = PackedImages(torch.from_numpy(bits), SIZE, SIZE)
        return self._store

    def to(self, device: str | torch.device) -> DSpritesStyle:
        """Materialise the grid (if needed) and hold it on ``device``; returns ``self``."""
        self._store = self.materialize().to(device)
        return self

    def batch(
        self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random images (n, 1, 64, 64) and their factors (n, 6) on ``device``.

        With the grid held on that device (``to(device)``), everything happens there: no
        rendering, no host transfer. A ``generator`` must live on the same device as the grid.
        """
        store, wanted = self._store, torch.device(device)
        on_device = store is not None and store.device.type == wanted.type and (
            wanted.index is None or store.device.index == wanted.index
        )
        if not on_device:
            return super().batch(n, generator, device)
        index = torch.randint(0, len(self), (n,), device=store.device, generator=generator)
        bases = torch.as_tensor(self.bases, device=store.device)
        sizes = torch.as_tensor(self.factor_sizes, device=store.device)
        return store[index], (index[:, None] // bases) % sizes


class DSprites(GroundTruthData):
    """The official dSprites images, read from the file the dataset's repository distributes.

    ``DSprites.from_file(path)`` reads ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (keys
    ``imgs``, ``latents_classes``, ``latents_values``) or its HDF5 twin (needs ``h5py``). Any
    complete grid stored in that format is accepted: the factor sizes are read from the classes.
    """

    image_shape = (1, SIZE, SIZE)
    DOWNLOAD_HINT = (
        "Download dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz from the dataset's repository, "
        "github.com/deepmind/dsprites-dataset."
    )

    def __init__(self, imgs: np.ndarray, latents_classes: np.ndarray, latents_values: np.ndarray):
        n = len(imgs)
        if imgs.ndim != 3 or imgs.shape[1:] != (SIZE, SIZE):
            raise ValueError(f"Expected 'imgs' of shape (N, 64, 64); got {imgs.shape}.")
        if latents_classes.shape != (n, 6) or latents_values.shape != (n, 6):
            raise ValueError(
                f"Expected 'latents_classes' and 'latents_values' of shape ({n}, 6), one row per "
                f"image; got {latents_classes.shape} and {latents_values.shape}."
            )
        self.factor_names = FACTOR_NAMES
        self.factor_sizes = tuple(int(m) + 1 for m in latents_classes.max(axis=0))
        if n != len(self) or not np.array_equal(latents_classes, self.factors(np.arange(n))):
            raise ValueError(
                f"The file holds {n} images, but its classes span a grid of {len(self)} "
                f"({' x '.join(map(str, self.factor_sizes))}) in C order: the file is truncated or "
                f"reordered. The official file holds 737,280 images. {self.DOWNLOAD_HINT}"
            )
        self.latents_values = latents_values
        self._store = PackedImages.pack(imgs)

    @classmethod
    def from_file(cls, path: str | Path) -> DSprites:
        """Read the official ``.npz`` (or ``.hdf5``/``.h5``) file; errors say what was expected."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No dSprites file at {path}. {cls.DOWNLOAD_HINT}")
        try:
            if path.suffix in (".hdf5", ".h5"):
                return cls(*_read_hdf5(path))
            with np.load(path, allow_pickle=False) as archive:
                missing = {"imgs", "latents_classes", "latents_values"} - set(archive.files)
                if missing:
                    raise ValueError(
                        f"{path.name} lacks the arrays {sorted(missing)}; the official file has "
                        f"'imgs', 'latents_classes', 'latents_values' and 'metadata'."
                    )
                return cls(archive["imgs"], archive["latents_classes"], archive["latents_values"])
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise ValueError(
                f"Could not read {path} as a dSprites file ({err}): it is truncated or not the "
                f"official .npz. {cls.DOWNLOAD_HINT}"
            ) from None

    def _images(self, factors: np.ndarray) -> torch.Tensor:
        return self._store[torch.from_numpy(factors @ self.bases)]


def _read_hdf5(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ImportError(f"Reading {path.name} needs h5py: pip install h5py") from None
    with h5py.File(path, "r") as f:
        try:
            return f["imgs"][()], f["latents"]["classes"][()], f["latents"]["values"][()]
        except KeyError as err:
            raise ValueError(
                f"{path.name} lacks {err}; the official HDF5 file has 'imgs', 'latents/classes' "
                "and 'latents/values'."
            ) from None


REFERENCE_GIF = Path(__file__).resolve().parent / "reference" / "dsprites.gif"


def reference_frames() -> np.ndarray:
    """The 320 real dSprites frames shipped with the library, boolean (320, 64, 64)."""
    from PIL import Image, ImageSequence

    with Image.open(REFERENCE_GIF) as gif:
        frames = [np.asarray(frame.convert("L")) > 127 for frame in ImageSequence.Iterator(gif)]
    return np.stack(frames)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    union = (a | b).sum(axis=(-2, -1))
    return (a & b).sum(axis=(-2, -1)) / np.maximum(union, 1)


def _centroids(images: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    mass = np.maximum(images.sum(axis=(-2, -1)), 1)
    return np.stack(
        [(images * rows).sum(axis=(-2, -1)) / mass, (images * cols).sum(axis=(-2, -1)) / mass], -1
    )


def _crop(image: np.ndarray, centre: np.ndarray, half: int = 20) -> np.ndarray:
    padded = np.pad(image, half)
    r, c = np.round(centre).astype(int)
    return padded[r : r + 2 * half, c : c + 2 * half]


def best_matches(frames: np.ndarray, top: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """For each binary frame (n, 64, 64), an image of the full dSprites-style grid that overlaps it
    best, and the intersection-over-union of the two.

    Search: every (shape, scale, orientation) sprite is compared with the frame after aligning
    their centroids; the ``top`` best are then rendered at the 3 x 3 grid positions around the
    position their centroids imply, and the best of those is returned. The search can miss the
    global best, so the IoU it reports is a lower bound on the best match's.
    Returns official class vectors (n, 6) and IoUs (n,).
    """
    frames = np.asarray(frames).astype(bool)
    combos = np.array(
        [(0, s, c, o) for s in range(3) for c in range(6) for o in range(40)], dtype=np.int64
    )
    middle = np.full((len(combos), 2), 15)
    sprites = render(np.hstack([combos, middle]))
    sprite_centroids = _centroids(sprites)
    crops = np.stack([_crop(im, c) for im, c in zip(sprites, sprite_centroids)])
    # Where a sprite's centroid sits relative to its centre, in pixels (the heart's is off-centre).
    shift = sprite_centroids + 0.5 - _CENTRES[15]
    found, scores = [], []
    for frame, centre in zip(frames, _centroids(frames)):
        ranked = np.argsort(-_iou(crops, _crop(frame, centre)[None]), kind="stable")[:top]
        candidates = []
        for b in ranked:
            ky, kx = np.round((centre + 0.5 - shift[b] - _CENTRES[0]) * 31 / 32).astype(int)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if 0 <= kx + dx < 32 and 0 <= ky + dy < 32:
                        candidates.append((*combos[b], kx + dx, ky + dy))
        candidates = np.array(candidates, dtype=np.int64)
        overlap = _iou(render(candidates), frame[None])
        best = int(np.argmax(overlap))
        found.append(candidates[best])
        scores.append(overlap[best])
    return np.array(found), np.array(scores)
