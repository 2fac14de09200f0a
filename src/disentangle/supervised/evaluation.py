"""How the supervised family is scored: what the codes of a trained model (DisTIB or a baseline)
hold, for ``metrics.json`` and the chapters: the test set encoded, the accuracy from the label
code, linear and small-network probes for the label and every nuisance factor from each code,
information estimates, what the swaps follow, and FGSM robustness by two protocols
(:func:`fgsm_rates`), all in :func:`evaluate_model`; and the flags a run is marked with when its
scores cannot be read at face value (:func:`flags`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from disentangle import config, estimators, family, train
from disentangle.data.labelled import LabelledData
from disentangle.nets import reparameterize
from disentangle.supervised.networks import VIB, TwoCodes
from disentangle.supervised.settings import SupervisedSettings

PROBE_READERS = ("linear", "mlp")


#: The FGSM scores of a run, each ``{eps: rate}``: ``PROTOCOL`` is the book's (cross-entropy of
#: the label code's mean) or the reference code's (DisenIB's: the negated true-class logit, and VIB
#: attacked and scored on samples); ``SPLIT`` the test points or training points; ``RATE``
#: ``accuracy`` (over all attacked points) or ``survival`` (of those classified correctly before).
FGSM_SCORES = tuple(f"fgsm{protocol}{split}_{rate}" for protocol in ("", "_reference")
                    for split in ("", "_train") for rate in ("accuracy", "survival"))
#: A run whose clean accuracy is less than this far above chance is flagged ``near_chance``.
NEAR_CHANCE = 0.1


def metric_names(model: str) -> tuple[str, ...]:
    """The names :func:`evaluate_model` reports for a supervised model (``distib``, ``twostep``,
    ``vib``, ``disenib``). Most hold a number; ``probe_nuisance_from_*`` and ``nuisance_chance``
    hold one per nuisance factor, ``swaps`` one per score of :func:`swap_scores` and each of
    :data:`FGSM_SCORES` one per attack size."""
    if model not in SupervisedSettings.MODELS:
        raise ValueError(f"Unknown supervised model {model!r}; valid models are "
                         f"{', '.join(SupervisedSettings.MODELS)}.")
    two = model != "vib"
    codes = ("a", "a_sampled", "z", "z_sampled") if two else ("a", "a_sampled")
    probes = tuple(f"probe_{target}_from_{code}{ending}"
                   for ending in ("", "_mlp") for target in ("label", "nuisance") for code in codes)
    second = ("mi_x_z", "mi_a_z", "swaps") if two else ()
    information = ("mi_x_a", "mi_a_y", *second)
    return ("accuracy_a", "chance", *probes, "nuisance_chance", *information, *FGSM_SCORES)


def flags(scores: dict, history: train.History) -> list[str]:
    """What marks a run whose scores cannot be read at face value: ``near_chance`` (its clean
    accuracy is less than :data:`NEAR_CHANCE` above always guessing the commonest class) and
    ``diverged`` (its last logged loss is above its first, though finite)."""
    marked = []
    if scores["accuracy_a"] < scores["chance"] + NEAR_CHANCE:
        marked.append("near_chance")
    if family.loss_rose(history):
        marked.append("diverged")
    return marked


@torch.no_grad()
def encode_test(model: TwoCodes | VIB, labelled: LabelledData, chunk: int = 2048) -> dict:
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
    training half at once. A linear probe near chance says only that no direction carries the
    target; the network may still read it.
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
    model: TwoCodes,
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
    model: TwoCodes | VIB, labelled: LabelledData, seed: int = 0, fgsm_points: int = 2000
) -> dict:
    """What the codes hold, for ``metrics.json``: accuracy from A (VIB's one code counts as A),
    probes for the label and every nuisance factor from each code, information estimates in nats
    (I(X;A) and I(X;Z) by Monte Carlo over the test posteriors, I(A;Y) from the classifier, I(A;Z)
    by KSG on the means), what the swaps of a two-code model follow (:func:`swap_scores`), and the
    FGSM rates of :data:`FGSM_SCORES` (:func:`fgsm_rates`) on the first ``fgsm_points`` test and
    training points.

    The probes read the code means (``probe_*_from_a``) and, again, one sample of each posterior
    per image (``probe_*_from_a_sampled``). The means are a deterministic function of the image and
    can carry a trace far smaller than the posterior's noise, which a standardising probe still
    reads; the sample is the code the bound is about, so only what survives the noise shows there.
    Every probe is run twice: linear (those keys) and by a small network (the same keys ending in
    ``_mlp``, see :func:`probe`), which reads what a code holds in a form no direction shows.
    """
    coded = encode_test(model, labelled)
    labels = labelled.y_test.cpu().numpy()
    is_distib = isinstance(model, TwoCodes)
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
        # 64 x 64 decoded pairs; a dry run of the gpu profile (large decoders on a CPU) caps them.
        pairs = 64 if config.learns(labelled.profile) else config.DRY_RUN_BATCH
        result["swaps"] = swap_scores(model, labelled, min(pairs, len(labelled.y_test) // 2))
    # The paper's Table I attacks training points too: how far robustness is learned, not only
    # how far it generalises. A dry run of the gpu profile attacks 256 points of each: enough that
    # its untrained model classifies some of them correctly, as a survival rate needs.
    if not config.learns(labelled.profile):
        fgsm_points = min(fgsm_points, 256)
    train_points = torch.arange(min(fgsm_points, len(labelled.y_train)),
                                device=labelled.y_train.device)
    splits = {"": (labelled.test_images(0, fgsm_points), labelled.y_test),
              "_train": (labelled.x_train[train_points], labelled.y_train[train_points])}
    protocols = {"": (model.classify, "cross_entropy"),
                 "_reference": (reference_classifier(model), "logit")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the samples VIB is attacked and scored on by the reference
        for protocol, (classify, loss) in protocols.items():
            for split, (images, labels) in splits.items():
                rates = fgsm_rates(classify, images, labels[: len(images)], loss=loss)
                for rate, by_eps in rates.items():
                    result[f"fgsm{protocol}{split}_{rate}"] = {
                        str(eps): value for eps, value in by_eps.items()}
    return result


def reference_classifier(model: TwoCodes | VIB) -> Callable[[torch.Tensor], torch.Tensor]:
    """How the reference code (DisenIB's evaluation) classifies under attack: VIB from a fresh
    sample of its code on every call, as its forward pass does; a two-code model from the label
    code's mean, as :meth:`TwoCodes.classify`."""
    if not isinstance(model, VIB):
        return model.classify

    def sampled(x: torch.Tensor) -> torch.Tensor:
        out = model.posteriors(x)
        return model.classifier(reparameterize(out["mean_z"], out["log_var_z"]))

    return sampled


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


def fgsm_rates(
    classify: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    epsilons: Sequence[float] = (0.1, 0.2, 0.3),
    loss: str = "cross_entropy",
    batch_size: int = 1024,
) -> dict[str, dict[float, float | None]]:
    """One FGSM step (Goodfellow et al. 2015) at each eps, x' = clip(x + eps * sign(grad_x L), -1,
    1) with x the image in [-1, 1], and two rates of it:

    - ``accuracy``: the share of *all* ``images`` classified correctly after the attack, which a
      model at chance cannot win;
    - ``survival``: the share of the images classified correctly before the attack that stay
      correct after it (the rate DisenIB's code reports); ``None`` where none was correct.

    ``loss`` is ``cross_entropy`` (L = CE(classify(x), y), the book's protocol) or ``logit``
    (L = the mean negated true-class logit, ``nll_loss`` on raw logits, as DisenIB's code
    attacks). ``classify`` takes images in [0, 1], like every model of the book; the attack happens
    in the [-1, 1] range and is mapped back, so eps = 0.1 moves each pixel by 0.05 of the [0, 1]
    range. A stochastic ``classify`` is called afresh for the clean reading, the gradient and each
    attacked reading, as the reference code's forward passes are."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    if any(eps < 0 for eps in epsilons):
        raise ValueError(f"FGSM step sizes must be >= 0; got {list(epsilons)}.")
    if loss not in ("cross_entropy", "logit"):
        raise ValueError(f"Unknown FGSM loss {loss!r}; give cross_entropy or logit.")
    right = {float(eps): 0 for eps in epsilons}
    kept = {float(eps): 0 for eps in epsilons}
    correct_total = 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        y = labels[start : start + batch_size]
        with torch.no_grad():
            correct = classify(x).argmax(1) == y
        correct_total += int(correct.sum())
        signed = (2 * x - 1).detach().requires_grad_(True)
        logits = classify((signed + 1) / 2)
        objective = (F.cross_entropy(logits, y) if loss == "cross_entropy"
                     else F.nll_loss(logits, y))
        (grad,) = torch.autograd.grad(objective, signed)
        with torch.no_grad():
            for eps in epsilons:
                attacked = (signed + eps * grad.sign()).clamp(-1, 1)
                still = classify((attacked + 1) / 2).argmax(1) == y
                right[float(eps)] += int(still.sum())
                kept[float(eps)] += int((still & correct).sum())
    return {"accuracy": {eps: count / len(images) for eps, count in right.items()},
            "survival": {eps: count / correct_total if correct_total else None
                         for eps, count in kept.items()}}
