"""The ground-truth data the two unsupervised families train on and are scored on, the GANs
(:mod:`disentangle.gan`) and the VAEs (:mod:`disentangle.vae`): the images each profile trains them
on, held on the device, at a model's resolution.

The cpu grid has the four kinds of factor of dSprites that an image shows, shape included, at
sizes where a laptop trains each model in minutes; the gpu profile takes the full grid.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from disentangle import config
from disentangle.data.base import GroundTruthData
from disentangle.data.correlated import tie
from disentangle.data.digits import StyledDigits
from disentangle.data.dsprites import DSpritesStyle
from disentangle.data.registry import GROUND_TRUTH, dataset

#: The dSprites-style factor classes each small profile keeps (the gpu profile keeps all): in cpu
#: three shapes x three scales x four orientations (0 to 83 degrees, inside the square's
#: quarter-turn symmetry) x 16 x 16 positions, 9,216 images.
GRIDS = {
    "smoke": {"shape": [0, 2], "scale": [2, 5], "orientation": [0], "posX": range(0, 32, 8),
              "posY": range(0, 32, 8)},
    "cpu": {"shape": [0, 1, 2], "scale": [1, 3, 5], "orientation": [0, 3, 6, 9],
            "posX": range(0, 32, 2), "posY": range(0, 32, 2)},
    "gpu": {},
}


def load_ground_truth(name: str, profile: str) -> GroundTruthData:
    """The unlabelled training data of a run, sized for the profile: dSprites-style (the classes
    of :data:`GRIDS`); ``dsprites-style-tied``, one square whose two position factors are tied
    (posY within two classes of posX, the correlated variant); or the styled digits."""
    dataset(name, GROUND_TRUTH)
    if name == "styled-digits":
        return StyledDigits()
    if name == "dsprites-style-tied":
        grid = DSpritesStyle(subset={
            "shape": [0], "scale": [5], "orientation": [0],
            "posX": range(0, 32, 2), "posY": range(0, 32, 2),
        })
        return tie(grid, "posX", "posY", spread=2)
    return DSpritesStyle(subset=config.by_profile(profile, **GRIDS))


def materialize(source: GroundTruthData, device: torch.device) -> None:
    """Render a dSprites-style grid once and hold its bit-packed images on ``device``, where
    batches are then drawn without a copy."""
    grid = getattr(source, "data", source)
    if isinstance(grid, DSpritesStyle):
        grid.materialize(progress=False)
        grid.to(device)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] as float at ``size`` pixels (area-averaged down)."""
    images = images.float()
    if images.shape[-1] == size:
        return images
    if images.shape[-1] % size:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.avg_pool2d(images, images.shape[-1] // size)
