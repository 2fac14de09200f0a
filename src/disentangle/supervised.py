"""Supervised disentanglement runs, from data to ``metrics.json``: the experiments of the DisTIB
chapters and of ``python -m disentangle train distib|vib``.

A run loads labelled data (with its nuisance factors where the data has them) onto the device,
trains DisTIB or VIB with the book's training loop, and evaluates what the codes hold: the accuracy
from A, linear and small-network probes for the label and for every nuisance factor from each
code, information estimates, and FGSM robustness.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from disentangle import config, data, estimators, objectives, robustness, train
from disentangle.models import VIB, DisTIB

DATASETS = (
    "dsprites-style",
    "dsprites-style-upright",
    "styled-digits",
    "digits",
    "mnist",
    "fashion-mnist",
)
MODELS = ("distib", "vib")
PROBE_READERS = ("linear", "mlp")
NATURAL_LABEL = {
    "dsprites-style": "shape",
    "dsprites-style-upright": "shape",
    "styled-digits": "digit",
}


@dataclass
class Rows:
    """Rows ``index`` of an indexable source (a tensor, or packed images on the device)."""

    source: object
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)

    @property
    def device(self) -> torch.device:
        return self.index.device

    def __getitem__(self, i: torch.Tensor) -> torch.Tensor:
        return self.source[self.index[i]]


@dataclass
class LabelledData:
    """Train and test images (on the device), labels, and the nuisance factors of the test images
    (name -> int array) when the data has them."""

    name: str
    label: str
    image_shape: tuple[int, int, int]
    num_classes: int
    x_train: torch.Tensor | Rows
    y_train: torch.Tensor
    x_test: torch.Tensor | Rows
    y_test: torch.Tensor
    nuisance_test: dict[str, np.ndarray] = field(default_factory=dict)
    nuisance_sizes: dict[str, int] = field(default_factory=dict)

    def test_images(self, start: int, stop: int) -> torch.Tensor:
        return self.x_test[
            torch.arange(start, min(stop, len(self.y_test)), device=self.y_test.device)
        ]


SIZES = {  # (train images, test images) per profile
    "smoke": (2_000, 500),
    "cpu": (40_000, 4_000),
    "gpu": (None, 20_000),  # None: every image of the grid that is not held out
}


def load_labelled(
    name: str, label: str | None, profile: str, seed: int, device: torch.device
) -> LabelledData:
    """The labelled data set ``name`` for the profile: dSprites-style (label shape by default;
    reduced grid in the smoke and cpu profiles, the full grid resident on the device in the gpu
    profile), ``dsprites-style-upright`` (the same sprites at orientation 0 only, every position
    in the cpu and gpu profiles, at most 4,000 of its 18,432 images held out for testing),
    styled digits (label digit), scikit-learn's digits, MNIST or Fashion-MNIST files."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; valid names are {', '.join(DATASETS)}.")
    n_train, n_test = SIZES[config.resolve_profile(profile)]
    rng = np.random.default_rng(seed)
    if name in ("digits", "mnist", "fashion-mnist"):
        if label not in (None, "label", "digit"):
            raise ValueError(f"{name} has one label and no other factors; got label={label!r}.")
        arrays = (
            data.load_digits(seed=seed)
            if name == "digits"
            else data.load_mnist(name.replace("-", "_"), root=config.data_dir())
        )
        if n_train is not None and name != "digits":
            keep = torch.from_numpy(rng.permutation(len(arrays["y_train"]))[:n_train])
            arrays["x_train"], arrays["y_train"] = arrays["x_train"][keep], arrays["y_train"][keep]
        on = {k: v.to(device) for k, v in arrays.items()}
        return LabelledData(
            name,
            "label",
            tuple(on["x_train"].shape[1:]),
            int(on["y_train"].max()) + 1,
            on["x_train"],
            on["y_train"],
            on["x_test"],
            on["y_test"],
        )

    label = label or NATURAL_LABEL[name]
    if name == "dsprites-style":
        subset = config.by_profile(
            profile,
            smoke={
                "orientation": range(0, 40, 8),
                "posX": range(0, 32, 4),
                "posY": range(0, 32, 4),
            },
            cpu={"orientation": range(0, 40, 2), "posX": range(0, 32, 2), "posY": range(0, 32, 2)},
            gpu={},
        )
        grid = data.DSpritesStyle(subset=subset)
    elif name == "dsprites-style-upright":
        # Every sprite at orientation 0: what an image shows of its rotation depends on its shape
        # (a square repeats every 90 degrees, an ellipse every 180), so a style code that holds
        # the rotation holds some of the shape. 18,432 images in all.
        smoke = {"posX": range(0, 32, 4), "posY": range(0, 32, 4)}
        grid = data.DSpritesStyle(
            subset={"orientation": [0], **config.by_profile(profile, smoke=smoke, cpu={}, gpu={})}
        )
        n_test = min(n_test, 4_000)  # the gpu profile's 20,000 would be more than the grid
    else:
        grid = data.StyledDigits()
    k = grid.factor_index(label)
    if grid.factor_sizes[k] < 2:
        raise ValueError(f"Factor {label!r} has a single class and cannot be a label.")
    if isinstance(grid, data.DSpritesStyle):
        store = grid.materialize(progress=False).to(device)
        order = torch.from_numpy(rng.permutation(len(grid))).to(device)
        test_index, rest = order[:n_test], order[n_test:]
        train_index = rest if n_train is None else rest[:n_train]
        factors = torch.from_numpy(grid.factors(np.arange(len(grid)))).to(device)
        x_train, x_test = Rows(store, train_index), Rows(store, test_index)
        y_train, y_test = factors[train_index, k], factors[test_index, k]
        test_factors = factors[test_index].cpu().numpy()
    else:
        train_factors = grid.sample_factors(n_train or 200_000, rng)
        test_factors = grid.sample_factors(n_test, rng)
        x_train, x_test = (
            grid.images(train_factors).to(device),
            grid.images(test_factors).to(device),
        )
        y_train = torch.from_numpy(train_factors[:, k]).to(device)
        y_test = torch.from_numpy(test_factors[:, k]).to(device)
    nuisance = {
        n: test_factors[:, j]
        for j, n in enumerate(grid.factor_names)
        if j != k and grid.factor_sizes[j] > 1
    }
    return LabelledData(
        name,
        label,
        grid.image_shape,
        grid.factor_sizes[k],
        x_train,
        y_train,
        x_test,
        y_test,
        nuisance,
        {n: grid.factor_sizes[grid.factor_index(n)] for n in nuisance},
    )


@dataclass
class RunConfig:
    """What a run is: the model, its objective weights, its networks and how long it trains. The
    defaults are the book's choices (the papers leave them open); ``for_profile`` sizes a run.
    The reconstruction weight 0.005 was chosen from three seeds each of 0.01, 0.005 and 0.003
    (``data/results/distib_reconstruction_weight_cpu_sweep.json``). ``activation`` is that of
    every layer; ``"leaky_relu"`` (the paper's) cannot fall silent for every image, as ReLU
    convolutions did in a run on upright sprites (``distib_dsprites_upright_cpu_runs.json``)."""

    model: str = "distib"
    beta: float = 1e-3
    reconstruction_weight: float = 0.005
    dim_a: int = 8
    dim_z: int = 8
    encoder: str = "conv"
    decoder: str = "mlp"
    width: int = 16
    hidden: int = 256
    activation: str = "relu"
    likelihood: str = "bernoulli"
    decoder_trains_a: bool = True
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> RunConfig:
        """The profile's size (steps, batch, networks), with any field overridden by name."""
        sized = config.by_profile(
            profile,
            smoke={"steps": 150, "batch_size": 64, "encoder": "mlp", "hidden": 128},
            cpu={"steps": 2000, "batch_size": 128},
            gpu={"steps": 6000, "batch_size": 1024, "width": 32, "hidden": 512, "decoder": "conv"},
        )
        return config.settings(cls, sized, overrides, "run settings")


def build_model(run: RunConfig, labelled: LabelledData) -> DisTIB | VIB:
    """DisTIB or VIB sized for the data (MLPs for images too small to convolve)."""
    if run.model not in MODELS:
        raise ValueError(f"Unknown model {run.model!r}; valid models are {', '.join(MODELS)}.")
    convolvable = labelled.image_shape[1] in (28, 32, 64)
    encoder = run.encoder if convolvable else "mlp"
    networks = dict(encoder=encoder, hidden=run.hidden, width=run.width, activation=run.activation)
    if run.model == "distib":
        return DisTIB(
            labelled.image_shape,
            labelled.num_classes,
            dim_a=run.dim_a,
            dim_z=run.dim_z,
            decoder=run.decoder if convolvable else "mlp",
            likelihood=run.likelihood,
            decoder_trains_a=run.decoder_trains_a,
            **networks,
        )
    return VIB(labelled.image_shape, labelled.num_classes, dim_z=run.dim_a, **networks)


def loss_for(run: RunConfig, model: DisTIB | VIB):
    """The loss function ``(model, batch) -> terms`` of the run's model."""
    if run.model == "distib":
        return lambda m, batch: objectives.distib_loss(
            m(batch[0]), batch[0], batch[1], run.beta, model.likelihood, run.reconstruction_weight
        )
    return lambda m, batch: objectives.vib_loss(m(batch[0]), batch[1], run.beta)


def training_parts(
    run: RunConfig, labelled: LabelledData, device: str | torch.device
) -> tuple[DisTIB | VIB, torch.optim.Optimizer, train.StepFn, train.TensorBatches]:
    """Everything a supervised run trains with, the book's way: the model, its optimizer, the
    step (on a model compiled on CUDA where the compiler works) and batches drawn on the device.
    :func:`fit_model` and the benchmark share it."""
    device = config.get_device(device)
    config.seed_everything(run.seed)
    model = build_model(run, labelled).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=train.scaled_lr(run.lr, run.batch_size, 128)
    )
    batches = train.TensorBatches(
        labelled.x_train, labelled.y_train, batch_size=run.batch_size, seed=run.seed
    )
    network = model
    if device.type == "cuda":
        # The GPU path compiles the model where the compiler works and trains eagerly where not.
        example = labelled.x_train[torch.arange(min(run.batch_size, 64), device=device)]
        network = train.compile_or_fallback(model, example)
    step = train.gradient_step(network, loss_for(run, model), optimizer, device)
    return model, optimizer, step, batches


def fit_model(
    run: RunConfig,
    labelled: LabelledData,
    device: str | torch.device,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[DisTIB | VIB, train.History]:
    """Train the run's model on ``labelled`` with the book's loop; resumes from ``out_dir``."""
    model, optimizer, step, batches = training_parts(run, labelled, device)
    history = train.fit(
        step,
        batches,
        run.steps,
        state={"model": model, "optimizer": optimizer},
        generators={"batches": batches.generator},
        out_dir=out_dir,
        checkpoint_every=max(run.steps // 4, 1) if out_dir else None,
        log_every=max(min(50, run.steps // 10), 1),
        progress=progress,
        description=f"{run.model} on {labelled.name}",
    )
    return model, history


@torch.no_grad()
def encode_test(model: DisTIB | VIB, labelled: LabelledData, chunk: int = 2048) -> dict:
    """Posterior means and log-variances of the test set, and the logits from the label code's
    mean, as numpy arrays. VIB's one code plays the role of A: it is the code the label is read
    from, so its arrays are named ``mean_a`` and ``log_var_a`` here."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(labelled.y_test), chunk):
        out = model.posteriors(labelled.test_images(start, start + chunk))
        if isinstance(model, VIB):
            out = {"mean_a": out["mean_z"], "log_var_a": out["log_var_z"]}
        out["logits"] = model.classifier(out["mean_a"])
        for key, value in out.items():
            parts.setdefault(key, []).append(value.float().cpu().numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def probe(codes: np.ndarray, target: np.ndarray, seed: int = 0, reader: str = "linear") -> float:
    """Test accuracy of a probe that predicts ``target`` from ``codes`` (standardised), trained on
    the first half of the rows and tested on the second.

    ``reader="linear"`` is a logistic regression: it sees what lies along a direction of the code.
    ``reader="mlp"`` is a perceptron with two hidden layers of 64 ReLU units, which also reads
    what the code holds in a curved form. It takes 150 Adam steps of rate 0.02 on the whole
    training half at once: on the book's codes that reads as much as 500 passes in minibatches of
    200, in a fifth of the time (``data/results/distib_probe_readers_cpu.json``).
    A linear probe near chance says only that no direction carries the target; the network can
    still read it, and in the book's runs often does.
    """
    if reader not in PROBE_READERS:
        raise ValueError(
            f"Unknown probe reader {reader!r}; valid readers are {', '.join(PROBE_READERS)}."
        )
    half = len(codes) // 2
    scaler = StandardScaler().fit(codes[:half])
    if reader == "linear":
        model = LogisticRegression(max_iter=2000, random_state=seed)
    else:
        model = MLPClassifier(
            (64, 64), batch_size=half, learning_rate_init=0.02, max_iter=150, random_state=seed
        )
    with warnings.catch_warnings():
        # A network stopped before it converges still reads a lower bound of what the code
        # holds, which is what a probe is for.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(codes[:half]), target[:half])
    return float(model.score(scaler.transform(codes[half:]), target[half:]))


def centre_x(images: torch.Tensor) -> torch.Tensor:
    """The horizontal centre of mass of each image (n, C, H, W), in pixels from the left."""
    columns = torch.arange(images.shape[-1], dtype=images.dtype, device=images.device)
    mass = images.sum(dim=(-1, -2, -3)).clamp_min(1e-6)
    return (images.sum(dim=(-2, -3)) * columns).sum(-1) / mass


@torch.no_grad()
def swap_scores(
    model: DisTIB,
    labelled: LabelledData,
    n_pairs: int = 64,
    judge: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """What DisTIB's swaps follow, on every pair of the first ``2 * n_pairs`` test images: the A of
    image i (i < n_pairs) decoded with the Z of image n_pairs + j, each swap classified by
    ``judge`` (images to logits), by default the model's own classifier.

    The model's classifier reads A's encoder, so a decoder trained against it could draw marks
    that only it reads; an independent judge, such as a VIB trained on the real images, shares
    none of its parameters. Any judge reads decoded images (blurrier than real ones) less well
    than real ones: ``reconstructed`` says how much less.

    - ``label_follows_a``: swaps classified as the label of their A image, over all pairs;
    - ``follows_a`` and ``follows_z``: on the pairs whose two images have different labels, swaps
      classified as the label of the A image and of the Z image (a split that works has the first
      well above the second; a Z that carries the label drawn reverses them);
    - ``reconstructed``: unswapped decoded images classified as their label, the ceiling of the
      first three (a decoded image is blurrier than a real one);
    - ``centre_x_follows_z`` and ``centre_x_follows_a``: correlations of each swap's horizontal
      centre of mass with that of its Z and its A image (the style should follow Z).
    """
    if 2 * n_pairs > len(labelled.y_test):
        raise ValueError(
            f"swap_scores needs 2 * n_pairs = {2 * n_pairs} test images; the data has "
            f"{len(labelled.y_test)}. Pass a smaller n_pairs."
        )
    model.eval()
    x_a, x_z = labelled.test_images(0, n_pairs), labelled.test_images(n_pairs, 2 * n_pairs)
    y_a = labelled.y_test[:n_pairs, None].expand(n_pairs, n_pairs)
    y_z = labelled.y_test[n_pairs : 2 * n_pairs][None, :].expand(n_pairs, n_pairs)
    swapped = model.swap(x_a, x_z).flatten(0, 1)
    classify = model.classify if judge is None else judge
    predicted = classify(swapped).argmax(1).reshape(n_pairs, n_pairs)
    unswapped = classify(model.decode(*model.encode(x_a))).argmax(1)
    differ = y_a != y_z
    centre = centre_x(swapped.float()).cpu().numpy()
    from_a = centre_x(x_a.float())[:, None].expand(n_pairs, n_pairs).flatten().cpu().numpy()
    from_z = centre_x(x_z.float())[None, :].expand(n_pairs, n_pairs).flatten().cpu().numpy()

    def correlation(u: np.ndarray, v: np.ndarray) -> float:
        # A swap that ignores one source has a constant centre along it: no correlation, not NaN.
        return float(np.corrcoef(u, v)[0, 1]) if u.std() > 0 and v.std() > 0 else 0.0

    return {
        "label_follows_a": float((predicted == y_a).float().mean()),
        "follows_a": float((predicted == y_a)[differ].float().mean()),
        "follows_z": float((predicted == y_z)[differ].float().mean()),
        "reconstructed": float((unswapped == labelled.y_test[:n_pairs]).float().mean()),
        "centre_x_follows_z": correlation(centre, from_z),
        "centre_x_follows_a": correlation(centre, from_a),
    }


def evaluate_model(
    model: DisTIB | VIB, labelled: LabelledData, seed: int = 0, fgsm_points: int = 2000
) -> dict:
    """What the codes hold, for ``metrics.json``: accuracy from A (VIB's one code counts as A),
    probes for the label and every nuisance factor from each code, information estimates in nats
    (I(X;A) and I(X;Z) by Monte Carlo over the test posteriors, I(A;Y) from the classifier, I(A;Z)
    by KSG on the means), what DisTIB's swaps follow (:func:`swap_scores`), and FGSM accuracies.

    The probes read the code means (``probe_*_from_a``) and, again, one sample of each posterior
    per image (``probe_*_from_a_sampled``). The means are a deterministic function of the image and
    can carry a trace far smaller than the posterior's noise, which a standardising probe still
    reads; the sample is the code the bound is about, so only what survives the noise shows there.
    Every probe is run twice: linear (those keys) and by a small network (the same keys ending in
    ``_mlp``, see :func:`probe`), which reads what a code holds in a form no direction shows.
    """
    coded = encode_test(model, labelled)
    labels = labelled.y_test.cpu().numpy()
    is_distib = isinstance(model, DisTIB)
    noise = np.random.default_rng(seed)
    codes = {}
    for name in ("a", "z") if is_distib else ("a",):
        mean, log_var = coded[f"mean_{name}"], coded[f"log_var_{name}"]
        codes[name] = mean
        codes[f"{name}_sampled"] = mean + np.exp(0.5 * log_var) * noise.standard_normal(mean.shape)
    result: dict = {
        "accuracy_a": float((coded["logits"].argmax(1) == labels).mean()),
        "chance": float(np.bincount(labels).max() / len(labels)),
    }
    for reader, ending in (("linear", ""), ("mlp", "_mlp")):
        for name, code in codes.items():
            result[f"probe_label_from_{name}{ending}"] = probe(code, labels, seed, reader)
        for name, code in codes.items():
            result[f"probe_nuisance_from_{name}{ending}"] = {
                factor: probe(code, values, seed, reader)
                for factor, values in labelled.nuisance_test.items()
            }
    result["nuisance_chance"] = {
        factor: float(np.bincount(values).max() / len(values))
        for factor, values in labelled.nuisance_test.items()
    }
    result["mi_x_a"] = estimators.gaussian_encoder_mi(
        coded["mean_a"], coded["log_var_a"], seed=seed
    )
    result["mi_a_y"] = estimators.classifier_mi_lower_bound(coded["logits"], labels)
    if is_distib:
        result["mi_x_z"] = estimators.gaussian_encoder_mi(
            coded["mean_z"], coded["log_var_z"], seed=seed
        )
        result["mi_a_z"] = estimators.ksg_mutual_information(
            coded["mean_a"], coded["mean_z"], seed=seed
        )
        result["swaps"] = swap_scores(model, labelled, min(64, len(labelled.y_test) // 2))
    attacked = labelled.test_images(0, fgsm_points)
    result["fgsm"] = {
        str(eps): acc
        for eps, acc in robustness.fgsm_accuracy(
            model.classify, attacked, labelled.y_test[: len(attacked)]
        ).items()
    }
    return result


def probe_table(metrics: dict) -> str:
    """The probes of :func:`evaluate_model` as a printable table: a row for the label and for each
    nuisance factor read from each code, with the linear and the network reader (:func:`probe`),
    each on the code means and on a sample, and the accuracy of always guessing the commonest
    class (chance)."""
    codes = [code for code in "az" if f"probe_label_from_{code}" in metrics]
    targets = [("label", None, metrics["chance"])]
    targets += [("nuisance", name, chance) for name, chance in metrics["nuisance_chance"].items()]
    lines = [
        f"{'probe':18s} {'linear':>15s} {'network':>15s} {'chance':>7s}",
        f"{'':18s} {'means':>7s} {'sample':>7s} {'means':>7s} {'sample':>7s}",
    ]
    endings = ("", "_sampled", "_mlp", "_sampled_mlp")
    for kind, factor, chance in targets:
        for code in codes:
            keys = [f"probe_{kind}_from_{code}{end}" for end in endings]
            values = [metrics[key] if factor is None else metrics[key][factor] for key in keys]
            row = f"{factor or 'label'} from {code.upper()}"
            lines.append(f"{row:18s} " + " ".join(f"{v:7.3f}" for v in values) + f" {chance:7.3f}")
    return "\n".join(lines)


def run(
    model_name: str,
    dataset: str,
    label: str | None = None,
    profile: str | None = None,
    seed: int = 0,
    beta: float | None = None,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> dict:
    """One complete run: load, train (resuming from ``out_dir``), evaluate; writes
    ``metrics.json`` and ``history.json`` to ``out_dir`` and returns the metrics."""
    profile = config.resolve_profile(profile)
    dev = config.get_device(device)
    started = time.perf_counter()
    labelled = load_labelled(dataset, label, profile, seed, dev)
    settings = {"model": model_name, "seed": seed, **overrides}
    if beta is not None:
        settings["beta"] = beta
    run_config = RunConfig.for_profile(profile, **settings)
    model, history = fit_model(run_config, labelled, dev, out_dir, progress)
    metrics = {
        "model": model_name,
        "data": dataset,
        "label": labelled.label,
        "profile": profile,
        "seed": seed,
        "config": run_config.__dict__,
        **evaluate_model(model, labelled, seed),
        "train_seconds": history.seconds,
        "wall_seconds": time.perf_counter() - started,
        "environment": config.environment(dev),
    }
    if out_dir is not None:
        train.save_run(out_dir, metrics, history)
    return metrics


def default_out_dir(
    model_name: str,
    dataset: str,
    profile: str | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    decoder_trains_a: bool = True,
    activation: str = "relu",
    beta: float | None = None,
) -> Path:
    """The folder ``python -m disentangle train MODEL --data DATASET`` writes to when it is given
    no ``--out``: ``runs/{model}_{dataset}_{profile}_seed{seed}`` under ``root``, with the suffix
    ``_stop-reconstruction-at-a`` for DisTIB's ablation (``decoder_trains_a=False``), for an
    activation other than ReLU its name (``_leaky-relu``) and for a ``beta`` other than the
    default its value (``_beta0.01``), so that a run of other settings never overwrites, or is
    loaded as, the book's default model (the networks' shapes are the same).

    ``root`` defaults to the repository this library is installed from (an editable install, as
    the book's is), the folder the command is run from in the README, so that a chapter, which runs
    in ``notebooks/``, finds what the command wrote; outside a repository, the current folder.
    """
    if root is None:
        repository = Path(__file__).resolve().parents[2]
        root = repository if (repository / "pyproject.toml").exists() else Path.cwd()
    profile = config.resolve_profile(profile)
    suffix = "" if decoder_trains_a else "_stop-reconstruction-at-a"
    if activation != "relu":
        suffix += "_" + activation.replace("_", "-")
    if beta is not None and beta != RunConfig.beta:
        suffix += f"_beta{beta:g}"
    return Path(root) / "runs" / f"{model_name}_{dataset}_{profile}_seed{seed}{suffix}"


@dataclass
class TrainedModel:
    """A trained model with the data it was trained and tested on, its settings and history, the
    folder its checkpoint is in, and whether it was trained by this call (``trained``) or loaded
    from a finished run (``trained=False``)."""

    model: DisTIB | VIB
    history: train.History
    labelled: LabelledData
    settings: RunConfig
    out_dir: Path
    trained: bool


def load_or_train(
    model_name: str = "distib",
    dataset: str = "dsprites-style",
    label: str | None = None,
    profile: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    decoder_trains_a: bool = True,
    activation: str = "relu",
    beta: float | None = None,
) -> TrainedModel:
    """The model of the run in ``out_dir`` (default: :func:`default_out_dir`, where the command
    line writes): loaded when the folder holds a finished run, trained otherwise.
    ``decoder_trains_a=False`` asks for DisTIB's ablation (``--stop-reconstruction-at-a``),
    ``activation`` for the networks' activation (``--activation``) and ``beta`` for the weight of
    the compression terms (``--beta``; None: whatever the folder holds, else the default).

    The settings are those recorded in the folder's ``metrics.json`` when it has one (as
    ``python -m disentangle train`` writes it, whatever ``--label`` it was given), else
    ``RunConfig.for_profile(profile, model=model_name, seed=seed)`` with the settings asked for
    here, those of :func:`run`. A finished run is a checkpoint whose history reaches the last step
    of those settings. Otherwise the model is trained with :func:`fit_model`, which resumes an
    interrupted checkpoint and writes its own to ``out_dir``, so that the next call only loads it
    (no ``metrics.json`` is written: :func:`run` on the same folder adds it without training
    again).
    The model comes back on the device in eval mode.
    """
    if model_name != "distib" and not decoder_trains_a:
        raise ValueError(
            f"decoder_trains_a=False is DisTIB's ablation; {model_name} has no decoder."
        )
    profile = config.resolve_profile(profile)
    dev = config.get_device(device)
    out = Path(out_dir) if out_dir is not None else default_out_dir(
        model_name, dataset, profile, seed, decoder_trains_a=decoder_trains_a,
        activation=activation, beta=beta,
    )
    chosen = {"decoder_trains_a": decoder_trains_a, "activation": activation}
    if beta is not None:
        chosen["beta"] = beta
    settings = RunConfig.for_profile(profile, model=model_name, seed=seed, **chosen)
    recorded = out / "metrics.json"
    if recorded.exists():
        metrics = json.loads(recorded.read_text())
        asked = {"model": model_name, "data": dataset, "profile": profile, "seed": seed}
        if label is not None:
            asked["label"] = label
        found = {key: metrics.get(key) for key in asked}
        asked |= chosen
        found["decoder_trains_a"] = metrics["config"].get("decoder_trains_a", True)
        found["activation"] = metrics["config"].get("activation", "relu")
        if beta is not None:
            found["beta"] = metrics["config"]["beta"]
        if found != asked:
            raise ValueError(f"{out} holds the run {found}, not {asked}; use another folder.")
        settings = RunConfig(**metrics["config"])
        label = metrics.get("label", label)
    labelled = load_labelled(dataset, label, profile, seed, dev)
    checkpoint = out / train.CHECKPOINT
    if checkpoint.exists():
        model = build_model(settings, labelled).to(dev)
        try:
            history = train.load_checkpoint(checkpoint, {"model": model})
        except RuntimeError as err:  # a state dict of other shapes: another model's checkpoint
            raise ValueError(
                f"{checkpoint} does not fit a {settings.model} with the settings {settings}: it "
                f"was written by another run. Use another folder, or delete it. ({err!s:.200})"
            ) from None
        if (history.steps[-1] if history.steps else 0) >= settings.steps:
            model.eval()
            return TrainedModel(model, history, labelled, settings, out, trained=False)
    model, history = fit_model(settings, labelled, dev, out, progress)
    model.eval()
    return TrainedModel(model, history, labelled, settings, out, trained=True)
