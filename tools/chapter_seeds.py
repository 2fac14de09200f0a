"""Record a chapter at several seeds: what its prose quotes and the margins its checks take.

    python tools/chapter_seeds.py notebooks/08_distib_under_the_microscope.ipynb \
        --profile cpu --seeds 0 1 2 --record data/results/chapter08_cpu_seeds.json

Each seed runs the whole chapter with papermill (parameters ``PROFILE`` and ``SEED``), and every
number the chapter glues (``myst_nb.glue``) is collected: ``values[name]`` lists them in the order
of ``seeds``. A chapter that checks its model against the record reads this file, so an existing
record is refused unless ``--replace`` is given (the old one is then set aside while the chapter
runs without it, and removed once the new one is written).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from disentangle import config, runs

GLUE_PREFIX = "application/papermill.record/"


def glued(notebook: Path) -> dict[str, float | str]:
    """The values an executed notebook glued, by name: numbers (or text that reads as one) as
    floats, the rest as text."""
    values: dict[str, float | str] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output["data"]
            text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain", ""))
            try:
                value = ast.literal_eval(text)
            except (SyntaxError, ValueError):
                value = text
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                values[name] = str(value)
    return values


def record(chapter: Path, profile: str, seeds: list[int], target: Path) -> dict:
    """Run ``chapter`` at each seed and write what it glued to ``target``."""
    per_seed = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            out = Path(scratch) / f"seed{seed}.ipynb"
            command = [sys.executable, "-m", "papermill", "--log-level", "ERROR",
                       str(chapter), str(out), "-p", "PROFILE", profile, "-p", "SEED",
                       str(seed), "--cwd", str(chapter.parent)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"error: {chapter.name} failed at seed {seed}:\n"
                                 f"{done.stderr[-3000:]}")
            per_seed.append(glued(out))
            print(f"seed {seed}: {len(per_seed[-1])} values", flush=True)
    names = sorted(set().union(*per_seed))
    result = {
        "what": f"the values {chapter.name} glues, run in the {profile} profile at each seed",
        "command": "python tools/chapter_seeds.py " + " ".join(sys.argv[1:]),
        "chapter": str(chapter),
        "profile": profile,
        "seeds": seeds,
        "values": {name: [values.get(name) for values in per_seed] for name in names},
        "environment": config.environment("cpu"),  # the git revision, machine and versions
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    runs.write_json(target, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--profile", default="cpu", choices=config.PROFILES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--replace", action="store_true", help="replace an existing record")
    args = parser.parse_args(argv)
    if not args.chapter.exists():
        parser.error(f"no chapter at {args.chapter}")
    aside = args.record.with_name(args.record.name + ".old")
    if args.record.exists():
        if not args.replace:
            parser.error(f"{args.record} exists: give --replace to record it again")
        args.record.rename(aside)
    try:
        record(args.chapter, args.profile, args.seeds, args.record)
    except BaseException:
        if aside.exists():
            aside.rename(args.record)
        raise
    aside.unlink(missing_ok=True)
    print(f"wrote {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
