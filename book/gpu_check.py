#!/usr/bin/env python3
"""A short, timed check of the gpu profile on one CUDA GPU, stage by stage.

Run from the repository root (or a snapshot of it made with ``git archive``):

    python3 book/gpu_check.py --out DIR            # on a machine with a CUDA GPU
    python3 book/gpu_check.py --local --out DIR    # the same stages as a dry run on the CPU
                                                   # (DISENTANGLE_DRY_RUN=1), to test this script

Stages, each in its own process under ``timeout`` (its own limit, and never past the overall
``--deadline``), in this order: ``nvidia-smi``; ``python -m disentangle env``; ``materialize``
(render the full dSprites-style grid into the cache and time sampling on the GPU); ``bench``
(the public-code way against the book's way); ``bench --quality`` apart (the time to quality,
DisTIB's and TC-GAN's, at most 3,000 steps each); then one
gpu-profile training run per family: DisTIB as chapter 05 trains it (``--data mnist-5k --preset
paper``, the profile's full 6,000 steps), TC-GAN and beta-VAE on the full dSprites-style grid with
fewer steps than the profile's 20,000 and 30,000 (``--set steps=N``; the record projects the full
run from the measured rate). The GAN and the VAE are evaluated with the gpu protocol's sizes but
DCI's ``hist`` classifier instead of ``gbt``: gbt's DCI alone took 143 s with 2 jobs on 2 cores
(data/results/evaluate_cpu.json) and the gpu protocol fits it with one job.

Writes into DIR, rewriting ``summary.json`` after every stage so that a run cut short still leaves
its record: ``gpu_check.log`` (every stage's output), ``summary.json``, ``bench_DEVICE.json``,
``bench_quality_DEVICE.json``, ``materialize_cuda.json``, ``nvidia_smi.csv`` (utilisation,
memory, power and SM clock each second) and ``runs.tar.gz`` (each training run's folder without
its checkpoint).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
RESULT = "GPUCHECK_RESULT "

#: Steps of the reduced GAN and VAE runs (the gpu profile's own: 20,000 and 30,000).
GAN_STEPS = 2000
VAE_STEPS = 3000
FULL_STEPS = {"distib": 6000, "tcgan": 20000, "betavae": 30000}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# The child: one `python -m disentangle ...` command in this process, with the GPU's peak memory
# and a traceback (the CLI answers library errors with one line) reported after it.
# --------------------------------------------------------------------------------------------
def child(argv: list[str], hist_dci: bool) -> int:
    started = time.perf_counter()
    rc, error = 1, None
    try:
        import torch

        if argv and argv[0] == "diagnose":  # not a disentangle command: see diagnose()
            diagnose(int(argv[1]), argv[2])
            argv = ["env"]

        from disentangle import cli

        if hist_dci:  # the protocol's sizes with DCI's hist classifier (metrics.protocol)
            from disentangle import metrics

            original = metrics.protocol
            metrics.protocol = lambda profile: {**original(profile), "dci_classifier": "hist"}
        args = cli.build_parser().parse_args(argv)
        args.argv = argv
        rc = args.run(args)
    except SystemExit as err:
        rc = err.code if isinstance(err.code, int) else 1
        error = f"SystemExit({err.code})"
    except BaseException as err:  # noqa: B036 - report anything, then fail the stage
        traceback.print_exc()
        error = f"{type(err).__name__}: {' '.join(str(err).split())[:500]}"
        rc = 1
    report = {"rc": rc, "error": error, "seconds": round(time.perf_counter() - started, 2)}
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            report["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            report["cuda_peak_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    except Exception as err:  # noqa: BLE001
        report["cuda_peak_error"] = repr(err)
    print(RESULT + json.dumps(report), flush=True)
    return rc if isinstance(rc, int) else 1


def diagnose(steps: int, out_file: str) -> None:
    """Why a supervised run of the gpu profile does not learn: DisTIB's conv model on the
    dSprites-style shapes (the bench's time-to-quality run) trained ``steps`` steps the book's way
    and with one thing changed at a time (no bf16 autocast, no torch.compile, batch 128), and the
    paper preset on mnist-5k (chapter 05) the book's way and at batch 128; test accuracy from A
    and the last loss terms of each. Written to ``out_file`` after every variant."""
    import functools

    import torch

    from disentangle import config, supervised, train
    from disentangle.data import load_labelled
    from disentangle.supervised import SupervisedSettings

    dev = config.get_device()
    profile = "gpu"
    variants = [  # (name, data, preset, amp, compiled, overrides)
        ("dsprites-style shape: book way (bf16, compiled, batch 1024)", "dsprites-style", None,
         None, True, {}),
        ("dsprites-style shape: fp32, compiled, batch 1024", "dsprites-style", None, False, True,
         {}),
        ("dsprites-style shape: bf16, eager, batch 1024", "dsprites-style", None, None, False, {}),
        ("dsprites-style shape: bf16, compiled, batch 128", "dsprites-style", None, None, True,
         {"batch_size": 128}),
        ("mnist-5k paper preset: book way (bf16, compiled, batch 1024)", "mnist-5k", "paper",
         None, True, {}),
        ("mnist-5k paper preset: bf16, compiled, batch 128", "mnist-5k", "paper", None, True,
         {"batch_size": 128}),
    ]
    record: dict = {"steps": steps, "variants": []}
    data_cache: dict = {}
    original_step, original_compile = train.gradient_step, train.compile_or_fallback
    for name, data, preset, amp, compiled, overrides in variants:
        started = time.perf_counter()
        entry: dict = {"variant": name}
        try:
            run = SupervisedSettings.for_profile(profile, preset=preset, data=data, **overrides)
            entry["settings"] = {k: v for k, v in run.as_dict().items() if k in (
                "batch_size", "lr", "hidden", "width", "encoder", "decoder", "likelihood",
                "reconstruction_weight", "beta")}
            entry["scaled_lr"] = train.scaled_lr(run.lr, run.batch_size, 128)
            if data not in data_cache:
                data_cache[data] = load_labelled(data, run.label, profile, 0, dev)
            labelled = data_cache[data]
            train.gradient_step = functools.partial(original_step, amp=amp)
            if not compiled:
                train.compile_or_fallback = lambda module, example: module
            try:
                parts = supervised.training_parts(run, labelled, dev)
                model, step, batches = parts.model, parts.step, parts.batches
            finally:
                train.gradient_step, train.compile_or_fallback = original_step, original_compile
            test = labelled.test_images(0, 2000)
            truth = labelled.y_test[: len(test)]
            trace, terms = [], {}
            for done in range(1, steps + 1):
                terms = step(batches())
                if done in (25, 50, 100, 200, 400, 800) or done == steps:
                    model.eval()
                    with torch.no_grad():
                        accuracy = float((model.classify(test).argmax(1) == truth).float().mean())
                    trace.append([done, round(accuracy, 4)])
            entry.update(accuracy_trace=trace,
                         last_terms={k: float(v) for k, v in terms.items()})
        except Exception as err:  # noqa: BLE001 - record it, try the next variant
            traceback.print_exc()
            entry["error"] = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        entry["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(entry), flush=True)
        record["variants"].append(entry)
        Path(out_file).write_text(json.dumps(record, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# The parent: stages, limits, the log and the record.
# --------------------------------------------------------------------------------------------
class Check:
    def __init__(self, out: Path, local: bool, deadline: float):
        self.out, self.local = out, local
        self.t0 = time.monotonic()
        self.deadline = deadline
        self.log = out / "gpu_check.log"
        self.device = "cpu" if local else "cuda"
        self.summary: dict = {
            "what": "a timed check of the gpu profile, stage by stage (book/gpu_check.py)",
            "mode": "local dry run on the CPU (DISENTANGLE_DRY_RUN=1), a test of the script"
                    if local else "the gpu profile on one CUDA GPU",
            "started_utc": now(),
            "commit": os.environ.get("GPUCHECK_COMMIT"),
            "script_command": " ".join([Path(sys.executable).name, *sys.argv]),
            "deadline_s": deadline,
            "stages": [],
        }

    def say(self, text: str) -> None:
        line = f"[gpu_check {time.monotonic() - self.t0:6.1f}s] {text}"
        print(line, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")

    def save(self) -> None:
        self.summary["updated_utc"] = now()
        self.summary["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")

    def run(self, name: str, argv: list[str], limit: float, shown: str,
            hist_dci: bool = False, extra: dict | None = None) -> dict:
        """One stage: ``argv`` (a disentangle command, run by :func:`child`) under ``timeout``."""
        left = self.deadline - (time.monotonic() - self.t0) - 5
        record = {"stage": name, "command": shown, **(extra or {})}
        if left < 15:
            record.update(status="skipped", reason=f"only {left:.0f} s left before the deadline")
            self.say(f"{name}: skipped, {left:.0f} s left")
            self.summary["stages"].append(record)
            self.save()
            return record
        limit = int(min(limit, left))
        cmd = ["timeout", "-k", "10", str(limit), sys.executable, str(HERE), "--child"]
        cmd += (["--hist-dci"] if hist_dci else []) + ["--", *argv]
        record["limit_s"] = limit
        self.say(f"{name}: start (limit {limit} s): {shown}")
        with self.log.open("a") as f:
            f.write(f"===== {name} =====\n")
            f.flush()
            offset = f.tell()
            started_epoch = time.time()
            start = time.monotonic()
            rc = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
            wall = time.monotonic() - start
        text = self.log.read_text(errors="replace")[offset:]
        result = {}
        for line in text.splitlines():
            if line.startswith(RESULT):
                result = json.loads(line[len(RESULT):])
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(RESULT)]
        record.update(
            status="ok" if rc == 0 else ("timed out" if rc in (124, 137) else "failed"),
            exit_status=rc, wall_s=round(wall, 1), epoch_start=round(started_epoch, 1),
            epoch_end=round(time.time(), 1),
            **{k: v for k, v in result.items() if k.startswith("cuda_")},
        )
        if rc in (124, 137):
            record["error"] = f"timed out: killed by timeout after {limit} s (exit {rc})"
            record["output_tail"] = lines[-15:]
        elif rc != 0:
            errors = [ln for ln in lines if "Error" in ln or "error" in ln]
            record["error"] = result.get("error") or (errors[-1] if errors else None) \
                or (lines[-1] if lines else None)
            record["output_tail"] = lines[-15:]
        fallbacks = [ln.strip()[:300] for ln in lines if "torch.compile failed" in ln]
        if fallbacks:
            record["compile_fallbacks"] = fallbacks
        warned = sorted({ln.strip()[:200] for ln in lines if "Warning" in ln})[:10]
        if warned:
            record["warnings"] = warned
        self.say(f"{name}: {record['status']} (exit {rc}) in {wall:.1f} s"
                 + (f": {record.get('error')}" if rc else ""))
        if rc != 0:
            for ln in record["output_tail"]:
                self.say(f"  | {ln[:300]}")
        self.summary["stages"].append(record)
        self.save()
        return record


def shell(check: Check, name: str, cmd: str, limit: int) -> str:
    """A plain shell command (nvidia-smi) whose output goes to the log and the record."""
    try:
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=limit)
        text, rc = out.stdout + out.stderr, out.returncode
    except (subprocess.TimeoutExpired, OSError) as err:
        text, rc = repr(err), 124
    with check.log.open("a") as f:
        f.write(f"===== {name} =====\n{text}\n")
    check.summary["stages"].append({"stage": name, "command": cmd, "exit_status": rc,
                                    "status": "ok" if rc == 0 else "failed",
                                    "output": text.strip()[-2000:]})
    check.save()
    return text if rc == 0 else ""


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def bench_numbers(record: dict) -> dict:
    keep = {}
    for name in ("distib", "gan"):
        if name in record:
            r = record[name]
            keep[name] = {
                "speedup": r["speedup"], "speedup_range": r["speedup_range"],
                **{f"{way}_images_per_second": r[way]["images_per_second"]
                   for way in ("public", "book")},
                **{f"{way}_batch": r[way]["batch_size"] for way in ("public", "book")},
                **{f"{way}_peak_memory_mb": r[way]["peak_memory_mb"]
                   for way in ("public", "book")},
            }
    for name, r in record.get("time_to_quality", {}).items():
        keep[name] = {k: r[k] for k in ("target", "reached", "steps", "train_seconds",
                                        "last_value")}
    return keep


def run_numbers(folder: Path, family: str) -> dict:
    """What a finished training run's folder says: steps, seconds, rate, the metrics."""
    metrics = read_json(folder / "metrics.json")
    history = read_json(folder / "history.json")
    if metrics is None:
        return {"metrics_json": None, "note": f"no metrics.json in {folder}"}
    steps = metrics["settings"]["steps"]
    seconds = metrics.get("train_seconds")
    keep = {"run_dir": str(folder), "steps": steps, "batch_size": metrics["settings"]["batch_size"],
            "train_seconds": round(seconds, 2) if seconds else seconds,
            "wall_seconds_in_metrics": round(metrics.get("wall_seconds", 0), 2)}
    if seconds:
        keep["steps_per_second"] = round(steps / seconds, 1)
        keep["images_per_second"] = round(steps * metrics["settings"]["batch_size"] / seconds)
        full = FULL_STEPS.get(family)
        if full and full != steps:
            keep["projected_train_seconds_at_profile_steps"] = {
                "steps": full, "seconds": round(full * seconds / steps, 1)}
    scores = metrics.get("metrics", metrics)
    keep["scalar_metrics"] = {k: v for k, v in scores.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(scores.get("seconds"), dict):
        keep["evaluation_seconds"] = scores["seconds"]
    if history and "terms" in history:
        keep["last_logged_terms"] = {k: v[-1] for k, v in history["terms"].items() if v}
    keep["metrics_json"] = {k: v for k, v in metrics.items() if k != "environment"}
    return keep


def gpu_windows(check: Check) -> None:
    """Per stage, the most GPU memory in use and the mean utilisation nvidia-smi logged."""
    path = check.out / "nvidia_smi.csv"
    if not path.exists():
        return
    rows = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            stamp = dt.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").replace(
                tzinfo=dt.timezone.utc).timestamp()
            rows.append((stamp, float(parts[1].split()[0]), float(parts[2].split()[0])))
        except (ValueError, IndexError):
            continue
    if not rows:
        return
    # nvidia-smi writes local time; the machine's clock is taken as UTC, checked here.
    skew = round(time.time() - dt.datetime.now().replace(tzinfo=dt.timezone.utc).timestamp())
    for stage in check.summary["stages"]:
        if "epoch_start" not in stage:
            continue
        inside = [r for r in rows
                  if stage["epoch_start"] <= r[0] + skew <= stage["epoch_end"]]
        if inside:
            stage["nvidia_smi"] = {
                "samples": len(inside),
                "gpu_util_mean_pct": round(sum(r[1] for r in inside) / len(inside), 1),
                "gpu_util_max_pct": max(r[1] for r in inside),
                "memory_used_max_mib": max(r[2] for r in inside),
            }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"))
    parser.add_argument("--local", action="store_true", help="dry run on the CPU")
    parser.add_argument("--deadline", type=float, default=460,
                        help="seconds for everything; no stage starts or runs past it")
    parser.add_argument("--only", help="comma-separated stages to run (env always runs): "
                        "materialize, bench, bench-quality, distib, tcgan, betavae, and "
                        "diagnose (only when named); default all but diagnose")
    parser.add_argument("--gan-steps", type=int, default=GAN_STEPS)
    parser.add_argument("--vae-steps", type=int, default=VAE_STEPS)
    parser.add_argument("--train-limit", type=int, help="limit of each training stage, seconds")
    parser.add_argument("--diagnose-steps", type=int, default=400,
                        help="steps of each variant of the 'diagnose' stage (only with --only)")
    parser.add_argument("--no-smi", action="store_true", help="no nvidia-smi log")
    parser.add_argument("--no-tar", action="store_true", help="no runs.tar.gz")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hist-dci", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.rest, args.hist_dci)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONUNBUFFERED"] = "1"
    if args.local:
        os.environ.update(DISENTANGLE_DRY_RUN="1", DISENTANGLE_PROFILE="gpu",
                          DISENTANGLE_DEVICE="cpu")
    else:
        os.environ["DISENTANGLE_PROFILE"] = "gpu"
    check = Check(out, args.local, args.deadline)
    wanted = set(args.only.split(",")) if args.only else None

    def chosen(stage: str) -> bool:
        if wanted is None or stage in wanted:
            return True
        check.summary["stages"].append({"stage": stage, "status": "not asked (--only)"})
        return False

    dev = check.device
    check.say(f"out {out}, device {dev}, deadline {args.deadline:.0f} s")

    smi = None
    smi_line = shell(check, "nvidia-smi", "nvidia-smi -L && nvidia-smi", 30)
    check.summary["nvidia_smi_L"] = smi_line.splitlines()[0] if smi_line else None
    if smi_line and not args.no_smi:
        smi = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used,power.draw,"
             "clocks.sm", "--format=csv", "-l", "1"],
            stdout=(out / "nvidia_smi.csv").open("w"), stderr=subprocess.DEVNULL)

    try:
        env = check.run("env", ["env", "--device", dev], 60,
                        f"python -m disentangle env --device {dev}")
        text = check.log.read_text(errors="replace").split("===== env =====")[-1]
        try:
            start, end = text.index("{"), text.index("\n}") + 2
            check.summary["environment"] = json.loads(text[start:end])
        except ValueError:
            check.summary["environment"] = None
        check.save()
        if env["status"] != "ok" and not args.local:
            check.say("env failed: the library does not import here; stopping")
            return 1

        if args.local:
            check.summary["stages"].append({"stage": "materialize", "status": "skipped",
                                            "reason": "local test: renders the full grid"})
        elif chosen("materialize"):
            mat = out / "materialize_cuda.json"
            record = check.run("materialize", ["materialize", "--device", "cuda", "--quiet",
                                               "--out", str(mat)], 120,
                               f"python -m disentangle materialize --device cuda --quiet --out "
                               f"{mat.name}")
            got = read_json(mat)
            if got:
                record["numbers"] = {k: got[k] for k in (
                    "images", "materialize_seconds", "peak_memory_gb", "packed_mb", "batch",
                    "sampling_images_per_second_median")}
            check.save()

        # The speed benchmark, then the time to quality apart (with a one-step re-run of the
        # DisTIB speed bench, which the command always does first), so that a quality run cut
        # short by its limit cannot take the speed-ups with it.
        tiny = ["--warmup", "1", "--steps", "1", "--repeats", "1"]
        stages = [
            ("bench", [] if not args.local else tiny, f"bench_{dev}.json", 150),
            ("bench-quality", ["--quality", "--models", "distib", *tiny, "--max-steps",
                               "2" if args.local else "3000"], f"bench_quality_{dev}.json", 150),
        ]
        for name, extra_args, file, limit in stages:
            if not chosen(name):
                continue
            argv = ["bench", "--device", dev, *extra_args, "--out", str(out / file)]
            record = check.run(name, argv, limit,
                               "python -m disentangle " + " ".join(argv[:-1] + [file]))
            got = read_json(out / file)
            if got:
                record["numbers"] = bench_numbers(got)
                if name == "bench-quality":
                    record["numbers"].pop("distib", None)  # one step: not a speed figure
            check.save()

        runs_root = ROOT / "runs" / "gpu_check"
        trainings = [
            ("train distib (chapter 05: mnist-5k, paper preset)", "distib",
             ["train", "distib", "--data", "mnist-5k", "--preset", "paper"]
             # Locally, narrower layers: the paper's 4096 make a 184M-parameter model whose
             # checkpoints (with Adam's state) are 2.2 GB each.
             + (["--set", "hidden=256"] if args.local else []), 130, False),
            (f"train tcgan ({args.gan_steps} of the profile's 20000 steps)", "tcgan",
             ["train", "tcgan", "--set", f"steps={args.gan_steps}"], 100, True),
            (f"train betavae ({args.vae_steps} of the profile's 30000 steps)", "betavae",
             ["train", "betavae", "--set", f"steps={args.vae_steps}"], 90, True),
        ]
        for name, family, argv, limit, hist in trainings:
            if not chosen(family):
                continue
            folder = runs_root / family
            argv = [*argv, "--profile", "gpu", "--device", dev, "--quiet", "--out", str(folder)]
            shown = "python -m disentangle " + " ".join(argv[:-1] + [f"runs/gpu_check/{family}"])
            extra = {"evaluation": "gpu protocol sizes, DCI classifier hist instead of gbt "
                                   "(patched in book/gpu_check.py)"} if hist else {}
            record = check.run(name, argv, args.train_limit or limit, shown, hist_dci=hist,
                               extra=extra)
            if record["status"] != "skipped":
                record["numbers"] = run_numbers(folder, family)
                check.save()
        if wanted and "diagnose" in wanted:
            file = Path("/tmp") / f"gpu_check_diagnose_{os.getpid()}.json"
            record = check.run("diagnose", ["diagnose", str(args.diagnose_steps), str(file)],
                               args.train_limit or 150,
                               f"book/gpu_check.py --only diagnose ({args.diagnose_steps} steps "
                               "a variant)")
            record["numbers"] = read_json(file)
            check.save()
    finally:
        if smi is not None:
            smi.terminate()
            smi.wait(5)
            try:
                gpu_windows(check)
            except Exception as err:  # noqa: BLE001 - the record matters more than this
                check.summary["nvidia_smi_windows_error"] = repr(err)
        folder = ROOT / "runs" / "gpu_check"
        if folder.exists() and not args.no_tar:
            with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
                for path in sorted(folder.rglob("*")):
                    if (path.is_file() and "checkpoint" not in path.name
                            and path.stat().st_size < 4 * 2**20):
                        tar.add(path, arcname=str(path.relative_to(ROOT)))
        check.summary["finished_utc"] = now()
        check.save()
        check.say("done; summary " + str(out / "summary.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
