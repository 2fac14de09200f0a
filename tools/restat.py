"""Recompute a study results file's statistics from its runs under the current inference rule.

    python tools/restat.py data/results/study_gan_cpu.json [more.json ...] [--write]

For each file with ``runs``: the per-group ``summary`` (:func:`disentangle.stats.summarise` of each
study metric over the finished runs, by seed) and every comparison the file records (its ``a``,
``b``, ``metric`` and ``primary``, in its order) recomputed with :func:`disentangle.stats.compare`
and corrected together with :func:`disentangle.stats.adjust`, as ``studies.summarise`` builds
them. It prints, per comparison, the recorded interval, p and direction beside the new ones and
whether the direction changed; a primary comparison's new direction is the Holm-corrected t-test's,
a secondary one has none (exploratory), so beside it is the direction its uncorrected t-interval
alone would give. Each finished run's ``flags`` are recomputed too, by its family's rule from
the run's recorded metrics and logged history (a rule changed since marks, or clears, runs
recorded before it), and the file's ``flagged`` list with them. ``--write`` replaces
the file's ``summary``, ``comparisons``, run flags and ``flagged`` with the recomputed ones and
keeps every other key. The library imported is the one beside this file (``src/``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from disentangle import registry, stats, studies  # noqa: E402


def recompute(record: dict) -> tuple[dict, list[dict]]:
    """The ``summary`` and the ``comparisons`` of a results record, from its runs, by the code the
    study command uses (:func:`disentangle.studies.statistics`)."""
    return studies.statistics(list(record["study"]["groups"]), record["study"]["metrics"],
                              record["comparisons"], record["runs"])


def reflag(record: dict) -> list[str]:
    """Recompute each finished run's flags by its family's rule (in place); one line per run
    whose flags changed, or whose rule needs a score the record did not keep (its flags stay)."""
    changed = []
    for entry in record["runs"]:
        family = registry.family_of(entry["model"])
        if entry["status"] != "finished" or family.flags is None or not entry.get("history"):
            continue
        try:
            flags = studies.current_flags(family, entry, entry["history"])
        except KeyError as missing:
            changed.append(f"   {entry['key']}: flags kept; the rule needs {missing}, which the "
                           "record does not hold")
            continue
        if flags != entry.get("flags", []):
            changed.append(f"   {entry['key']}: flags {entry.get('flags', [])} -> {flags}")
            entry["flags"] = flags
    record["flagged"] = studies.flagged(record["runs"])
    return changed


def _direction(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "none"
    return "higher" if low > 0 else "lower" if high < 0 else "none"


def _new_direction(comparison: dict) -> str:
    """The direction the rule declares: the Holm-corrected t-test's, for a primary comparison."""
    p = comparison.get("p_holm")
    if not comparison["primary"] or p is None or p >= stats.ALPHA:
        return "none"
    return "higher" if comparison["mean_diff"] > 0 else "lower"


def _interval(low: float | None, high: float | None) -> str:
    return "[-]" if low is None else f"[{low:+.3f}, {high:+.3f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _same(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def report(path: Path, record: dict, comparisons: list[dict]) -> tuple[list[str], list[str]]:
    """The printed lines for one file, and its lines of the closing summary: every primary
    comparison, old beside new, the changed ones marked, then the secondary ones whose interval
    alone would have changed direction."""
    lines = [f"== {path}  ({record['study']['name']}: "
             f"{sum(c['primary'] for c in comparisons)} primary, "
             f"{sum(not c['primary'] for c in comparisons)} secondary comparisons)"]
    primaries, secondaries = [], []
    for old, new in zip(record["comparisons"], comparisons):
        old_dir = _direction(old.get("ci_low"), old.get("ci_high"))
        kind = "primary  " if new["primary"] else "secondary"
        name = f"{new['a']} - {new['b']} on {new['metric']} (n={new['n_pairs']})"
        was = (f"old {_interval(old.get('ci_low'), old.get('ci_high'))} boot, "
               f"p_wilcoxon {_p(old.get('p_wilcoxon'))}: {old_dir}")
        now = (f"new {_interval(new['ci_low'], new['ci_high'])} t, p_t {_p(new['p_t'])}, "
               f"p_sign_flip {_p(new['p_sign_flip'])}")
        if new["primary"]:
            new_dir = _new_direction(new)
            now += f", Holm p {_p(new.get('p_holm'))}: {new_dir}"
            change = "same" if new_dir == old_dir else f"CHANGED {old_dir} -> {new_dir}"
            primaries.append(
                f"  {'CHANGED' if new_dir != old_dir else 'same   '} {name}: old "
                f"{_interval(old.get('ci_low'), old.get('ci_high'))} {old_dir} -> new "
                f"{_interval(new['ci_low'], new['ci_high'])} Holm p {_p(new.get('p_holm'))} "
                f"{new_dir}")
        else:
            t_dir = _direction(new["ci_low"], new["ci_high"])
            now += f": exploratory (t-interval alone: {t_dir})"
            change = "no longer a verdict"
            if t_dir != old_dir:
                change += f"; interval {old_dir} -> {t_dir}"
                secondaries.append(f"    {name}: {old_dir} -> {t_dir} (p_t {_p(new['p_t'])})")
        # The recomputation must reproduce what the record holds of the same runs.
        drift = [k for k in ("n_pairs", "mean_diff") if not _same(old.get(k), new[k])]
        if "p_t" not in old:  # a record of the bootstrap rule: its interval was this bootstrap
            drift += [k for k, n in (("ci_low", "boot_low"), ("ci_high", "boot_high"))
                      if not _same(old.get(k), new[n])]
        if old.get("differences") is not None and set(old["differences"]) != set(
                new["differences"]):
            drift.append("differences")
        lines.append(f"  {kind} {name}\n    {was}\n    {now}\n    -> {change}"
                     + (f"\n    !! differs from the record in {', '.join(drift)}" if drift
                        else ""))
    closing = [f"{path.name}:", *primaries,
               f"  secondary (exploratory now) whose t-interval alone changes direction: "
               f"{len(secondaries)} of {sum(not c['primary'] for c in comparisons)}",
               *secondaries]
    return lines, closing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true",
                        help="replace each file's summary, comparisons and flags with the "
                             "recomputed ones")
    args = parser.parse_args(argv)
    summary_lines = ["", "== Summary: every primary comparison, old rule -> new rule"]
    for path in args.files:
        record = json.loads(path.read_text())
        if "runs" not in record or "comparisons" not in record:
            print(f"== {path}: no runs, skipped\n")
            continue
        summary, comparisons = recompute(record)
        lines, closing = report(path, record, comparisons)
        print("\n".join(lines + reflag(record)) + "\n")
        summary_lines += closing
        if args.write:
            record["summary"], record["comparisons"] = summary, comparisons
            scratch = path.with_suffix(".json.tmp")
            scratch.write_text(json.dumps(record, indent=2) + "\n")
            os.replace(scratch, path)
            print(f"   wrote {path}\n")
    print("\n".join(summary_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
