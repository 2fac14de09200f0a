"""Runs on ground-truth data, shared by the two unsupervised families, the GANs
(:mod:`disentangle.gan`) and the VAEs (:mod:`disentangle.vae`): the images each profile trains
them on, the metric protocol per profile, and a finished run's evaluation and record.

The cpu grid has the four kinds of factor of dSprites that an image shows, shape included, at
sizes where a laptop trains each model in minutes; the gpu profile takes the full grid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from disentangle import config, data, metrics, runs, train
from disentangle.settings import GanSettings, Settings

DATASETS = GanSettings.CHOICES["data"]
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


def load(name: str, profile: str) -> data.GroundTruthData:
    """The unlabelled training data of a run, sized for the profile: dSprites-style (the classes
    of :data:`GRIDS`); ``dsprites-style-tied``, one square whose two position factors are tied
    (posY within two classes of posX, the correlated variant); or the styled digits."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; valid names are {', '.join(DATASETS)}.")
    if name == "styled-digits":
        return data.StyledDigits()
    if name == "dsprites-style-tied":
        grid = data.DSpritesStyle(subset={
            "shape": [0], "scale": [5], "orientation": [0],
            "posX": range(0, 32, 2), "posY": range(0, 32, 2),
        })
        return data.tie(grid, "posX", "posY", spread=2)
    return data.DSpritesStyle(subset=config.by_profile(profile, **GRIDS))


def check_source(settings: Settings, source: data.GroundTruthData, profile: str) -> None:
    """Refuse to train a run folder's settings on other images than the ones they name."""
    expected = load(settings.data, profile)
    if repr(source) != repr(expected):
        raise ValueError(
            f"The settings name {settings.data} ({expected!r}) but the images come from "
            f"{source!r}; pass data= to the settings, or load the profile's data with "
            "ground_truth.load."
        )


def materialize(source: data.GroundTruthData, device: torch.device) -> None:
    """Render a dSprites-style grid once and hold its bit-packed images on ``device``, where
    batches are then drawn without a copy."""
    grid = getattr(source, "data", source)
    if isinstance(grid, data.DSpritesStyle):
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


def evaluation_sizes(profile: str) -> dict:
    """The metric protocol per profile: disentanglement_lib's defaults in gpu, fewer points (and
    so noisier scores, recorded with the result) in cpu, and in smoke (and a dry run) just enough
    to exercise every metric."""
    return config.by_profile(
        profile,
        smoke={"num_train": 200, "num_test": 100, "batch_size": 16, "num_variance_estimate": 200,
               "dci_classifier": "hist"},
        cpu={"num_train": 2000, "num_test": 1000, "batch_size": 32, "num_variance_estimate": 2000},
        gpu={},
    )


def finish(
    out: Path,
    settings: Settings,
    profile: str,
    source: data.GroundTruthData,
    encode: Callable[[torch.Tensor], torch.Tensor],
    generate: Callable[[torch.Tensor], torch.Tensor],
    code_dim: int,
    span: float,
    history: train.History,
    started: float,
    device: torch.device,
) -> dict:
    """Evaluate a trained run with :func:`metrics.evaluate` on ``encode``'s codes and write its
    ``metrics.json``, ``history.json`` and a traversal figure of ``generate`` (each of the
    ``code_dim`` codes from -``span`` to ``span``, the others at zero). A finished run's recorded
    evaluation is reused when the code that made it is unchanged. Returns the result."""
    import matplotlib.pyplot as plt

    from disentangle import viz

    evaluated = runs.evaluation_fingerprint(runs.family_of(settings))
    finished = out / "metrics.json"
    if finished.exists() and history.resumed_from == settings.steps:
        recorded = json.loads(finished.read_text())
        # The folder's settings and training code were checked when it was opened; the
        # evaluation must also be by today's code to be reused.
        if recorded.get("evaluation_fingerprint") == evaluated:
            return recorded
    scores = metrics.evaluate(source, encode, seed=settings.seed, **evaluation_sizes(profile))
    result = {
        "model": settings.model,
        "data": settings.data,
        "profile": profile,
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "fingerprint": runs.read_record(out)["fingerprint"],
        "evaluation_fingerprint": evaluated,
        "run_dir": str(out),
        "metrics": scores,
        "train_seconds": history.seconds,
        "wall_seconds": time.perf_counter() - started,
        "environment": config.environment(device),
    }
    train.save_run(out, result, history)
    values = torch.linspace(-span, span, 9)
    grid = viz.traversal_grid(generate, torch.zeros(code_dim, device=device), values=values)
    figure = viz.traversal_figure(grid, values, title=f"{settings.model}: code traversals")
    figure.savefig(out / "traversal.png", dpi=100)
    plt.close(figure)
    return result
