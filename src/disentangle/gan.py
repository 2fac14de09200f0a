"""The two-level latent GAN, from data to ``metrics.json``: InfoGAN, TC-GAN (InfoGAN plus a
total-correlation penalty on the inferred codes) and the complex level built on top of them.

A run samples real images from a ground-truth dataset held on the device, alternates the players
through the book's training loop (the discriminator; then the generator with Q; then, for the
density-ratio estimator, the permutation discriminator T on detached codes), and evaluates the
Q-head means of real images with every metric of :mod:`disentangle.metrics`.

The atomic level is the code c ~ U(-1, 1)^K that the generator is given: independent by
construction, and asked by the TC penalty to stay independent once inferred back from images. The
complex level is made concrete in :func:`complex_level`: on data whose position factors depend on
each other (``dsprites-style-tied``), the complex latents are the positions the generator produces,
read off each generated image, and a learned linear map from the atomic codes to them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from disentangle import config, data, metrics, objectives, train
from disentangle.models import Discriminator, Generator, reparameterize

MODELS = ("infogan", "tcgan")
ESTIMATORS = ("mws", "drt")
DATASETS = ("dsprites-style", "dsprites-style-tied", "styled-digits")
#: Default TC weights per estimator (the ranges of the reference settings in methods.md put
#: 1e-3..3e-2 on the minibatch estimate and 1e-5..1e-4 on the density ratio).
TC_WEIGHTS = {"mws": 1e-2, "drt": 1e-4}
#: The latent of the small profiles, whose grid has three factors. On that grid, with the same
#: 2000 steps, 3 codes + 3 noise dimensions gave InfoGAN a FactorVAE score of 0.91 where the
#: reference 5 + 5 gave 0.60 (one seed each, measured on the 2-core CPU).
SMALL_LATENT = {"code_dim": 3, "noise_dim": 3}


@dataclass
class GanConfig:
    """What a GAN run is. Defaults are the reference settings for dSprites (methods.md): 5 noise
    and 5 continuous codes, Adam(0.5, 0.999), lr 1e-3 for G and Q and 2e-3 for D, batch 64;
    ``for_profile`` sizes the run (3 codes and 3 noise dimensions for the three-factor grid of
    the smoke and cpu profiles)."""

    model: str = "tcgan"
    estimator: str = "mws"
    noise_dim: int = 5
    code_dim: int = 5
    categorical: tuple[int, ...] = ()
    info_weight: float = 1.0
    tc_weight: float | None = None
    resolution: int = 64
    steps: int = 3000
    batch_size: int = 64
    lr_g: float = 1e-3
    lr_d: float = 2e-3
    lr_t: float = 1e-4
    aligned: tuple[str, ...] = ()
    labelled: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"Unknown GAN {self.model!r}; valid ones are {', '.join(MODELS)}.")
        if self.estimator not in ESTIMATORS:
            raise ValueError(
                f"Unknown TC estimator {self.estimator!r}; use 'mws' (minibatch weighted "
                "sampling) or 'drt' (density-ratio trick)."
            )
        if self.tc_weight is None:
            self.tc_weight = TC_WEIGHTS[self.estimator] if self.model == "tcgan" else 0.0
        if self.model == "infogan" and self.tc_weight:
            raise ValueError("InfoGAN has no TC penalty; train 'tcgan' to set --tc-weight.")
        if len(self.aligned) > self.code_dim or (self.aligned and self.labelled < 1):
            raise ValueError(
                f"Aligning {len(self.aligned)} codes with factors needs at most code_dim "
                f"({self.code_dim}) of them and some labelled images (labelled={self.labelled})."
            )

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> GanConfig:
        """The profile's size (steps, batch, image size), with any field overridden by name."""
        sized = config.by_profile(
            profile,
            smoke={"steps": 30, "batch_size": 32, "resolution": 32, **SMALL_LATENT},
            cpu={"steps": 2000, "batch_size": 64, "resolution": 32, **SMALL_LATENT},
            gpu={"steps": 20000, "batch_size": 512, "resolution": 64},
        )
        return config.settings(cls, sized, overrides, "GAN settings")


def load_ground_truth(name: str, profile: str) -> data.GroundTruthData:
    """The unlabelled training data of a GAN run, sized for the profile: dSprites-style (the full
    grid in gpu; in smoke and cpu one square at three sizes on a 16 x 16 grid of positions, which
    a GAN learns in minutes on a CPU); ``dsprites-style-tied``, one square whose two
    position factors are tied (posY within two classes of posX, the correlated variant); or the
    styled digits."""
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
    subset = config.by_profile(
        profile,
        smoke={"shape": [0], "scale": [0, 5], "orientation": [0], "posX": range(0, 32, 8),
               "posY": range(0, 32, 8)},
        cpu={"shape": [0], "scale": [0, 2, 5], "orientation": [0], "posX": range(0, 32, 2),
             "posY": range(0, 32, 2)},
        gpu={},
    )
    return data.DSpritesStyle(subset=subset)


def _materialized(source: data.GroundTruthData, device: torch.device) -> None:
    grid = getattr(source, "data", source)
    if isinstance(grid, data.DSpritesStyle):
        grid.materialize(progress=False)
        grid.to(device)


class TwoLevelGAN(torch.nn.Module):
    """The generator, the discriminator with its D and Q heads, and (for the density-ratio
    estimator) the permutation discriminator T, with the code prior and the image size they share.
    """

    def __init__(self, run: GanConfig, channels: int = 1):
        super().__init__()
        self.run = run
        shape = (channels, run.resolution, run.resolution)
        self.latent_dim = run.noise_dim + run.code_dim + sum(run.categorical)
        self.generator = Generator(self.latent_dim, shape)
        self.discriminator = Discriminator(run.code_dim, run.categorical, shape)
        self.tc_critic = (
            objectives.PermutationDiscriminator(run.code_dim)
            if run.model == "tcgan" and run.estimator == "drt" else None
        )

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Real images (N, C, H, W) in [0, 1] at the run's resolution (area-averaged down)."""
        images = images.float()
        size = self.run.resolution
        if images.shape[-1] == size:
            return images
        if images.shape[-1] % size:
            return F.interpolate(images, size=(size, size), mode="area")
        return F.avg_pool2d(images, images.shape[-1] // size)

    def sample_codes(
        self, n: int, device: torch.device, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Noise z ~ N(0, I), continuous codes c ~ U(-1, 1) and categorical classes (or None)."""
        noise = torch.randn(n, self.run.noise_dim, device=device, generator=generator)
        codes = torch.rand(n, self.run.code_dim, device=device, generator=generator) * 2 - 1
        classes = None
        if self.run.categorical:
            classes = torch.stack([
                torch.randint(0, k, (n,), device=device, generator=generator)
                for k in self.run.categorical
            ], dim=1)
        return noise, codes, classes

    def latent(
        self, noise: torch.Tensor, codes: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = [noise, codes]
        if self.run.categorical:
            parts += [F.one_hot(classes[:, k], size).float()
                      for k, size in enumerate(self.run.categorical)]
        return torch.cat(parts, dim=1)

    def generate(self, codes: torch.Tensor, noise: torch.Tensor | None = None,
                 classes: torch.Tensor | None = None) -> torch.Tensor:
        """G(z, c) for given continuous codes (noise zero and the first class unless given)."""
        n = len(codes)
        noise = torch.zeros(n, self.run.noise_dim, device=codes.device) if noise is None else noise
        if self.run.categorical and classes is None:
            classes = torch.zeros(n, len(self.run.categorical), dtype=torch.long,
                                  device=codes.device)
        return self.generator(self.latent(noise, codes, classes))

    @torch.no_grad()
    def encode(self, images: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """Q-head means of the continuous codes for real images: the representation the metrics
        score."""
        self.eval()
        device = next(self.parameters()).device
        parts = [self.discriminator(self.prepare(images[i:i + chunk].to(device)))["mean"].float()
                 for i in range(0, len(images), chunk)]
        return torch.cat(parts).cpu()


@dataclass
class Optimizers:
    """The players' optimizers, and ``state``: the names a checkpoint stores them under."""

    g: torch.optim.Optimizer
    d: torch.optim.Optimizer
    t: torch.optim.Optimizer | None = None
    state: dict = field(default_factory=dict)


def build_optimizers(model: TwoLevelGAN) -> Optimizers:
    """Adam(0.5, 0.999): G and the Q head at ``lr_g``, the D trunk and head at ``lr_d``, T at
    ``lr_t``; learning rates scaled from batch 64 by the square-root rule."""
    run = model.run
    scale = math.sqrt(run.batch_size / 64)
    betas = (0.5, 0.999)
    g = torch.optim.Adam([*model.generator.parameters(), *model.discriminator.head_parameters("q")],
                         lr=run.lr_g * scale, betas=betas)
    d = torch.optim.Adam(model.discriminator.head_parameters("d"), lr=run.lr_d * scale,
                         betas=betas)
    t = (torch.optim.Adam(model.tc_critic.parameters(), lr=run.lr_t * scale, betas=(0.5, 0.9))
         if model.tc_critic is not None else None)
    state = {"g_optimizer": g, "d_optimizer": d, **({"t_optimizer": t} if t else {})}
    return Optimizers(g, d, t, state)


def _unit_targets(factors: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Factor classes mapped linearly onto [-1, 1], the range of the codes they are aligned with."""
    return 2 * factors.float() / (sizes - 1).clamp(min=1) - 1


def gan_step(
    model: TwoLevelGAN,
    optimizers: Optimizers,
    device: torch.device,
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
    aligned_sizes: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    amp: bool | None = None,
) -> train.StepFn:
    """One alternating update per batch of real images, as :func:`train.fit` expects (under bf16
    autocast on CUDA unless ``amp=False``).

    1. D:  min  BCE(D(x), 1) + BCE(D(G(z, c)), 0)  over the trunk and the D head;
    2. G, Q:  min  BCE(D(G(z, c)), 1) + info_weight * E[-log Q(c | G(z, c))] + tc_weight * TC
       (InfoGAN's bound, :func:`objectives.infogan_bound`; the TC of codes sampled from Q by
       :func:`objectives.tc_minibatch_weighted` or :func:`objectives.tc_density_ratio`), plus,
       when codes are aligned with factors, Q's Gaussian NLL of those factors on labelled images;
    3. T (density ratio only): its cross-entropy on detached codes, so it never moves G or Q.

    The minibatch TC estimate is logged for both models, to compare InfoGAN with TC-GAN.
    """
    run = model.run
    bce = F.binary_cross_entropy_with_logits

    def step(batch: train.Batch) -> dict[str, torch.Tensor]:
        model.train()
        real = model.prepare(batch[0])
        noise, codes, classes = model.sample_codes(len(real), device, generator)
        with train.autocast(device, amp):
            fake = model.generator(model.latent(noise, codes, classes))
            # One pass over real and fake together: half the kernel launches of two passes.
            logits = model.discriminator(torch.cat([real, fake.detach()]))["logit"].float()
            d_real, d_fake = logits.split([len(real), len(fake)])
            d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        optimizers.d.zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers.d.step()

        with train.autocast(device, amp):
            out = model.discriminator(fake)
            logit = out["logit"].float()
            mean, log_var = out["mean"].float(), out["log_var"].float()
            adversarial = bce(logit, torch.ones_like(logit))
            info = objectives.infogan_bound(mean, log_var, codes, out["categorical"], classes)
            samples = reparameterize(mean, log_var)
            tc_mws = objectives.tc_minibatch_weighted(samples, mean, log_var)
            if model.tc_critic is not None:
                tc = objectives.tc_density_ratio(model.tc_critic, samples)
            else:
                tc = tc_mws
            total = adversarial + run.info_weight * info["nll"]
            if run.tc_weight:
                total = total + run.tc_weight * tc
            terms = {}
            if labelled is not None:
                index = torch.randint(0, len(labelled[0]), (len(real),), device=device,
                                      generator=generator)
                q = model.discriminator(model.prepare(labelled[0][index]))
                k = len(run.aligned)
                target = _unit_targets(labelled[1][index], aligned_sizes)
                supervised = -objectives.gaussian_log_density(
                    target, q["mean"][:, :k].float(), q["log_var"][:, :k].float()
                ).sum(1).mean()
                total = total + supervised
                terms["supervised_nll"] = supervised
        optimizers.g.zero_grad(set_to_none=True)
        total.backward()
        optimizers.g.step()

        terms.update({
            "total": total, "d_loss": d_loss, "adversarial": adversarial,
            "info_nll": info["nll"], "info_bound": info["bound"], "tc_mws": tc_mws,
            "d_real": torch.sigmoid(d_real).mean(), "d_fake": torch.sigmoid(d_fake).mean(),
        })
        if model.tc_critic is not None:
            t_loss = objectives.permutation_discriminator_loss(model.tc_critic, samples, generator)
            optimizers.t.zero_grad(set_to_none=True)
            t_loss.backward()
            optimizers.t.step()
            terms.update({"tc_drt": tc, "t_loss": t_loss})
        return {name: value.detach().float() for name, value in terms.items()}

    return step


def training_parts(
    run: GanConfig, source: data.GroundTruthData, device: torch.device
) -> tuple[TwoLevelGAN, Optimizers, train.StepFn, Callable[[], train.Batch], dict]:
    """Everything a GAN run trains with, the book's way: the model (its networks compiled on
    CUDA where the compiler works), the optimizers, the step, batches drawn on the device, and the
    random generators a checkpoint must hold. :func:`fit_gan` and the benchmark share it."""
    config.seed_everything(run.seed)
    _materialized(source, device)
    model = TwoLevelGAN(run, source.image_shape[0]).to(device)
    optimizers = build_optimizers(model)
    batches = torch.Generator(device=device).manual_seed(run.seed)
    codes_rng = torch.Generator(device=device).manual_seed(run.seed + 1)

    def next_batch() -> train.Batch:
        return source.batch(run.batch_size, batches, device)

    labelled = aligned_sizes = None
    if run.aligned:
        rng = np.random.default_rng(run.seed + 2)
        factors = source.sample_factors(run.labelled, rng)
        columns = [source.factor_index(name) for name in run.aligned]
        labelled = (source.images(factors).to(device),
                    torch.as_tensor(factors[:, columns], device=device))
        aligned_sizes = torch.as_tensor([source.factor_sizes[k] for k in columns], device=device)
    if device.type == "cuda":
        # The GPU path compiles the two networks where the compiler works (the step itself, with
        # its two or three backward passes, stays eager).
        latent = torch.zeros(min(run.batch_size, 64), model.latent_dim, device=device)
        model.generator = train.compile_or_fallback(model.generator, latent)
        model.discriminator = train.compile_or_fallback(model.discriminator,
                                                        model.generator(latent).detach())
    step = gan_step(model, optimizers, device, labelled, aligned_sizes, codes_rng)
    return model, optimizers, step, next_batch, {"batches": batches, "codes": codes_rng}


def fit_gan(
    run: GanConfig,
    source: data.GroundTruthData,
    device: torch.device,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[TwoLevelGAN, train.History]:
    """Train the run's GAN on images drawn from ``source``; resumes from ``out_dir`` (and
    refuses a folder that holds a run with other settings or data)."""
    if out_dir is not None:
        _claim(Path(out_dir), {"data": repr(source), **asdict(run)})
    model, optimizers, step, next_batch, generators = training_parts(run, source, device)
    history = train.fit(
        step, next_batch, run.steps,
        state={"model": model, **optimizers.state},
        generators=generators,
        out_dir=out_dir,
        checkpoint_every=max(run.steps // 4, 1) if out_dir else None,
        log_every=max(min(100, run.steps // 10), 1),
        progress=progress,
        description=f"{run.model} on {type(source).__name__}",
    )
    return model, history


def evaluation_sizes(profile: str) -> dict:
    """The metric protocol per profile: disentanglement_lib's defaults in gpu, fewer points (and
    so noisier scores, recorded with the result) in cpu and smoke."""
    return config.by_profile(
        profile,
        smoke={"num_train": 400, "num_test": 200, "num_variance_estimate": 400,
               "dci_classifier": "hist"},
        cpu={"num_train": 2000, "num_test": 1000, "num_variance_estimate": 2000},
        gpu={},
    )


def _claim(out: Path, settings: dict) -> None:
    """Record the run's settings in ``out/run.json``, or check them against the record there: a
    folder resumes only the run it holds, and a changed setting must not load old weights. The
    number of steps may grow: a longer run continues a shorter one."""
    record = out / "run.json"
    settings = json.loads(json.dumps(settings))  # tuples as lists, as they come back from JSON
    if record.exists():
        held = json.loads(record.read_text())
        changed = sorted(k for k in set(held) | set(settings)
                         if k != "steps" and held.get(k) != settings.get(k))
        if changed:
            raise ValueError(
                f"{out} holds a run with other settings ({', '.join(changed)} differ); resuming "
                "it would mix two runs. Give another output folder, or delete this one."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=2) + "\n")


def run(
    model_name: str,
    dataset: str = "dsprites-style",
    profile: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> tuple[TwoLevelGAN, train.History, dict]:
    """One complete GAN run: train (resuming from ``out_dir``), then evaluate the last checkpoint
    with :func:`metrics.evaluate` (Q-head means of real images as codes). A folder that holds the
    finished run with these settings is loaded, evaluation included, instead of recomputed.
    Writes ``metrics.json``, ``history.json`` and a traversal figure ``traversal.png`` to
    ``out_dir``; returns the model, its history and the result."""
    import matplotlib.pyplot as plt

    from disentangle import viz

    profile = config.resolve_profile(profile)
    dev = config.get_device(device)
    started = time.perf_counter()
    source = load_ground_truth(dataset, profile)
    if dataset == "styled-digits":
        overrides.setdefault("resolution", 28)
        overrides.setdefault("categorical", (10,))
    gan_config = GanConfig.for_profile(profile, model=model_name, seed=seed, **overrides)
    model, history = fit_gan(gan_config, source, dev, out_dir, progress)
    finished = Path(out_dir) / "metrics.json" if out_dir is not None else None
    if finished is not None and finished.exists() and history.steps[-1:] == [gan_config.steps]:
        # The folder's settings were checked above, so its evaluation belongs to these weights.
        return model, history, json.loads(finished.read_text())
    scores = metrics.evaluate(source, model.encode, seed=seed, **evaluation_sizes(profile))
    result = {
        "model": model_name,
        "data": dataset,
        "profile": profile,
        "seed": seed,
        "config": asdict(gan_config),
        "metrics": scores,
        "train_seconds": history.seconds,
        "wall_seconds": time.perf_counter() - started,
        "environment": config.environment(dev),
    }
    if out_dir is not None:
        out = train.save_run(out_dir, result, history)
        values = torch.linspace(-1, 1, 9)
        grid = viz.traversal_grid(model.generate, torch.zeros(gan_config.code_dim, device=dev),
                                  values=values)
        figure = viz.traversal_figure(grid, values, title=f"{model_name}: code traversals")
        figure.savefig(out / "traversal.png", dpi=100)
        plt.close(figure)
    return model, history, result


# --- The complex level ----------------------------------------------------------------------------


def read_factors(
    source: data.GroundTruthData, images: torch.Tensor, chunk: int = 512
) -> np.ndarray:
    """The factors of each image as those of the nearest image of the grid (squared distance at
    the images' resolution): a model-free reading of what a generator drew. For small grids."""
    grid_factors = source.factors(np.arange(len(source)))
    reference = source.images(grid_factors)
    size = images.shape[-1]
    if reference.shape[-1] != size:
        reference = F.adaptive_avg_pool2d(reference, size)
    reference = reference.flatten(1)
    nearest = []
    for start in range(0, len(images), chunk):
        flat = images[start:start + chunk].float().cpu().flatten(1)
        nearest.append(torch.cdist(flat, reference).argmin(dim=1))
    return grid_factors[torch.cat(nearest).numpy()]


@torch.no_grad()
def complex_level(
    model: TwoLevelGAN,
    source: data.CorrelatedFactors,
    num: int = 2000,
    labelled: int = 256,
    seed: int = 0,
) -> dict:
    """Measure both levels of a GAN trained on data with dependent factors (``source.over``):

    - ``atomic_tc``: Gaussian total correlation of Q's codes on real images (the atomic level
      should stay nearly independent);
    - ``mi_generated``: I between the dependent factors as read (:func:`read_factors`) off
      ``num`` images generated from the independent code prior: the complex latents the
      generator realises; ``mi_true`` is the data's exact value and ``mi_real_plugin`` the same
      plug-in estimate on ``num`` real images (the estimator's own bias);
    - ``readout_r2``: R^2 of a linear map from the atomic codes of real images to the dependent
      factors, fit on ``labelled`` images and scored on the other ``num - labelled``: how well
      the complex level is a function of the atomic one;
    - ``control_r2``: R^2 of the dependent factors read off the generated images, predicted from
      the model's complex latents for the codes it was given: for a model whose codes are aligned
      with those factors (``run.aligned``), the codes themselves on the factors' class scale; for
      any other, the readout above applied to the codes. It says whether the complex latents
      still drive what is generated.
    """
    if not 2 < labelled < num - 2:
        raise ValueError(f"Need 2 < labelled < num - 2 to fit and score the readout; got "
                         f"labelled={labelled}, num={num}.")
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    a, b = source.over
    ka, kb = source.factor_index(a), source.factor_index(b)
    gen = torch.Generator(device=device).manual_seed(seed)
    noise, codes, classes = model.sample_codes(num, device, gen)
    model.eval()
    fake = model.generator(model.latent(noise, codes, classes)).float().cpu()
    drawn = read_factors(source, fake)[:, [ka, kb]].astype(float)
    factors = source.sample_factors(num, rng)
    atomic = model.encode(source.images(factors)).numpy()
    design = np.c_[atomic, np.ones(num)]
    targets = factors[:, [ka, kb]].astype(float)
    weights, *_ = np.linalg.lstsq(design[:labelled], targets[:labelled], rcond=None)
    residual = targets[labelled:] - design[labelled:] @ weights
    r2 = 1 - residual.var(axis=0) / targets[labelled:].var(axis=0)
    given = codes.float().cpu().numpy()
    if set(source.over) <= set(model.run.aligned):
        columns = [model.run.aligned.index(a), model.run.aligned.index(b)]
        sizes = np.array([source.factor_sizes[ka], source.factor_sizes[kb]])
        complex_latents = (given[:, columns] + 1) / 2 * (sizes - 1)
    else:
        complex_latents = np.c_[given, np.ones(num)] @ weights
    control = 1 - ((drawn - complex_latents) ** 2).mean(axis=0) / drawn.var(axis=0)
    return {
        "factors": [a, b],
        "atomic_tc": metrics.gaussian_total_correlation(atomic),
        "mi_true": source.mutual_information(a, b),
        "mi_real_plugin": metrics.plugin_mutual_information(factors[:, ka], factors[:, kb]),
        "mi_generated": metrics.plugin_mutual_information(drawn[:, 0].astype(int),
                                                          drawn[:, 1].astype(int)),
        "readout_r2": {a: float(r2[0]), b: float(r2[1])},
        "control_r2": {a: float(control[0]), b: float(control[1])},
    }
