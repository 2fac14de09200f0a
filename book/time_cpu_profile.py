"""Time every chapter of the book in the cpu profile and record the times for the reader.

    python book/time_cpu_profile.py                      # every chapter in _toc.yml
    python book/time_cpu_profile.py notebooks/02_information_toolkit.ipynb
    python book/time_cpu_profile.py --keep executed/ notebooks/05_distib.ipynb

Each chapter runs with papermill (``-p PROFILE cpu``) into a temporary folder, one after the other,
so the times are those of one reader's machine running one chapter at a time (``--keep DIR``
keeps the executed notebooks there, to read what each chapter printed). The times go to
``data/results/cpu_profile_times.json`` with the command and the environment record of
``disentangle.config.environment``; chapters not run this time keep their earlier entry. The table
in ``book/running.md`` is then rewritten from that file. A chapter that fails is recorded as failed,
and the script exits with status 1 after the others have run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
import yaml

from disentangle import config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "results" / "cpu_profile_times.json"
PAGE = ROOT / "book" / "running.md"
START, END = "<!-- cpu-profile-times: start -->", "<!-- cpu-profile-times: end -->"


def toc_chapters() -> list[Path]:
    """The notebooks ``_toc.yml`` names, in reading order."""
    found: list[Path] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node and (ROOT / f"{node['file']}.ipynb").exists():
                found.append(ROOT / f"{node['file']}.ipynb")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return found


def title(path: Path) -> str:
    """The first heading of a notebook, or its file name."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def run(path: Path, profile: str, keep: Path | None = None) -> dict:
    """Run one chapter with papermill in ``profile`` and return its record; the executed notebook
    goes to ``keep`` when given."""
    start = time.perf_counter()
    status = "ok"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(keep) if keep is not None else Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        try:
            papermill.execute_notebook(
                str(path), str(out / path.name), parameters={"PROFILE": profile},
                cwd=str(path.parent), kernel_name="python3", progress_bar=False,
            )
        except papermill.PapermillExecutionError as err:
            status = f"failed in cell {err.cell_index}: {err.ename}"
    return {"title": title(path), "seconds": round(time.perf_counter() - start, 1),
            "status": status}


def table(chapters: dict[str, dict]) -> str:
    """The Markdown table of ``book/running.md``, chapters in the order of ``_toc.yml``."""
    order = [str(p.relative_to(ROOT)) for p in toc_chapters()]
    rows = ["| chapter | notebook | cpu-profile time | measured | load at start |",
            "|---|---|---|---|---|"]
    for name in sorted(chapters, key=lambda n: order.index(n) if n in order else len(order)):
        entry = chapters[name]
        minutes, seconds = divmod(round(entry["seconds"]), 60)
        took = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
        if entry["status"] != "ok":
            took += f" ({entry['status']})"
        rows.append(f"| {entry['title']} | `{name}` | {took} | {entry['time_utc'][:10]} "
                    f"| {entry['load_average_at_start']} |")
    return "\n".join(rows)


def write_page(chapters: dict[str, dict]) -> None:
    """Replace the table between the markers of ``book/running.md``."""
    text = PAGE.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    PAGE.write_text(f"{head}{START}\n{table(chapters)}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    """Run the chapters given (default: all in ``_toc.yml``), record and publish their times."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="chapters to time (default: all)")
    parser.add_argument("--keep", type=Path, help="folder to keep the executed notebooks in")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or toc_chapters()
    record = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"chapters": {}}
    environment = config.environment("cpu")
    record.update({
        "description": "Wall-clock time of each chapter run alone with papermill in the cpu "
                       "profile.",
        "command": "python book/time_cpu_profile.py"
                   + "".join(f" {shlex.quote(str(p.relative_to(ROOT)))}"
                             for p in paths if args.notebooks),
        "environment": environment,
    })
    failed = False
    for path in paths:
        if not path.exists():  # renamed or removed since the table of contents was read
            print(f"skipped: {path} does not exist", flush=True)
            failed = True
            continue
        # Other work on the machine slows a chapter down; the load says how busy it was.
        load = round(os.getloadavg()[0], 2)
        entry = run(path, "cpu", args.keep)
        entry.update(time_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     git_revision=environment["git_revision"], load_average_at_start=load)
        record["chapters"][str(path.relative_to(ROOT))] = entry
        print(f"{entry['seconds']:8.1f} s  {entry['status']:<10} {path.name}", flush=True)
        failed |= entry["status"] != "ok"
        # Written after every chapter, so an interrupted run keeps what it measured.
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=2) + "\n")
        write_page(record["chapters"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
