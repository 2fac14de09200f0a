"""The evaluation of a trained run of the unsupervised families (the GANs and the VAEs) on
ground-truth data: the metric protocol per profile, and what a finished run writes to its folder
(``metrics.json``, ``history.json`` and a traversal figure); a GAN trained on data with
dependent factors also measures its complex level (:mod:`disentangle.complex_level`). The run
store recomputes a recorded
evaluation when this module or :mod:`disentangle.metrics` changes, and retrains nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from disentangle import complex_level, config, data, metrics, runs, train
from disentangle.settings import GanSettings, Settings


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
    if isinstance(settings, GanSettings) and isinstance(source, data.CorrelatedFactors):
        scores["complex_level"] = complex_level.measure(
            source, encode, generate, settings, device, seed=settings.seed,
            **config.by_profile(profile, smoke={"num": 400, "labelled": 100},
                                cpu={"num": 2000, "labelled": 256},
                                gpu={"num": 4000, "labelled": 256}))
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
