"""The GAN family's record (:data:`FAMILY`, the one line :mod:`disentangle.registry` lists) and its
entry point :func:`run`. A GAN is scored on the Q-head means of real images with every metric of
:func:`disentangle.metrics.evaluate`; one trained on data whose factors depend on each other also
measures its complex level (:mod:`disentangle.gan.complex_level`)."""

from __future__ import annotations

from pathlib import Path

import torch

from disentangle import config, critics, family, metrics, paper_metrics, runs, train, viz
from disentangle.data.base import GroundTruthData
from disentangle.data.correlated import CorrelatedFactors
from disentangle.data.registry import GROUND_TRUTH
from disentangle.gan.complex_level import complex_level
from disentangle.gan.networks import TwoLevelGAN
from disentangle.gan.settings import GanSettings
from disentangle.gan.training import load, training_parts
from disentangle.nets import reparameterize

#: The complex level's sizes per profile (:func:`complex_level`).
COMPLEX_LEVEL = {"smoke": {"num": 400, "labelled": 100}, "cpu": {"num": 2000, "labelled": 256},
                 "gpu": {"num": 4000, "labelled": 256}}


def evaluate(model: TwoLevelGAN, source: GroundTruthData, run: GanSettings, profile: str) -> dict:
    """Every metric of :func:`disentangle.metrics.evaluate` on the Q-head means of real images,
    with ``complex_level`` added on data whose factors depend on each other, and for the
    density-ratio TC-GAN ``critic``, T's diagnostics (:func:`disentangle.critics.diagnose`) on
    Q's samples of the codes of freshly generated images, the codes T was trained on."""
    scores = metrics.evaluate(source, model.encode, seed=run.seed, **metrics.protocol(profile))
    scores.update(paper_metrics.run_scores(source, model.encode, run.seed, profile))
    if model.tc_critic is not None:
        scores["critic"] = critics.diagnose_held_out(
            lambda n, generator: _code_samples(model, n, generator), model.tc_critic,
            seed=run.seed, batch_size=run.batch_size)
    if isinstance(source, CorrelatedFactors):
        scores["complex_level"] = complex_level(model, source, seed=run.seed,
                                                **config.by_profile(profile, **COMPLEX_LEVEL))
    return scores


@torch.no_grad()
def _code_samples(model: TwoLevelGAN, n: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    device = next(model.parameters()).device
    model.eval()
    noise, codes, classes = model.sample_codes(n, device, generator)
    out = model.discriminator(model.generator(model.latent(noise, codes, classes)))
    mean, log_var = out["mean"].float(), out["log_var"].float()
    return reparameterize(mean, log_var), mean, log_var


def metric_names(model: str) -> tuple[str, ...]:
    """The names a GAN reports: every score of :func:`disentangle.metrics.evaluate`, the same run
    scored in the paper's protocol, the complex level (on data with dependent factors only) and
    the density-ratio critic's diagnostics (``critic``, TC-GAN with ``estimator="drt"`` only)."""
    if model not in GanSettings.MODELS:
        raise ValueError(f"Unknown GAN {model!r}; valid ones are {', '.join(GanSettings.MODELS)}.")
    return metrics.SCORES + paper_metrics.RUN_SCORES + ("complex_level", "critic")


def figure(model: TwoLevelGAN, run: GanSettings, out: Path) -> None:
    viz.save_traversal(model.generate, run.code_dim, 1.0, out / "traversal.png",
                       f"{run.model}: code traversals", next(model.parameters()).device)


FAMILY = family.Family(
    name="gan",
    settings=GanSettings,
    load=load,
    build=training_parts,
    evaluate=evaluate,
    metrics=metric_names,
    sources=("data", "nets.py", "losses.py", "train.py", "settings.py", "family.py",
             "gan/settings.py", "gan/networks.py", "gan/objectives.py", "gan/training.py"),
    evaluation_sources=("metrics.py", "paper_metrics.py", "estimators.py", "critics.py",
                        "gan/complex_level.py", "gan/family.py"),
    figure=figure,
    data=GROUND_TRUTH,
    flags=lambda scores, history: critics.flags(scores),
)


def run(
    model_name: str,
    dataset: str = "dsprites-style",
    profile: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    load_stale: bool = False,
    **overrides,
) -> tuple[TwoLevelGAN, train.History, dict]:
    """One complete GAN run in its folder of the run store (default
    :func:`disentangle.runs.default_dir`), through :func:`disentangle.family.run`: train or
    resume, then score the last checkpoint (a finished run's current result is read back).
    Writes ``metrics.json``, ``history.json`` and ``traversal.png``; returns the model, its
    history and the result."""
    profile = config.resolve_profile(profile)
    settings = GanSettings.for_profile(profile, model=model_name, data=dataset, seed=seed,
                                       **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    trained, result = family.run(FAMILY, settings, profile, out, config.get_device(device),
                                 progress=progress, load_stale=load_stale)
    return trained.model, trained.history, result
