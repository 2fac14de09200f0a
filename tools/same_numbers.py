"""Did a change of the library change any number? Train seed 0 of every group of every recorded
study with one version of the code, then with another, on one machine, and compare every metric.

    python tools/same_numbers.py train --src OLD/src --out runs/same-numbers/old
    python tools/same_numbers.py train --src src --out runs/same-numbers/new
    python tools/same_numbers.py compare runs/same-numbers/old runs/same-numbers/new \
        --record data/results/same_numbers_NAME.json

``train`` runs ``python -m disentangle train`` with ``PYTHONPATH=SRC`` (so the library of that
source tree trains), one thread, in each recorded study's profile and settings, at seed 0, and
``--steps N`` caps the training steps (the code path is the same; the time is not). ``compare``
flattens each run's ``metrics.json`` and reports every number that differs by more than the
tolerance (a setting only the new side records is listed as added, not as a change: the restamp
writes it into the old runs at the value the new side trained with), and the training
fingerprint of each side per family (what ``python -m disentangle restamp`` reads to carry
recorded runs across the change).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: Not numbers of the model: they change with the machine's load, the folder and the code.
IGNORED = ("seconds", "fingerprint", "run_dir", "environment", "command", "git_revision")


def recorded_studies() -> list[Path]:
    """The study files with a results file in ``data/results/``."""
    results = {p.name for p in (ROOT / "data" / "results").glob("study_*.json")}
    return [path for path in sorted((ROOT / "studies").glob("*.toml"))
            if any(name.startswith(f"study_{path.stem}") for name in results)]


def _value(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def commands(steps: int | None, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """``study/group`` -> the ``train`` arguments of that group's seed 0, for every recorded study
    but those in ``skip``."""
    planned = {}
    for path in recorded_studies():
        if path.stem in skip:
            continue
        spec = tomllib.loads(path.read_text())
        for name, group in spec["groups"].items():
            chosen = dict(group.get("set", {}))
            if steps is not None:
                chosen["steps"] = min(int(chosen.get("steps", steps)), steps)
            argv = [group["model"], "--data", group.get("data", spec.get("data")),
                    "--profile", spec.get("profile", "cpu"), "--seed", "0", "--quiet"]
            if "preset" in group:
                argv += ["--preset", group["preset"]]
            for key, value in chosen.items():
                argv += ["--set", f"{key}={_value(value)}"]
            planned[f"{path.stem}/{name}"] = argv
    return planned


def train(src: Path, out: Path, steps: int | None, skip: tuple[str, ...] = ()) -> None:
    environment = {**os.environ, "PYTHONPATH": str(src.resolve()), "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"}
    for key, argv in commands(steps, skip).items():
        folder = out / key
        if (folder / "metrics.json").exists():
            continue
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "disentangle", "train", *argv,
                               "--out", str(folder)], env=environment, capture_output=True,
                              text=True, cwd=src.resolve().parent)
        print(f"{key}: exit {done.returncode} after {time.perf_counter() - started:.0f} s",
              flush=True)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)


def flatten(values: object, prefix: str = "") -> dict[str, object]:
    if isinstance(values, dict):
        flat: dict[str, object] = {}
        for key, value in values.items():
            if not any(word in key for word in IGNORED):
                flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    if isinstance(values, list):
        flat = {}
        for index, value in enumerate(values):
            flat.update(flatten(value, f"{prefix}{index}."))
        return flat
    return {prefix.rstrip("."): values}


#: What a result records besides its scores (older supervised results held their scores at the
#: top level, beside these; every result now holds them under ``metrics``).
META = ("model", "data", "label", "profile", "seed", "settings", "family", "fingerprint",
        "evaluation_fingerprint", "run_dir", "train_seconds", "wall_seconds", "environment",
        "command")


def scores(result: dict) -> dict:
    """A result's scores and settings, whichever shape the result has."""
    found = result["metrics"] if "metrics" in result else {
        k: v for k, v in result.items() if k not in META}
    return {"metrics": found, "settings": result["settings"]}


def differs(a: object, b: object, tolerance: float) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b):
            return False
        return abs(a - b) > tolerance
    return a != b


def compare(old: Path, new: Path, tolerance: float, steps: int | None,
            skip: tuple[str, ...] = ()) -> dict:
    runs = {}
    fingerprints: dict[str, dict[str, set]] = {}
    for key in commands(steps, skip):
        held = [json.loads((side / key / "metrics.json").read_text())
                if (side / key / "metrics.json").exists() else None for side in (old, new)]
        if None in held:
            runs[key] = {"status": "missing", "missing": [str(s) for s, h in zip((old, new), held)
                                                          if h is None]}
            continue
        a, b = (flatten(scores(h)) for h in held)
        # A setting only the new code has (the restamp writes it in at this default).
        added = {name: b[name] for name in sorted(set(b) - set(a)) if name.startswith("settings.")}
        changed = {name: [a.get(name), b.get(name)] for name in sorted(set(a) | set(b))
                   if name not in added and differs(a.get(name), b.get(name), tolerance)}
        gaps = [abs(a[n] - b[n]) for n in set(a) & set(b)
                if isinstance(a[n], (int, float)) and isinstance(b[n], (int, float))
                and not isinstance(a[n], bool) and math.isfinite(a[n]) and math.isfinite(b[n])]
        runs[key] = {"status": "same" if not changed else "different",
                     "numbers": len(a), "largest_difference": max(gaps, default=0.0),
                     "changed": changed, "settings_added": added}
        records = [json.loads((side / key / "run.json").read_text()) for side in (old, new)]
        family = records[1].get("family", records[0].get("family"))
        pair = fingerprints.setdefault(family, {kind: set() for kind in (
            "old", "new", "old_evaluation", "new_evaluation")})
        pair["old"].add(held[0]["fingerprint"])
        pair["new"].add(held[1]["fingerprint"])
        pair["old_evaluation"].add(held[0]["evaluation_fingerprint"])
        pair["new_evaluation"].add(held[1]["evaluation_fingerprint"])
    cpu = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
           if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else []
    return {
        "what": "seed 0 of every group of every recorded study, trained by two versions of the "
                "library on one machine; every number of metrics.json compared",
        "machine": {"cpu_model": cpu[0] if cpu else None, "threads_per_run": 1},
        "numbers_compared": sum(r.get("numbers", 0) for r in runs.values()),
        "largest_difference": max((r.get("largest_difference", 0.0) for r in runs.values()),
                                  default=0.0),
        "tolerance": tolerance,
        "steps_cap": steps,
        "studies_skipped": list(skip),
        "same": all(r["status"] == "same" for r in runs.values()),
        "fingerprints": {f: {k: sorted(v) for k, v in p.items()}
                         for f, p in fingerprints.items()},
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    fit = verbs.add_parser("train")
    fit.add_argument("--src", type=Path, required=True)
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--steps", type=int)
    fit.add_argument("--skip", nargs="*", default=[], help="study names to leave out")
    check = verbs.add_parser("compare")
    check.add_argument("old", type=Path)
    check.add_argument("new", type=Path)
    check.add_argument("--steps", type=int)
    check.add_argument("--tolerance", type=float, default=1e-6)
    check.add_argument("--record", type=Path)
    check.add_argument("--old-revision", help="the commit the old side was trained from")
    check.add_argument("--new-revision", help="the commit the new side was trained from")
    check.add_argument("--skip", nargs="*", default=[], help="study names to leave out")
    args = parser.parse_args()
    if args.verb == "train":
        train(args.src, args.out, args.steps, tuple(args.skip))
        return 0
    result = compare(args.old, args.new, args.tolerance, args.steps, tuple(args.skip))
    result["command"] = "python tools/same_numbers.py " + " ".join(sys.argv[1:])
    result["revisions"] = {"old": args.old_revision, "new": args.new_revision}
    text = json.dumps(result, indent=2) + "\n"
    if args.record:
        args.record.write_text(text)
    for key, run in result["runs"].items():
        print(f"{key}: {run['status']}" + (f" {run.get('changed')}" if run.get("changed") else ""))
    print("every number the same" if result["same"] else "NUMBERS CHANGED")
    return 0 if result["same"] else 1


if __name__ == "__main__":
    sys.exit(main())
