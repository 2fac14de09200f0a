"""Figures the chapters share: image grids, latent traversals (still and animated), DisTIB swap
grids, the information plane, training curves, metric bars, a study's groups and paired seeds,
and Bayesian networks. The interactive
explorers, built on these, live in :mod:`disentangle.widgets` (they need ipywidgets)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from disentangle import stats
from disentangle.info import BayesianNetwork


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


# --- Traversals, swaps and training figures -------------------------------------------------------
#
# The functions below take callables rather than model classes, so that any trained model fits:
# a decoder is ``decode(codes (n, D)) -> images (n, C, H, W)`` with values in [0, 1], and a DisTIB
# swap is ``swap(x_a, x_z) -> images (len(x_a), len(x_z), C, H, W)``.

Decoder = Callable[[torch.Tensor], torch.Tensor]
Swapper = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_images(images: torch.Tensor, count: int, what: str) -> torch.Tensor:
    """Check that a decoder (named ``what`` in the error) returned ``count`` images (n, C, H, W)
    with 1 or 3 channels, and return them detached, as float32, on the CPU."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) != count:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{what} must return images (n={count}, C, H, W); got {shape}.")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"{what} returned {images.shape[1]} channels; expected 1 or 3.")
    return images.detach().float().cpu()


def traversal_grid(
    decode: Decoder,
    base_code: torch.Tensor,
    dims: Sequence[int] | None = None,
    values: torch.Tensor | Sequence[float] | None = None,
) -> torch.Tensor:
    """Decode a latent traversal: for each dimension in ``dims`` (default: all), set that one
    coordinate of ``base_code`` (D,) to each of ``values`` (default ``linspace(-2, 2, 9)``) and
    keep the others.

    Returns images (len(dims), len(values), C, H, W) on the CPU, row ``r`` walking ``dims[r]``.
    """
    base = torch.as_tensor(base_code).detach()
    if base.ndim != 1:
        raise ValueError(f"base_code must be one code (D,); got shape {tuple(base.shape)}.")
    dims = list(range(len(base))) if dims is None else [int(d) for d in dims]
    bad = [d for d in dims if not 0 <= d < len(base)]
    if bad or not dims:
        raise ValueError(f"dims must be indices into a code of {len(base)} numbers; got {dims}.")
    values = torch.linspace(-2, 2, 9) if values is None else torch.as_tensor(values)
    values = values.to(dtype=base.dtype if base.is_floating_point() else torch.float32)
    codes = base.to(values.dtype).repeat(len(dims), len(values), 1)
    for row, d in enumerate(dims):
        codes[row, :, d] = values
    with torch.no_grad():
        images = decode(codes.reshape(-1, len(base)).to(base.device))
    images = check_images(images, len(dims) * len(values), "decode")
    return images.reshape(len(dims), len(values), *images.shape[1:])


def traversal_figure(
    images: torch.Tensor | np.ndarray,
    values: torch.Tensor | Sequence[float] | None = None,
    dims: Sequence[int] | None = None,
    title: str | None = None,
    cell_inches: float = 0.6,
) -> Figure:
    """Draw the output of :func:`traversal_grid`: one row per dimension (labelled ``dim d``) and,
    when ``values`` is given, the code value under each column."""
    array = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    if array.ndim != 5:
        raise ValueError(f"Expected traversal images (dims, values, C, H, W); got {array.shape}.")
    dims = list(range(len(array))) if dims is None else list(dims)
    if len(dims) != len(array):
        raise ValueError(f"{len(dims)} dims given for {len(array)} rows of images.")
    fig = image_grid(array, row_labels=[f"dim {d}" for d in dims], title=title,
                     cell_inches=cell_inches)
    if values is not None:
        values = [float(v) for v in values]
        if len(values) != array.shape[1]:
            raise ValueError(f"{len(values)} values given for {array.shape[1]} columns.")
        width, pad = array.shape[-1], 2  # the pad image_grid puts between cells
        ax = fig.axes[0]
        ax.set_xticks([c * (width + pad) + width / 2 for c in range(len(values))],
                      [f"{v:+.1f}" for v in values], fontsize=8)
        ax.set_xlabel("code value")
        fig.tight_layout()
    return fig


def save_traversal(
    generate: Decoder, code_dim: int, span: float, path: str | Path, title: str,
    device: torch.device,
) -> Path:
    """Save a traversal figure of ``generate`` (codes on ``device``) to ``path``: each of the
    ``code_dim`` codes walked from -``span`` to ``span`` in 9 steps, the others at zero (what a
    finished GAN or VAE run writes as ``traversal.png``)."""
    values = torch.linspace(-span, span, 9)
    grid = traversal_grid(generate, torch.zeros(code_dim, device=device), values=values)
    figure = traversal_figure(grid, values, title=title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def _to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] to (H, W) or (H, W, 3) bytes, values outside [0, 1] clipped."""
    array = np.asarray(image.detach().float().cpu() if isinstance(image, torch.Tensor) else image)
    array = np.clip(array, 0, 1).transpose(1, 2, 0)
    return np.rint(array[..., 0] * 255 if array.shape[-1] == 1 else array * 255).astype(np.uint8)


def image_strip(row: torch.Tensor, scale: int, pad: int = 2) -> Image.Image:
    """Images (n, C, H, W) in [0, 1] side by side on white, ``pad`` pixels apart, as one Pillow
    image enlarged ``scale`` times without blurring."""
    tiles = [_to_uint8(image) for image in row]
    height, width = tiles[0].shape[:2]
    shape = (height, len(tiles) * (width + pad) - pad, *tiles[0].shape[2:])
    canvas = np.full(shape, 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        canvas[:, i * (width + pad) : i * (width + pad) + width] = tile
    strip = Image.fromarray(canvas)
    # Nearest keeps pixels sharp: these are small images and blur would hide their edges.
    return strip.resize((strip.width * scale, strip.height * scale), Image.Resampling.NEAREST)


def save_traversal_gif(
    decode: Decoder,
    base_code: torch.Tensor,
    path: str | Path,
    dims: Sequence[int] | None = None,
    values: torch.Tensor | Sequence[float] | None = None,
    scale: int = 2,
    frame_ms: int = 120,
) -> Path:
    """Write an animated GIF of a traversal with Pillow (no external encoder): frame ``t`` shows
    every dimension in ``dims`` side by side, each set to ``values[t]``; the animation then runs
    back, so it has ``2 * len(values) - 2`` frames and loops smoothly. Returns the path."""
    grid = traversal_grid(decode, base_code, dims, values)
    if grid.shape[1] < 2:
        raise ValueError("An animated traversal needs at least two values.")
    order = [*range(grid.shape[1]), *range(grid.shape[1] - 2, 0, -1)]
    frames = [image_strip(grid[:, t], scale) for t in order]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # optimize=False and disposal=1 keep every frame whole, so readers and tests count them all.
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=frame_ms, optimize=False, disposal=1)
    return path


def swap_grid(
    swap: Swapper,
    x_a: torch.Tensor,
    x_z: torch.Tensor,
    title: str | None = None,
    cell_inches: float = 0.6,
) -> Figure:
    """Draw DisTIB's code swaps: the first row shows the images that give Z, the first column the
    images that give A, and cell (i, j) the image decoded from A of ``x_a[i]`` and Z of ``x_z[j]``.
    """
    x_a, x_z = torch.as_tensor(x_a).detach(), torch.as_tensor(x_z).detach()
    with torch.no_grad():
        swapped = swap(x_a, x_z)
    expected = (len(x_a), len(x_z), *x_a.shape[1:])
    if not isinstance(swapped, torch.Tensor) or tuple(swapped.shape) != expected:
        got = tuple(swapped.shape) if isinstance(swapped, torch.Tensor) else type(swapped)
        raise ValueError(f"swap must return images {expected}; got {got}.")
    swapped = swapped.detach().float().cpu()
    grid = torch.ones(len(x_a) + 1, len(x_z) + 1, *x_a.shape[1:])
    grid[0, 1:] = x_z.float().cpu()
    grid[1:, 0] = x_a.float().cpu()
    grid[1:, 1:] = swapped
    fig = image_grid(grid, row_labels=["Z from", *[f"A {i}" for i in range(len(x_a))]],
                     title=title, cell_inches=cell_inches)
    ax = fig.axes[0]
    height, width, pad = x_a.shape[-2], x_a.shape[-1], 2
    # Lines between the source images and the swaps make the two roles easy to tell apart.
    ax.axhline(height + pad / 2 - 0.5, color="tab:red", lw=1.5)
    ax.axvline(width + pad / 2 - 0.5, color="tab:red", lw=1.5)
    return fig


def _series(history: Mapping[str, Sequence[float]], key: str) -> np.ndarray:
    if key not in history:
        raise KeyError(f"history has no {key!r}; it has {sorted(history)}.")
    values = np.asarray(history[key], dtype=float)
    if len(values) != len(history["step"]):
        raise ValueError(
            f"history[{key!r}] has {len(values)} entries but history['step'] has "
            f"{len(history['step'])}; log every term at every recorded step (NaN where missing)."
        )
    return values


def information_plane(
    history: Mapping[str, Sequence[float]],
    x: str = "mi_x_a",
    y: str = "mi_a_y",
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw a training run in the information plane: ``history[x]`` against ``history[y]``, one
    point per recorded step, joined in order and coloured by ``history["step"]``."""
    if "step" not in history:
        raise KeyError(f"history needs a 'step' entry; it has {sorted(history)}.")
    steps, xs, ys = np.asarray(history["step"], float), _series(history, x), _series(history, y)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    fig = ax.figure
    ax.plot(xs, ys, color="0.7", lw=0.8, zorder=1)
    points = ax.scatter(xs, ys, c=steps, cmap="viridis", s=18, zorder=2)
    ax.annotate("start", (xs[0], ys[0]), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.annotate("end", (xs[-1], ys[-1]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title or "information plane")
    fig.colorbar(points, ax=ax, label="step")
    return fig


def training_curves(
    history: Mapping[str, Sequence[float]],
    terms: Sequence[str] | None = None,
    ncols: int = 3,
    title: str | None = None,
) -> Figure:
    """Plot every term of a training history (default: every key but ``"step"``) against
    ``history["step"]``, one panel per term. A panel uses a log scale when its term is positive and
    spans more than a factor of 30; NaN entries (a term not logged at that step) are skipped."""
    if "step" not in history:
        raise KeyError(f"history needs a 'step' entry; it has {sorted(history)}.")
    terms = [k for k in history if k != "step"] if terms is None else list(terms)
    if not terms:
        raise ValueError("history has no term to plot besides 'step'.")
    steps = np.asarray(history["step"], float)
    ncols = min(ncols, len(terms))
    nrows = int(np.ceil(len(terms) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), squeeze=False)
    for ax, term in zip(axes.flat, terms):
        values = _series(history, term)
        seen = np.isfinite(values)
        ax.plot(steps[seen], values[seen], lw=1)
        positive = values[seen]
        if positive.size and positive.min() > 0 and positive.max() / positive.min() > 30:
            ax.set_yscale("log")
        ax.set(title=term, xlabel="step")
    for ax in axes.flat[len(terms):]:
        fig.delaxes(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metric_bars(
    results: Mapping[str, Mapping[str, Sequence[float]]],
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars of disentanglement metrics: one group per metric, one bar per model at the mean
    over seeds with an error bar of one standard deviation (ddof=1; none for a single seed), and
    each seed's value as a dot. ``results[model][metric]`` is the list of values over seeds."""
    if not results:
        raise ValueError("results is empty: expected {model: {metric: [value per seed]}}.")
    if metrics is None:
        metrics = list(dict.fromkeys(m for scores in results.values() for m in scores))
    models = list(results)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(metrics) * (len(models) + 1) / 2), 3.6))
    fig = ax.figure
    width = 0.8 / len(models)
    centres = np.arange(len(metrics))
    for k, model in enumerate(models):
        scores = [np.asarray(results[model].get(m, []), dtype=float) for m in metrics]
        means = np.array([s.mean() if s.size else np.nan for s in scores])
        stds = np.array([s.std(ddof=1) if s.size > 1 else 0.0 for s in scores])
        x = centres - 0.4 + width * (k + 0.5)
        ax.bar(x, means, width * 0.9, yerr=stds, capsize=3, label=model, color=f"C{k}")
        for xi, s in zip(x, scores):
            ax.scatter(np.full(s.size, xi), s, s=8, color="k", zorder=3)
    ax.set_xticks(centres, list(metrics))
    seeds = sorted({len(v) for scores in results.values() for v in scores.values()})
    counts = ", ".join(map(str, seeds))
    ax.set(ylabel="score", title=title or f"mean ± std over seeds (n = {counts})")
    ax.legend(fontsize=8, frameon=False)
    return fig


#: The names the book's prose gives the metrics a study records, for axes and titles.
METRIC_LABELS = {
    "beta_vae_eval": "Z-diff (BetaVAE score)",
    "factor_vae_eval": "FactorVAE score",
    "mig": "MIG",
    "dci_disentanglement": "DCI disentanglement",
    "explicitness": "EXP",
    "jemmig": "JEMMIG",
    "modularity": "MOD",
    "sap": "SAP",
    "gaussian_total_correlation": "Gaussian TC (nats)",
    "mean_pairwise_mi": "mean pairwise MI (nats)",
    "factor_vae_active_dims": "active codes",
    "paper_z_diff": "Z-diff, paper's protocol",
    "paper_exp": "EXP, paper's protocol",
    "paper_jemmig": "JEMMIG, paper's protocol",
    "paper_modularity": "MOD, paper's protocol",
    "paper_sap": "SAP, paper's protocol",
    "fgsm_accuracy.0.1": "FGSM accuracy, ε = 0.1",
    "complex_level.control_r2_min": "control R² (worse position)",
}


def span(values: Iterable[float], digits: int = 2) -> str:
    """The range of ``values`` as the book's prose writes it: ``"0.51 to 0.73"``."""
    values = list(values)
    if not values:
        raise ValueError("span of no values: pass at least one number.")
    return f"{min(values):.{digits}f} to {max(values):.{digits}f}"


def metric_label(metric: str) -> str:
    """The book's name of a recorded metric (:data:`METRIC_LABELS`), else the name itself."""
    return METRIC_LABELS.get(metric, metric)


def _study_values(record: Mapping, group: str, metric: str) -> dict[int, float]:
    """Seed -> value of ``metric`` for the finished runs of ``group`` in a study's results."""
    if group not in record["summary"]:
        raise ValueError(f"No group {group!r} in the study; its groups are "
                         f"{', '.join(record['summary'])}.")
    if metric not in record["study"]["metrics"]:
        raise ValueError(f"The study reports no {metric!r}; it reports "
                         f"{', '.join(record['study']['metrics'])}.")
    return {entry["seed"]: entry["metrics"][metric] for entry in record["runs"]
            if entry["group"] == group and entry["status"] == "finished"
            and entry["metrics"].get(metric) is not None}


def summary_table(record: Mapping, columns: Mapping[str, str], *, scale: float = 1.0,
                  digits: int = 3, index: str = "group") -> Any:
    """A study's summary as a table (a ``pandas.DataFrame``, which a notebook renders): a row per
    group, a column per entry of ``columns`` (heading -> recorded metric), each cell the mean over
    seeds and half its 95% t-interval, "mean ± half", times ``scale`` with ``digits`` decimals
    (the mean alone from one seed; blank where the group reports no value)."""
    import pandas as pd  # the book's dependency, not the library's

    def cell(summary: Mapping) -> str:
        if summary["mean"] is None:
            return ""
        text = f"{scale * summary['mean']:.{digits}f}"
        if summary["ci_high"] is None:
            return text
        return text + f" ± {scale * (summary['ci_high'] - summary['ci_low']) / 2:.{digits}f}"

    table = pd.DataFrame({heading: {group: cell(summary[metric])
                                    for group, summary in record["summary"].items()}
                          for heading, metric in columns.items()})
    table.index.name = index
    return table


def paired_table(record: Mapping, primary_only: bool = True, digits: int = 3) -> Any:
    """Every (primary) comparison of a study's record as a row of its paired differences a - b,
    seed by seed (a ``pandas.DataFrame``)."""
    import pandas as pd

    return pd.DataFrame({
        f"{c['a']} − {c['b']} ({metric_label(c['metric'])})": {
            f"seed {seed}": round(d, digits) for seed, d in c["differences"].items()}
        for c in record["comparisons"] if c["primary"] or not primary_only
    }).T


def study_intervals(record: Mapping, metric: str, ax: Axes | None = None) -> Figure:
    """One study's ``metric`` by group (a results record of :mod:`disentangle.studies`): every
    seed's value as a dot, the mean as a bar across, and its 95% t-interval as a line."""
    groups = list(record["summary"])
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 1.1 * len(groups), 3.2))
    for k, group in enumerate(groups):
        values = np.array(list(_study_values(record, group, metric).values()), dtype=float)
        summary = record["summary"][group][metric]
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(k + jitter[: len(values)], values, s=12, color=f"C{k}", alpha=0.7, zorder=2)
        if summary["mean"] is not None:
            ax.plot([k - 0.25, k + 0.25], [summary["mean"]] * 2, color="k", lw=2, zorder=3)
            ax.plot([k + 0.3] * 2, [summary["ci_low"], summary["ci_high"]], color="k", lw=1.2)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(metric_label(metric))
    ax.set_title("seeds, mean, 95% t-interval", fontsize=9)
    return ax.figure


def paired_lines(record: Mapping, a: str, b: str, metric: str, ax: Axes | None = None) -> Figure:
    """Group ``a`` against group ``b`` seed by seed: a line per seed from its value in ``b`` to its
    value in ``a``, solid where ``a`` is higher and dashed where it is lower."""
    left, right = _study_values(record, b, metric), _study_values(record, a, metric)
    seeds = sorted(set(left) & set(right))
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    for seed in seeds:
        up = right[seed] >= left[seed]
        ax.plot([0, 1], [left[seed], right[seed]], color="C2" if up else "C3",
                ls="-" if up else "--", marker="o", ms=4, lw=1)
        ax.annotate(str(seed), (1, right[seed]), xytext=(4, 0), textcoords="offset points",
                    fontsize=7, va="center")
    ax.set_xticks([0, 1], [b, a])
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{a} - {b}, by seed (n = {len(seeds)})", fontsize=9)
    return ax.figure


def differences_along(record: Mapping, series: Mapping[str, Sequence[tuple[float, str, str]]],
                      metric: str, xlabel: str, ax: Axes | None = None) -> Figure:
    """Paired differences a - b of a study against a setting that varies across its comparisons
    (the training budget, say): ``series`` maps a label to its points ``(x, a, b)``, each a
    comparison of the record on ``metric``. At each x, every seed's difference as a dot, the mean
    as a marker with its 95% t-interval, the means of one series joined by a line; 0 dashed.
    Series are nudged apart along x by a few percent so their intervals do not hide each other."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.4))
    for k, (label, points) in enumerate(series.items()):
        means, nudge = [], 1 + 0.03 * (k - (len(series) - 1) / 2)
        for x, a, b in points:
            c = stats.comparison(record, a, b, metric)
            diffs = np.array([d for d in c["differences"].values() if d is not None], float)
            ax.scatter(np.full(len(diffs), x * nudge), diffs, s=10, color=f"C{k}", alpha=0.5,
                       zorder=2)
            if c["ci_low"] is not None:
                ax.errorbar([x * nudge], [c["mean_diff"]],
                            yerr=[[c["mean_diff"] - c["ci_low"]], [c["ci_high"] - c["mean_diff"]]],
                            color=f"C{k}", marker="o", capsize=3, zorder=3)
            means.append((x * nudge, c["mean_diff"]))
        ax.plot(*zip(*means), color=f"C{k}", lw=1.2, label=label)
    ax.axhline(0, color="k", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"difference in {metric_label(metric)}")
    ax.set_title("seeds, mean, 95% t-interval", fontsize=9)
    ax.legend(fontsize=8)
    return ax.figure


def _crop_margins(image: np.ndarray, white: float = 0.99) -> np.ndarray:
    """An RGB(A) image in [0, 1] without its white border."""
    ink = (image[..., :3] < white).any(axis=-1)
    if not ink.any():
        return image
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def recorded_traversals(record: Mapping, results_dir: str | Path, columns: int = 2) -> Figure:
    """The traversal figures a finished study copied beside its results file (``record
    ["traversals"]``, by :func:`disentangle.studies.collect_traversals`: each group's median-seed
    run), ``columns`` to a row ten inches wide, each titled with its group and seed; the rows are
    as tall as the tallest image needs at that width."""
    shown = record.get("traversals") or {}
    if not shown:
        raise ValueError("The record holds no traversals: they are copied when every run of the "
                         "study has finished (run the study command again to copy them).")
    images = {group: _crop_margins(plt.imread(Path(results_dir) / entry["file"]))
              for group, entry in shown.items()}
    aspect = max(image.shape[0] / image.shape[1] for image in images.values())
    rows = -(-len(shown) // columns)
    height = rows * (10 / columns * aspect + 0.3)  # 0.3 inch for each row's titles
    fig, axes = plt.subplots(rows, columns, figsize=(10, height), squeeze=False)
    for ax, (group, entry) in zip(axes.flat, shown.items()):
        ax.imshow(images[group])
        ax.set_title(f"{group} (median seed {entry['seed']})", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def bayesian_networks(
    graphs: Mapping[str, BayesianNetwork],
    positions: Mapping[Hashable, tuple[float, float]] | None = None,
) -> Figure:
    """Draw several Bayesian networks side by side, titled by their keys (for example DisTIB's
    ``{"G_in": g_in, "G_out": g_out}``); ``positions`` places the nodes the same way in each."""
    if not graphs:
        raise ValueError("graphs is empty: expected {title: BayesianNetwork}.")
    fig, axes = plt.subplots(1, len(graphs), figsize=(3.5 * len(graphs), 3.2), squeeze=False)
    for ax, (name, graph) in zip(axes.flat, graphs.items()):
        graph.draw(ax, positions=positions, title=name)
    fig.tight_layout()
    return fig

