"""Figures the chapters share."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def image_grid(
    images: torch.Tensor | np.ndarray,
    ncols: int | None = None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    cell_inches: float = 0.6,
    pad: int = 2,
) -> Figure:
    """Draw images (n, C, H, W) or (rows, cols, C, H, W) as one mosaic, a label per row.

    One ``imshow`` for the whole grid keeps large grids (hundreds of images) fast to draw. Grey
    images use the grey colour map with 0 as black; three-channel images are shown as RGB.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    array = np.asarray(images)
    if array.ndim == 4:
        ncols = ncols or int(np.ceil(np.sqrt(len(array))))
        nrows = int(np.ceil(len(array) / ncols))
        filler = np.zeros((nrows * ncols - len(array), *array.shape[1:]), dtype=array.dtype)
        array = np.concatenate([array, filler]).reshape(nrows, ncols, *array.shape[1:])
    if array.ndim != 5 or array.shape[2] not in (1, 3):
        raise ValueError(
            f"Expected images (n, C, H, W) or (rows, cols, C, H, W) with C = 1 or 3; "
            f"got shape {np.shape(images)}."
        )
    nrows, ncols, channels, height, width = array.shape
    canvas = np.ones((nrows * (height + pad) - pad, ncols * (width + pad) - pad, channels))
    for r in range(nrows):
        for c in range(ncols):
            top, left = r * (height + pad), c * (width + pad)
            canvas[top : top + height, left : left + width] = array[r, c].transpose(1, 2, 0)
    fig, ax = plt.subplots(figsize=(ncols * cell_inches + 1.5, nrows * cell_inches + 0.4))
    if channels == 1:
        ax.imshow(canvas[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(canvas.clip(0, 1), interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([r * (height + pad) + height / 2 for r in range(nrows)], list(row_labels))
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
