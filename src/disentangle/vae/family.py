"""The VAE family's record (:data:`FAMILY`, the one line :mod:`disentangle.registry` lists) and its
entry point :func:`run`. A VAE is scored on the encoder's posterior means of real images with
every metric of :func:`disentangle.metrics.evaluate` (disentanglement_lib's convention)."""

from __future__ import annotations

from pathlib import Path

import torch

from disentangle import config, critics, family, metrics, paper_metrics, runs, train, viz
from disentangle.data.base import GroundTruthData
from disentangle.data.ground_truth import resize
from disentangle.data.registry import GROUND_TRUTH
from disentangle.vae.networks import VAE
from disentangle.vae.settings import VaeSettings
from disentangle.vae.training import load, training_parts


def evaluate(model: VAE, source: GroundTruthData, run: VaeSettings, profile: str) -> dict:
    """Every metric of :func:`disentangle.metrics.evaluate` on the posterior means of real images
    at the run's resolution; for FactorVAE also ``critic``, its discriminator's diagnostics
    (:func:`disentangle.critics.diagnose`) on posterior samples of held-out images, the codes it
    was trained on."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def encode(images: torch.Tensor) -> torch.Tensor:
        model.eval()
        x = resize(images.to(device), run.resolution)
        return torch.cat([model.encode(x[i:i + 1024]) for i in range(0, len(x), 1024)]).cpu()

    scores = metrics.evaluate(source, encode, seed=run.seed, **metrics.protocol(profile))
    scores.update(paper_metrics.run_scores(source, encode, run.seed, profile))
    if model.critic is not None:
        scores["critic"] = critics.diagnose_held_out(
            lambda n, generator: _posterior_samples(model, source, run, n, generator),
            model.critic, seed=run.seed, batch_size=run.batch_size)
    return scores


@torch.no_grad()
def _posterior_samples(model: VAE, source: GroundTruthData, run: VaeSettings, n: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    device = next(model.parameters()).device
    images = resize(source.batch(n, generator, device)[0], run.resolution)
    model.eval()
    out = model(images)
    return out["sample"], out["mean"], out["log_var"]


def metric_names(model: str) -> tuple[str, ...]:
    """The names a VAE reports: every score of :func:`disentangle.metrics.evaluate`, the same
    run scored in the two-level GAN paper's protocol, and FactorVAE's ``critic`` diagnostics."""
    if model not in VaeSettings.MODELS:
        raise ValueError(f"Unknown VAE {model!r}; valid ones are {', '.join(VaeSettings.MODELS)}.")
    critic = ("critic",) if model == "factorvae" else ()
    return metrics.SCORES + paper_metrics.RUN_SCORES + critic


def figure(model: VAE, run: VaeSettings, out: Path) -> None:
    viz.save_traversal(model.decode, run.latent_dim, 2.0, out / "traversal.png",
                       f"{run.model}: code traversals", next(model.parameters()).device)


def _fixed_term(history: train.History) -> str:
    """The logged term whose rise means a run diverged: the total, unless the objective itself
    changes during training. AnnealedVAE's (it logs its ``capacity``) adds gamma |KL - C| as C
    rises, so its total may rise while the model learns; its reconstruction may not."""
    return "reconstruction" if "capacity" in history.terms else "total"


FAMILY = family.Family(
    name="vae",
    settings=VaeSettings,
    load=load,
    build=training_parts,
    evaluate=evaluate,
    metrics=metric_names,
    sources=("data", "nets.py", "losses.py", "train.py", "settings.py", "family.py",
             "vae/settings.py", "vae/networks.py", "vae/objectives.py", "vae/training.py"),
    evaluation_sources=("metrics.py", "paper_metrics.py", "estimators.py", "critics.py",
                        "vae/family.py"),
    figure=figure,
    data=GROUND_TRUTH,
    flags=lambda scores, history: (
        (["diverged"] if family.loss_rose(history, _fixed_term(history)) else [])
        + critics.flags(scores)),
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
) -> tuple[VAE, train.History, dict]:
    """One complete VAE run in its folder of the run store (default
    :func:`disentangle.runs.default_dir`), through :func:`disentangle.family.run`. Writes
    ``metrics.json``, ``history.json`` and ``traversal.png``; returns the model, its history and
    the result."""
    profile = config.resolve_profile(profile)
    settings = VaeSettings.for_profile(profile, model=model_name, data=dataset, seed=seed,
                                       **overrides)
    out = Path(out_dir) if out_dir is not None else runs.default_dir(settings, profile)
    trained, result = family.run(FAMILY, settings, profile, out, config.get_device(device),
                                 progress=progress, load_stale=load_stale)
    return trained.model, trained.history, result
