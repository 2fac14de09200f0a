"""The speed benchmark: the book's training path against the way public repositories train.

``python -m disentangle bench`` times, in one run on one device, the training step of two models:

- ``distib``: the DisTIB conv model (conv encoders, conv decoder, the gpu profile's networks) on
  64 x 64 dSprites-style images with the label shape;
- ``gan``: the reference 64 x 64 TC-GAN (5 noise dimensions, 5 codes, minibatch TC estimate).

Each is timed two ways. The *public-code way*: batch 64 from a ``torch.utils.data.DataLoader``
over images in host memory, moved to the device every step, fp32, eager. The *book's way*: the
exact path the chapters train with (:func:`disentangle.supervised.training_parts`,
:func:`disentangle.gan.training_parts`): images resident on the device and drawn there, bf16
autocast and compiled networks on CUDA, and the profile's batch size with its matched learning
rate. Warm-up steps are excluded; the two ways take turns, one timed block each per round
(:func:`time_ways`), and the images per second reported are each way's median block; the
speed-up is the median over rounds of book / public within a round.
``--quality`` adds the time to quality: wall time for DisTIB to reach :data:`DISTIB_TARGET` test
accuracy from A and for TC-GAN to reach a FactorVAE score of :data:`GAN_TARGET`, each the book's
way.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from disentangle import config, gan, metrics, runs, supervised, train
from disentangle.data import load_ground_truth, load_labelled
from disentangle.gan import GanSettings
from disentangle.supervised import SupervisedSettings

PUBLIC_BATCH = 64
#: Time-to-quality targets: DisTIB's test accuracy from A and TC-GAN's FactorVAE score, each set
#: a little below what the cpu-profile runs reach, so that the clock stops at a score it attains
#: (the chapter on performance reads the recorded runs behind them).
DISTIB_TARGET = 0.97
GAN_TARGET = 0.35


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _allocated(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


#: A way to train, as :func:`time_ways` times it: the step, the batches it is fed, the batch size.
Way = tuple[train.StepFn, Callable[[], train.Batch], int]


def time_ways(
    ways: dict[str, Callable[[], Way]],
    device: torch.device,
    warmup: int = 5,
    steps: int = 20,
    repeats: int = 5,
) -> dict[str, dict]:
    """Images per second of each way's ``step(next_batch())``. Each way is built (its callable
    returns :data:`Way`) and warmed up with ``warmup`` untimed steps; then ``repeats`` rounds,
    in each of which every way runs one timed block of ``steps`` steps (synchronised with the
    device at both ends). Taking turns gives the ways the same machine: timed one after the
    other, the second would meet a CPU whose allocator and clock had settled. Per way: the
    median block, its spread, and on CUDA its peak memory (what it holds after warm-up plus the
    most a block added, so that the other way's resident model and data are not charged to
    it; None on the CPU, where a process can read only its whole lifetime's peak)."""
    if min(warmup, steps, repeats) < 0 or steps == 0 or repeats == 0:
        raise ValueError(f"Need steps, repeats >= 1 and warmup >= 0; got {steps}, {repeats}, "
                         f"{warmup}.")
    built, resident = {}, {}
    for name, build in ways.items():
        _sync(device)
        before = _allocated(device)
        built[name] = step, next_batch, _ = build()
        for _ in range(warmup):
            step(next_batch())
        _sync(device)
        resident[name] = _allocated(device) - before
    rates: dict[str, list[float]] = {name: [] for name in ways}
    added = dict.fromkeys(ways, 0)
    for _ in range(repeats):
        for name, (step, next_batch, batch_size) in built.items():
            _sync(device)
            base = _allocated(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            for _ in range(steps):
                step(next_batch())
            _sync(device)
            rates[name].append(batch_size * steps / (time.perf_counter() - start))
            if device.type == "cuda":
                added[name] = max(added[name], torch.cuda.max_memory_allocated(device) - base)
    return {name: {
        "images_per_second": round(statistics.median(rates[name]), 1),
        "images_per_second_range": [round(min(rates[name]), 1), round(max(rates[name]), 1)],
        "images_per_second_rounds": [round(rate, 1) for rate in rates[name]],
        "batch_size": built[name][2],
        "peak_memory_mb": (round((resident[name] + added[name]) / 2**20, 1)
                           if device.type == "cuda" else None),
    } for name in ways}


def host_loader(
    images: torch.Tensor, *tensors: torch.Tensor, device: torch.device, workers: int
) -> Callable[[], train.Batch]:
    """The public-code way to feed a step: shuffled batches of 64 from a ``DataLoader`` over
    host tensors, each batch moved to ``device``; the loader restarts when it runs out."""
    loader = DataLoader(TensorDataset(images, *tensors), batch_size=PUBLIC_BATCH, shuffle=True,
                        drop_last=True, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0)
    iterator = iter(loader)

    def next_batch() -> train.Batch:
        nonlocal iterator
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        return tuple(t.to(device, non_blocking=True) for t in batch)

    return next_batch


def _host_images(rows, count: int) -> torch.Tensor:
    index = torch.arange(min(count, len(rows)), device=rows.device)
    return torch.cat([rows[index[i:i + 4096]].float().cpu() for i in range(0, len(index), 4096)])


def _profile(device: torch.device) -> str:
    return "gpu" if train.accelerated(device) else "cpu"


def bench_distib(device: torch.device, timing: dict, host_count: int, workers: int) -> dict:
    """The DisTIB conv model, the public-code way and the book's way."""
    profile = _profile(device)
    labelled = load_labelled("dsprites-style", "shape", profile, 0, device)
    networks = {k: v for k, v in SupervisedSettings.for_profile("gpu").as_dict().items()
                if k in ("encoder", "decoder", "width", "hidden")}
    book = SupervisedSettings.for_profile(profile, **networks)
    public = SupervisedSettings.for_profile(profile, batch_size=PUBLIC_BATCH, **networks)

    def book_way() -> Way:
        parts = supervised.training_parts(book, labelled, device)
        step, batches = parts.step, parts.batches
        return step, batches, book.batch_size

    def public_way() -> Way:
        model = supervised.build_model(public, labelled).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=public.lr)
        step = train.gradient_step(model, supervised.loss_for(public, model), optimizer, device,
                                   amp=False)
        images = _host_images(labelled.x_train, host_count)
        labels = labelled.y_train[: len(images)].cpu()
        return step, host_loader(images, labels, device=device, workers=workers), PUBLIC_BATCH

    result = time_ways({"public": public_way, "book": book_way}, device, **timing)
    return {**result, "networks": networks, "image_shape": list(labelled.image_shape)}


def bench_gan(device: torch.device, timing: dict, host_count: int, workers: int) -> dict:
    """The reference 64 x 64 TC-GAN, the public-code way and the book's way."""
    profile = _profile(device)
    source = load_ground_truth("dsprites-style", profile)
    reference = {"resolution": 64, "code_dim": 5, "noise_dim": 5}
    book = GanSettings.for_profile(profile, **reference)
    public = GanSettings.for_profile(profile, batch_size=PUBLIC_BATCH, **reference)

    def book_way() -> Way:
        parts = gan.training_parts(book, source, device)
        step, next_batch = parts.step, parts.batches
        return step, next_batch, book.batch_size

    def public_way() -> Way:
        config.seed_everything(0)
        model = gan.TwoLevelGAN(public).to(device)
        step = gan.gan_step(model, gan.build_optimizers(model), device, amp=False)
        factors = source.sample_factors(host_count, np.random.default_rng(0))
        return step, host_loader(source.images(factors), device=device, workers=workers), \
            PUBLIC_BATCH

    result = time_ways({"public": public_way, "book": book_way}, device, **timing)
    return {**result, "config": reference}


def distib_time_to_quality(device: torch.device, max_steps: int, every: int = 50) -> dict:
    """Training seconds (evaluation excluded) for DisTIB, the book's way in this device's profile,
    to reach :data:`DISTIB_TARGET` test accuracy from A; ``reached`` False if ``max_steps`` ran
    out first."""
    profile = _profile(device)
    labelled = load_labelled("dsprites-style", "shape", profile, 0, device)
    run = SupervisedSettings.for_profile(profile)
    parts = supervised.training_parts(run, labelled, device)
    model, step, batches = parts.model, parts.step, parts.batches
    test = labelled.test_images(0, 2000)
    truth = labelled.y_test[: len(test)]

    def accuracy() -> float:
        model.eval()
        with torch.no_grad():
            return float((model.classify(test).argmax(1) == truth).float().mean())

    return _until(step, batches, accuracy, DISTIB_TARGET, max_steps, every, device)


def gan_time_to_quality(device: torch.device, max_steps: int, every: int = 250) -> dict:
    """Training seconds (evaluation excluded) for TC-GAN, the book's way in this device's profile,
    to reach a FactorVAE score of :data:`GAN_TARGET` (a reduced protocol: 1000 votes)."""
    profile = _profile(device)
    source = load_ground_truth("dsprites-style", profile)
    run = GanSettings.for_profile(profile)
    parts = gan.training_parts(run, source, device)
    model, step, next_batch = parts.model, parts.step, parts.batches

    def score() -> float:
        return metrics.factor_vae_score(source, model.encode, seed=0, num_train=1000,
                                        num_eval=500, num_variance_estimate=2000)["eval_accuracy"]

    return _until(step, next_batch, score, GAN_TARGET, max_steps, every, device)


def _until(step, next_batch, measure, target: float, max_steps: int, every: int,
           device: torch.device) -> dict:
    seconds, done, value = 0.0, 0, float("nan")
    trace = []
    while done < max_steps:
        _sync(device)
        start = time.perf_counter()
        for _ in range(min(every, max_steps - done)):
            step(next_batch())
        _sync(device)
        seconds += time.perf_counter() - start
        done = min(done + every, max_steps)
        value = measure()
        trace.append([done, round(value, 4)])
        if value >= target:
            break
    return {"target": target, "reached": value >= target, "steps": done,
            "train_seconds": round(seconds, 2), "last_value": round(value, 4), "trace": trace}


def run(
    device: str | torch.device | None = None,
    quality: bool = False,
    timing: dict | None = None,
    host_count: int = 20_000,
    max_steps: dict | None = None,
    models: tuple[str, ...] = ("distib", "gan"),
) -> dict:
    """The whole benchmark on one device; returns the record that ``bench`` prints and saves."""
    dev = config.get_device(device)
    timing = {"warmup": 5, "steps": 20, "repeats": 5, **(timing or {})}
    workers = 2 if dev.type == "cuda" else 0
    record: dict = {
        "what": "training images/s: the public-code way (batch 64, host DataLoader, fp32, eager) "
                "against the book's way (data on the device, the profile's batch, bf16 autocast "
                "and torch.compile on CUDA)",
        "device": str(dev),
        "profile_of_the_book_way": _profile(dev),
        "dry_run": config.dry_run(),
        "dataloader_workers": workers,
        "timing": timing,
    }
    benches = {"distib": bench_distib, "gan": bench_gan}
    unknown = set(models) - set(benches)
    if unknown:
        raise ValueError(f"Unknown benchmark model(s) {sorted(unknown)}; use distib and gan.")
    for name in models:
        result = benches[name](dev, timing, host_count, workers)
        # The ratio within each round, where both ways met the same machine.
        ratios = [book / public for book, public in zip(
            result["book"]["images_per_second_rounds"],
            result["public"]["images_per_second_rounds"])]
        result["speedup"] = round(statistics.median(ratios), 2)
        result["speedup_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
        record[name] = result
    if quality:
        limits = {"distib": 3000, "gan": 6000, **(max_steps or {})}
        record["time_to_quality"] = {
            "distib_accuracy_a": distib_time_to_quality(dev, limits["distib"]),
            "tcgan_factor_vae": gan_time_to_quality(dev, limits["gan"]),
        }
    record["environment"] = config.environment(dev)
    return record


def time_evaluate(
    classifiers: tuple[str, ...] = metrics.DCI_CLASSIFIERS,
    n_jobs: int = 2,
    code_dims: int = 10,
    seed: int = 0,
    data: metrics.GroundTruthLike | None = None,
    **sizes: int,
) -> dict:
    """The cost of the metrics protocol itself: :func:`disentangle.metrics.evaluate` with all its
    defaults (or the ``sizes`` given, such as ``num_train``) on ``data``, by default the full
    dSprites-style grid, once per DCI classifier. The code is a fixed random projection of the
    pixels to ``code_dims`` numbers, an encoder that costs almost nothing, so the time is the
    protocol's (sampling, rendering lookups, classifiers), not a model's."""
    if data is None:
        from disentangle.data import DSpritesStyle

        data = DSpritesStyle()
        data.materialize()
    pixels = int(np.prod(data.image_shape))
    projection = torch.randn(pixels, code_dims, generator=torch.Generator().manual_seed(seed))
    projection /= math.sqrt(pixels)

    def encode(images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ projection

    runs = {}
    for classifier in classifiers:
        result = metrics.evaluate(data, encode, seed=seed, dci_classifier=classifier,
                                  n_jobs=n_jobs, **sizes)
        runs[classifier] = {
            "seconds": result["seconds"],
            "scores": {k: result[k] for k in ("mig", "dci_disentanglement", "dci_completeness",
                                              "dci_informativeness", "beta_vae_eval",
                                              "factor_vae_eval")},
            "dci_importance": result["dci_importance"],
            "factors": result["factors"],
        }
    return {
        "what": f"metrics.evaluate, a {code_dims}-dimensional random projection of the pixels as "
                "the code",
        "data": repr(data),
        "n_jobs": n_jobs,
        "seed": seed,
        "sizes": {**{k: v for k, v in metrics.DEFAULTS.items() if k != "dci_classifier"},
                  **sizes},
        "runs": runs,
        "environment": config.environment("cpu"),
    }


def _timed_study(path: Path, workers: int, scratch: Path) -> dict:
    """Run the study file ``path`` with ``workers`` workers in a fresh store under ``scratch``
    (Ray started and stopped inside), and time it whole."""
    from disentangle import studies

    study = studies.load_study(path)
    store = scratch / f"{study.name}-{workers}"
    started = time.perf_counter()
    record = studies.run_study(study, workers=workers, store=store,
                               results=store / "results.json", progress=False)
    total = time.perf_counter() - started
    if record["counts"]["finished"] != len(study.runs):
        raise RuntimeError(f"{path.name} did not finish every run: {record['counts']}")
    timing = record["timing"]
    return {"runs": len(study.runs), "workers": workers, "total_seconds": round(total, 2),
            "ray_start_seconds": timing["ray_start_seconds"],
            "runs_phase_seconds": timing["wall_seconds"],
            "inside_runs_seconds": round(timing["run_seconds"], 2)}


def time_studies(studies_dir: str | Path) -> dict:
    """The cost of the study machinery on this machine, from fresh run stores:

    - ``overhead``: ``studies/overhead.toml`` (20 runs of one training step) with one worker. The
      overhead per run is the time of the run phase (first task sent to last result) not spent
      inside the runs, over the number of runs; Ray's start, once per study, is given apart and
      also spread over the runs (``per_run_with_start_seconds``);
    - ``parallel``: two studies of 8 smoke runs, ``smoke.toml`` (runs of about a second, so Ray's
      start weighs most) and ``gan_smoke.toml`` (about half a minute each), each with one worker
      and with two, and the ratio of their times, whole (Ray's start included) and for the run
      phase alone."""
    import tempfile

    folder = Path(studies_dir)
    parallel = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        overhead = _timed_study(folder / "overhead.toml", 1, scratch)
        for name in ("smoke", "gan_smoke"):
            one = _timed_study(folder / f"{name}.toml", 1, scratch)
            two = _timed_study(folder / f"{name}.toml", 2, scratch)
            parallel[name] = {
                "one_worker": one,
                "two_workers": two,
                "ratio_total": round(two["total_seconds"] / one["total_seconds"], 3),
                "ratio_runs_phase": round(two["runs_phase_seconds"] / one["runs_phase_seconds"],
                                          3),
            }
    n = overhead["runs"]
    outside = overhead["runs_phase_seconds"] - overhead["inside_runs_seconds"]
    overhead["per_run_seconds"] = round(outside / n, 3)
    overhead["per_run_with_start_seconds"] = round(
        (overhead["total_seconds"] - overhead["inside_runs_seconds"]) / n, 3)
    return {
        "what": "the cost of python -m disentangle study on this machine (local Ray)",
        "overhead": overhead,
        "parallel": parallel,
        "environment": config.environment("cpu"),
    }


def study_table(record: dict) -> str:
    overhead = record["overhead"]
    lines = [
        f"overhead per run ({overhead['runs']} trivial runs, 1 worker): "
        f"{overhead['per_run_seconds']:.2f} s; with Ray's start "
        f"({overhead['ray_start_seconds']:.1f} s) spread over the runs: "
        f"{overhead['per_run_with_start_seconds']:.2f} s",
    ]
    for name, timing in record["parallel"].items():
        lines.append(
            f"{name} ({timing['one_worker']['runs']} runs): 1 worker "
            f"{timing['one_worker']['total_seconds']:.1f} s, 2 workers "
            f"{timing['two_workers']['total_seconds']:.1f} s: ratio {timing['ratio_total']:.2f} "
            f"whole, {timing['ratio_runs_phase']:.2f} for the run phase")
    return "\n".join(lines)


def evaluate_table(record: dict) -> str:
    """:func:`time_evaluate`'s record as a plain-text table of seconds."""
    lines = [f"{'DCI classifier':15s} {'total s':>8s} {'DCI s':>7s} {'BetaVAE s':>10s} "
             f"{'FactorVAE s':>12s}"]
    for classifier, run in record["runs"].items():
        sec = run["seconds"]
        lines.append(f"{classifier:15s} {sec['total']:8.1f} {sec['dci']:7.1f} "
                     f"{sec['beta_vae']:10.1f} {sec['factor_vae']:12.1f}")
    return "\n".join(lines)


def table(record: dict) -> str:
    """The record as a plain-text table: images/s, peak memory and the speed-up per model."""
    lines = [f"device: {record['device']}",
             f"{'model':8s} {'way':8s} {'batch':>6s} {'images/s':>11s} {'peak MB':>9s}"]
    for name in ("distib", "gan"):
        if name not in record:
            continue
        for way in ("public", "book"):
            r = record[name][way]
            peak = "n/a" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:,.0f}"
            lines.append(f"{name:8s} {way:8s} {r['batch_size']:6d} "
                         f"{r['images_per_second']:11,.0f} {peak:>9s}")
        low, high = record[name]["speedup_range"]
        lines.append(f"{name:8s} speed-up {record[name]['speedup']:.2f}x (rounds {low:.2f} to "
                     f"{high:.2f})")
    for name, result in record.get("time_to_quality", {}).items():
        state = "reached" if result["reached"] else "NOT reached"
        lines.append(f"{name}: {state} {result['target']} after {result['steps']} steps, "
                     f"{result['train_seconds']:.1f} s of training (last {result['last_value']})")
    return "\n".join(lines)


def save(record: dict, out: str | Path) -> Path:
    return runs.write_json(out, record)
