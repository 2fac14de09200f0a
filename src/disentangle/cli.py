"""The command line: ``python -m disentangle <command>``.

- ``env`` prints the profile and device that a run would use here and the environment record that
  results files carry;
- ``materialize`` renders the full dSprites-style grid into the cache (once), measures how long
  that takes and how much memory, and how fast random batches come from the grid on a device;
- ``train distib|vib|infogan|tcgan`` trains a model and writes ``metrics.json``, ``history.json``
  and a checkpoint (from which an interrupted run resumes) to ``--out``; the GANs also write a
  traversal figure;
- ``bench`` times training steps the public-code way and the book's way (see
  :mod:`disentangle.bench`);
- ``time-evaluate`` times :func:`disentangle.metrics.evaluate` with its defaults, once per DCI
  classifier.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from disentangle import config, models


def _env(args: argparse.Namespace) -> int:
    profile = config.resolve_profile(args.profile)
    device = config.get_device(args.device)
    print(json.dumps({"profile": profile, **config.environment(device)}, indent=2))
    return 0


def _materialize(args: argparse.Namespace) -> int:
    from disentangle.data import DSpritesStyle

    device = config.get_device(args.device)
    grid = DSpritesStyle()
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        grid.materialize(cache_dir=scratch if args.fresh else None, progress=not args.quiet)
        seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux
    grid.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    grid.batch(args.batch, generator, device)  # warm-up: first kernel launches, allocations
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            grid.batch(args.batch, generator, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    rates = sorted(args.batch * args.steps / t for t in times)
    record = {
        "what": "materialise the full dSprites-style grid; sample random batches from it",
        "command": "python -m disentangle " + " ".join(args.argv),
        "images": len(grid),
        "rendered_fresh": bool(args.fresh),
        "materialize_seconds": round(seconds, 2),
        "peak_memory_gb": round(peak_gb, 3),
        "packed_mb": round(grid.materialize().bits.numel() / 2**20, 1),
        "batch": args.batch,
        "sampling_images_per_second_median": round(rates[len(rates) // 2]),
        "environment": config.environment(device),
    }
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from disentangle import gan, supervised

    profile = config.resolve_profile(args.profile)
    out = args.out or str(supervised.default_out_dir(
        args.model, args.data, profile, args.seed, root=".",
        decoder_trains_a=not args.stop_reconstruction_at_a, activation=args.activation or "relu",
        beta=args.beta,
    ))
    gan_options = {"estimator": args.estimator, "tc_weight": args.tc_weight,
                   "info_weight": args.info_weight}
    if args.model in gan.MODELS:
        if args.label or args.beta is not None or args.activation or args.stop_reconstruction_at_a:
            raise ValueError(
                "--label, --beta and --activation belong to distib and vib and "
                "--stop-reconstruction-at-a to distib, not to the GANs."
            )
        options = {k: v for k, v in gan_options.items() if v is not None}
        _, _, metrics = gan.run(args.model, args.data, profile=profile, seed=args.seed, out_dir=out,
                          device=args.device, progress=not args.quiet, **options)
        shown = metrics["metrics"]
        shown = {k: v for k, v in shown.items() if isinstance(v, float)}
    else:
        given = [k for k, v in gan_options.items() if v is not None]
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"{flags} belong(s) to infogan and tcgan, not to {args.model}.")
        if args.stop_reconstruction_at_a and args.model != "distib":
            raise ValueError("--stop-reconstruction-at-a belongs to distib: VIB has no decoder.")
        chosen = {"decoder_trains_a": False} if args.stop_reconstruction_at_a else {}
        if args.activation:
            chosen["activation"] = args.activation
        metrics = supervised.run(
            args.model, args.data, label=args.label, profile=profile, seed=args.seed,
            beta=args.beta, out_dir=out, device=args.device, progress=not args.quiet, **chosen,
        )
        shown = {k: v for k, v in metrics.items() if k not in ("environment", "config")}
    written = Path(out) / "metrics.json"
    # The record says how to reproduce it.
    record = json.loads(written.read_text())
    record["command"] = "python -m disentangle " + " ".join(args.argv)
    written.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(shown, indent=2))
    print(f"wrote {written}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from disentangle import bench

    device = config.get_device(args.device)
    timing = {"warmup": args.warmup, "steps": args.steps, "repeats": args.repeats}
    record = bench.run(device, quality=args.quality, timing=timing, models=tuple(args.models),
                       max_steps={"distib": args.max_steps, "gan": args.max_steps}
                       if args.max_steps else None)
    record["command"] = "python -m disentangle " + " ".join(args.argv)
    print(bench.table(record))
    out = args.out or config.data_dir() / "results" / f"bench_{device.type}.json"
    print(f"wrote {bench.save(record, out)}")
    return 0


def _time_evaluate(args: argparse.Namespace) -> int:
    from disentangle import bench

    record = bench.time_evaluate(tuple(args.classifiers), n_jobs=args.n_jobs,
                                 code_dims=args.code_dims, seed=args.seed)
    record["command"] = "python -m disentangle " + " ".join(args.argv)
    print(bench.evaluate_table(record))
    out = args.out or config.data_dir() / "results" / "evaluate_cpu.json"
    print(f"wrote {bench.save(record, out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m disentangle", description="The book's tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    env = commands.add_parser("env", help="show the profile, device and versions in force")
    env.add_argument("--profile", choices=config.PROFILES, help="override the automatic profile")
    env.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    env.set_defaults(run=_env)
    grid = commands.add_parser(
        "materialize", help="render the dSprites-style grid into the cache and time it"
    )
    grid.add_argument("--device", help="where to hold the grid for sampling (default: auto)")
    grid.add_argument("--fresh", action="store_true", help="render anew, ignoring the cache")
    grid.add_argument("--batch", type=int, default=4096, help="images per sampled batch")
    grid.add_argument("--steps", type=int, default=50, help="batches per timed repeat")
    grid.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    grid.add_argument("--out", help="also write the record to this JSON file")
    grid.add_argument("--quiet", action="store_true", help="no progress bar")
    grid.set_defaults(run=_materialize)
    fit = commands.add_parser("train", help="train a model and evaluate it")
    fit.add_argument("model", choices=["distib", "vib", "infogan", "tcgan"])
    fit.add_argument("--data", default="dsprites-style",
                     help="distib, vib: dsprites-style, dsprites-style-upright, styled-digits, "
                          "digits, mnist or fashion-mnist; infogan, tcgan: dsprites-style, "
                          "dsprites-style-tied or styled-digits")
    fit.add_argument("--label", help="distib, vib: the factor used as the label")
    fit.add_argument("--profile", help="smoke, cpu or gpu (default: automatic)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--beta", type=float, help="distib, vib: weight of the compression terms")
    fit.add_argument("--stop-reconstruction-at-a", action="store_true",
                     help="distib: the reconstruction does not train A's encoder (the ablation of "
                          "chapter 05; the paper trains every term jointly)")
    fit.add_argument("--activation", choices=list(models.ACTIVATIONS),
                     help="distib, vib: the networks' activation (default relu; chapter 05 trains "
                          "upright sprites with leaky_relu, which cannot fall silent)")
    fit.add_argument("--estimator", choices=["mws", "drt"],
                     help="tcgan: total-correlation estimator (default mws)")
    fit.add_argument("--tc-weight", type=float, help="tcgan: weight of the TC penalty")
    fit.add_argument("--info-weight", type=float,
                     help="infogan, tcgan: weight of the information term (default 1)")
    fit.add_argument("--out", help="output folder (default: runs/MODEL_DATA_PROFILE_seedN)")
    fit.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(run=_train)
    speed = commands.add_parser(
        "bench", help="time training steps the public-code way and the book's way"
    )
    speed.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    speed.add_argument("--out", help="JSON record (default: data/results/bench_DEVICE.json)")
    speed.add_argument("--quality", action="store_true",
                       help="also time DisTIB and TC-GAN to their quality targets")
    speed.add_argument("--models", nargs="+", default=["distib", "gan"],
                       choices=["distib", "gan"], help="which models to time")
    speed.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    speed.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    speed.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    speed.add_argument("--max-steps", type=int, help="cap on the time-to-quality runs")
    speed.set_defaults(run=_bench)
    protocol = commands.add_parser(
        "time-evaluate", help="time metrics.evaluate with its defaults on dSprites-style"
    )
    protocol.add_argument("--classifiers", nargs="+", default=["gbt", "hist"],
                          choices=["gbt", "hist"], help="DCI classifiers to time, one run each")
    protocol.add_argument("--n-jobs", type=int, default=2, help="factors fitted in parallel")
    protocol.add_argument("--code-dims", type=int, default=10, help="size of the projected code")
    protocol.add_argument("--seed", type=int, default=0)
    protocol.add_argument("--out", help="JSON record (default: data/results/evaluate_cpu.json)")
    protocol.set_defaults(run=_time_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except (ValueError, RuntimeError, KeyError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
