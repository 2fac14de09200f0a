"""The command line: ``python -m disentangle <command>``.

- ``env`` prints the profile and device that a run would use here and the environment record that
  results files carry;
- ``materialize`` renders the full dSprites-style grid into the cache (once), measures how long
  that takes and how much memory, and how fast random batches come from the grid on a device;
- ``train MODEL`` (a supervised model: distib, twostep, vib, disenib; a GAN: infogan, tcgan; a
  VAE: vae, betavae, btcvae, factorvae, annealedvae) trains a model and writes ``metrics.json``,
  ``history.json`` and a checkpoint (from which an interrupted run resumes) to ``--out``; the
  GANs and VAEs also write a traversal figure;
- ``study`` runs a study file (groups of settings x seeds) as tasks on Ray, here or on a cluster,
  and writes its results file with paired statistics (see :mod:`disentangle.studies`);
- ``bench`` times training steps the public-code way and the book's way (see
  :mod:`disentangle.bench`);
- ``time-study`` times the study machinery (see :func:`disentangle.bench.time_studies`);
- ``restamp`` carries finished runs across a change of code proved to change no number
  (:func:`disentangle.runs.restamp`);
- ``time-evaluate`` times :func:`disentangle.metrics.evaluate` with its defaults, once per DCI
  classifier.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from disentangle import config, data, nets, registry, runs


def _env(args: argparse.Namespace) -> int:
    profile = config.resolve_profile(args.profile)
    device = config.get_device(args.device)
    print(json.dumps({"profile": profile, **config.environment(device)}, indent=2))
    return 0


def _peak_memory_gb() -> float | None:
    """The process's peak resident memory, where the platform reports it (not on Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def _materialize(args: argparse.Namespace) -> int:
    from disentangle.data import DSpritesStyle

    device = config.get_device(args.device)
    grid = DSpritesStyle()
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        grid.materialize(cache_dir=scratch if args.fresh else None, progress=not args.quiet)
        seconds = time.perf_counter() - start
    peak_gb = _peak_memory_gb()
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
        "peak_memory_gb": None if peak_gb is None else round(peak_gb, 3),
        "packed_mb": round(grid.materialize().bits.numel() / 2**20, 1),
        "batch": args.batch,
        "sampling_images_per_second_median": round(rates[len(rates) // 2]),
        "environment": config.environment(device),
    }
    print(json.dumps(record, indent=2))
    if args.out:
        runs.write_json(args.out, record)
    return 0


#: The flags that read better than --set, and the setting each one sets.
SHORTHANDS = {
    "label": "label", "beta": "beta", "activation": "activation", "estimator": "estimator",
    "tc_weight": "tc_weight", "info_weight": "info_weight",
}


def _train(args: argparse.Namespace) -> int:
    from disentangle import family

    profile = config.resolve_profile(args.profile)
    chosen = registry.parse_assignments(args.model, args.set or [])
    named = sorted(set(chosen) & {"model", "data", "seed"})
    if named:
        raise ValueError(f"--set {named[0]}=... is given by the command's own argument: use "
                         "MODEL, --data and --seed.")
    for flag, name in SHORTHANDS.items():
        if getattr(args, flag) is not None:
            registry.check_names(args.model, [name])
            chosen[name] = getattr(args, flag)
    # Built here, before anything loads or trains, so that a bad setting costs nothing.
    asked = registry.build_settings(args.model, profile, args.preset, data=args.data,
                                    seed=args.seed, **chosen)
    out = Path(args.out) if args.out else runs.default_dir(asked, profile, root=".")
    # One process trains a run folder at a time; a second one is told which holds it.
    with runs.exclusive(out / "lock", f"run folder {out}"):
        _, result = family.run(registry.family_of(args.model), asked, profile, out,
                               config.get_device(args.device), progress=not args.quiet,
                               load_stale=args.load_stale)
    shown = {k: v for k, v in result["metrics"].items()
             if isinstance(v, float) or (isinstance(v, dict) and v
                                          and all(isinstance(x, float) for x in v.values()))}
    paper_beta = getattr(asked, "paper_beta", None)
    if paper_beta is not None:  # the scale the DisTIB paper's beta is on
        shown["paper_beta"] = paper_beta
    written = out / "metrics.json"
    # The record says how to reproduce it (a finished run read back keeps the file as it was).
    command = "python -m disentangle " + " ".join(args.argv)
    if result.get("command") != command:
        runs.write_json(written, {**result, "command": command})
    print(json.dumps(shown, indent=2))
    print(f"wrote {written}")
    return 0


def _study(args: argparse.Namespace) -> int:
    from disentangle import studies

    # Checked whole before Ray starts or anything runs.
    study = studies.load_study(args.file, profile=args.profile)
    path = Path(args.results) if args.results else studies.results_path(study)
    record = studies.run_study(
        study, workers=args.workers, address=args.address, store=args.store, results=path,
        cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
        progress=not args.quiet, command="python -m disentangle " + " ".join(args.argv),
    )
    print(studies.table(record))
    print(f"wrote {path}")
    failed = studies.failures(record)
    if failed:
        print(f"error: {len(failed)} of {len(record['runs'])} runs failed (messages above, in "
              f"{path} and in each run's log.txt); the others finished", file=sys.stderr)
    # The exit status is the number of failed runs (at most 100): 0 when every run finished.
    return min(len(failed), 100)


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


def _time_study(args: argparse.Namespace) -> int:
    from disentangle import bench

    record = bench.time_studies(runs.repository_root() / "studies")
    record["command"] = "python -m disentangle " + " ".join(args.argv)
    print(bench.study_table(record))
    out = args.out or config.data_dir() / "results" / "study_overhead_cpu.json"
    print(f"wrote {bench.save(record, out)}")
    return 0


def _restamp(args: argparse.Namespace) -> int:
    check = runs.read_json(args.check, "a comparison record", "give the file that "
                           "tools/same_numbers.py compare --record wrote.")
    store = Path(args.store) if args.store else runs.repository_root()
    results = Path(args.results) if args.results else config.data_dir() / "results"

    def complete(held: dict) -> dict:
        """The whole settings of a run's record under today's code (new fields at defaults)."""
        kind = registry.family_of(held["model"]).settings
        return kind.for_profile(held["profile"], **held["settings"]).as_dict()

    counts = runs.restamp(check, store, results, complete)
    print(f"restamped {counts['run_folders']} run folders under {store / 'runs'} and "
          f"{counts['study_runs']} study runs in {results}")
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
    fit = commands.add_parser(
        "train", help="train a model and evaluate it",
        description="Train a model in its folder of the run store and evaluate it. Any setting of "
                    "the model's family is set with --set NAME=VALUE (repeatable); the other "
                    "setting flags are shorthands for --set.",
    )
    fit.add_argument("model", choices=list(registry.models()))
    fit.add_argument("--data", default="dsprites-style",
                     help="; ".join(f"{', '.join(fam.models)}: {', '.join(fam.data)}"
                                    for fam in registry.FAMILIES)
                     + f" ({data.registry.help_text()})")
    fit.add_argument("--profile", help="smoke, cpu or gpu (default: automatic)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="any setting of the model's family (disentangle.settings), e.g. "
                          "--set beta=0.01 --set activation=leaky_relu; repeatable")
    fit.add_argument("--label",
                     help="supervised models: the factor used as the label (--set label=)")
    fit.add_argument("--beta", type=float,
                     help="distib, twostep, vib: weight of the KL terms (--set beta=)")
    fit.add_argument("--preset", help="distib, twostep, vib, disenib: a named set of settings "
                                      "(paper: the DisTIB paper's configuration), before --set")
    fit.add_argument("--activation", choices=list(nets.ACTIVATIONS),
                     help="supervised models: every layer's activation (--set activation=)")
    fit.add_argument("--estimator", choices=["mws", "drt"],
                     help="tcgan: total-correlation estimator (--set estimator=)")
    fit.add_argument("--tc-weight", type=float,
                     help="tcgan: weight of the TC penalty (--set tc_weight=)")
    fit.add_argument("--info-weight", type=float,
                     help="infogan, tcgan: weight of the information term (--set info_weight=)")
    fit.add_argument("--out", help="run folder (default: runs/MODEL_DATA_PROFILE_seedN, with a "
                                   "hash of the settings that differ from the profile's)")
    fit.add_argument("--load-stale", action="store_true",
                     help="use a run trained by other code as it is (with a warning) instead of "
                          "training it again")
    fit.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(run=_train)
    study = commands.add_parser(
        "study", help="run a study file: groups x seeds on Ray, with paired statistics",
        description="Run every run of a study file (studies/NAME.toml) that is not finished yet, "
                    "as tasks on Ray, and write data/results/study_NAME.json as runs finish. "
                    "Stopped at any moment, the same command resumes: finished runs are read, "
                    "interrupted ones resume from their checkpoints. The exit status is the "
                    "number of failed runs (at most 100).",
    )
    study.add_argument("file", help="the study file, e.g. studies/smoke.toml")
    study.add_argument("--workers", type=int, help="at most this many runs at once (default: as "
                                                   "many as the Ray cluster's CPUs/GPUs hold)")
    study.add_argument("--address", help="join a running Ray cluster at HOST:PORT (or 'auto' for "
                                         "the one `ray start` started here); default: start Ray "
                                         "on this machine")
    study.add_argument("--profile", help="run the study in another profile than its file names "
                                         "(its results file then ends in _PROFILE)")
    study.add_argument("--results", help="results file (default: data/results/study_NAME.json)")
    study.add_argument("--store", help="folder whose runs/ holds the runs (default: each "
                                       "machine's repository; a shared folder on a cluster)")
    study.add_argument("--cpus-per-run", type=float, default=1,
                       help="CPUs each run declares to Ray, and PyTorch's threads (default 1)")
    study.add_argument("--gpus-per-run", type=float,
                       help="GPUs each run declares (default: 1 on a cluster with GPUs, else 0; "
                            "0.25 packs four runs on a GPU)")
    study.add_argument("--quiet", action="store_true", help="no progress bar")
    study.set_defaults(run=_study)
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
    cost = commands.add_parser(
        "time-study", help="time the study machinery: overhead per run, one worker against two"
    )
    cost.add_argument("--out", help="JSON record (default: data/results/study_overhead_cpu.json)")
    cost.set_defaults(run=_time_study)
    stamp = commands.add_parser(
        "restamp", help="carry finished runs across a code change proved to change no number",
        description="Read the record of tools/same_numbers.py compare (seed 0 of every group of "
                    "every recorded study, trained by the old and the new code on one machine, "
                    "every number equal) and stamp the runs the old code made with the new "
                    "code's fingerprints, so that they stay current. Refused unless every number "
                    "matched; runs of any other code stay stale.",
    )
    stamp.add_argument("check", help="the comparison record, e.g. data/results/same_numbers_*.json")
    stamp.add_argument("--store", help="folder whose runs/ holds the runs (default: the "
                                       "repository)")
    stamp.add_argument("--results", help="folder of the study results files (default: "
                                         "data/results)")
    stamp.set_defaults(run=_restamp)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a library error (bad settings, a missing file, a non-finite loss, a
    refused folder) is answered with one line on stderr and exit code 2, not a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except KeyboardInterrupt:
        # The training loop has checkpointed before this reaches here.
        print("interrupted: run the same command again to resume from the checkpoint",
              file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, KeyError, OSError, FloatingPointError) as err:
        message = " ".join(str(err).split())  # one line, whatever the message's layout
        print(f"error: {message}", file=sys.stderr)
        return 2
