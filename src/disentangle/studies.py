"""Studies: a grid of runs (groups of settings x seeds) declared in one file, run as tasks on Ray,
on this machine or a cluster, and summarised with paired statistics in one results file.

A study file (``studies/NAME.toml``) names, before any run:

- ``profile`` and ``seeds`` (a list, or a count n meaning 0 .. n-1), and the default ``data``;
- ``metrics``: what the runs report into the results file (a nested score by a dotted name,
  such as ``fgsm.0.1``); a metric some groups' models do not report is left empty for them and
  not compared;
- ``[groups.NAME]``: a ``model`` with its ``data``, a ``preset`` (a named set of settings, such as
  ``paper``) and ``set``, any setting of the model's family (:mod:`disentangle.settings`, the
  names ``--set`` takes), which wins over the preset's;
- ``[[comparisons]]``: two groups ``a`` and ``b`` and the ``primary`` metric of their comparison,
  the one the study is about; the other metrics are compared too, as secondary.

:func:`load_study` checks all of it, and every run's settings, before anything runs, naming the
key at fault. :func:`run_study` runs what is not yet finished, each run in its folder of the run
store (:mod:`disentangle.runs`), so that a study stopped at any moment and started again trains
nothing twice and resumes interrupted runs from their checkpoints. The results file
(``data/results/study_NAME.json``) is rewritten as runs finish; :mod:`disentangle.stats` gives its
summaries and comparisons.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import shutil
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disentangle import config, reaper, registry, runs, settings, stats, train
from disentangle.family import Family

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

#: The keys a study file may hold, at the top, in a group and in a comparison.
TOP_KEYS = ("name", "description", "profile", "data", "seeds", "metrics", "groups", "comparisons")
GROUP_KEYS = ("model", "data", "preset", "set")
COMPARISON_KEYS = ("a", "b", "primary")
#: What a study's and a group's name may be: they become file and folder names (the results file,
#: the traversal figures), so only letters, digits, '.', '_' and '-', not starting with a dot.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The most seeds a study may declare: a study is run by hand, seed by seed.
MAX_SEEDS = 1000
#: How long joining a Ray cluster at an address may take before the study gives up, in seconds.
CONNECT_TIMEOUT = 10
#: How often Ray retries a run whose worker died (a killed process, a lost machine); each retry
#: resumes from the run's checkpoint.
RETRIES = 2
#: The Ray namespace of a study's stop signal (see :func:`_watch_for_stop`), and how often a run
#: looks for it, in seconds.
STOP_NAMESPACE = "disentangle-studies"
STOP_POLL = 0.5
#: How long a stopped study waits for its runs to checkpoint, in seconds.
STOP_WAIT = 120
#: The reaper of the Ray that :func:`_connect` started in this process, if it did.
_reaper = None


class StudyError(ValueError):
    """A malformed study file; the message names the file and the key at fault."""


@dataclass(frozen=True)
class Run:
    """One run of a study: a group's settings at one seed."""

    group: str
    seed: int
    settings: settings.Settings

    @property
    def key(self) -> str:
        return f"{self.group}/seed{self.seed}"

    @property
    def family(self) -> Family:
        return registry.family_of(self.settings.model)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    primary: str


@dataclass(frozen=True)
class Study:
    """A checked study file: its runs, group by group and seed by seed."""

    name: str
    path: Path
    description: str
    profile: str
    file_profile: str | None
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    groups: dict[str, dict]
    comparisons: tuple[Comparison, ...]
    runs: tuple[Run, ...] = field(repr=False)


def _fail(path: Path, key: str, problem: str) -> StudyError:
    return StudyError(f"{path}: {key}: {problem}")


def _unknown_keys(path: Path, where: str, table: dict, valid: tuple[str, ...]) -> None:
    for key in table:
        if key not in valid:
            raise _fail(path, f"{where}{key}",
                        f"unknown key; valid keys are {', '.join(valid)}.")


def metric_names(model: str) -> tuple[str, ...]:
    """The names a run of ``model`` reports (a dotted name reaches inside a nested one)."""
    return registry.family_of(model).metrics(model)


def _reports(model: str, metric: str) -> bool:
    return metric.split(".")[0] in metric_names(model)


def _safe_name(path: Path, key: str, name: Any) -> str:
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise _fail(path, key, f"{name!r} cannot name files: use letters, digits, '.', '_' and "
                               "'-' (at most 64, not starting with a dot).")
    return name


def _seeds(path: Path, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value > MAX_SEEDS:
            raise _fail(path, "seeds", f"{value} seeds: a study declares at most {MAX_SEEDS}.")
        value = list(range(value))
    if isinstance(value, list) and len(value) > MAX_SEEDS:
        raise _fail(path, "seeds", f"{len(value)} seeds: a study declares at most {MAX_SEEDS}.")
    if (not isinstance(value, list) or not value
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value)):
        raise _fail(path, "seeds", "give a non-empty list of non-negative integers, or a count "
                                   "n >= 1 (seeds 0 .. n-1).")
    if len(set(value)) != len(value):
        raise _fail(path, "seeds", f"seeds repeat in {value}.")
    return tuple(value)


def _group_settings(path: Path, name: str, group: dict, default_data: str | None,
                    profile: str, seed: int) -> settings.Settings:
    where = f"groups.{name}"
    if not isinstance(group, dict):
        raise _fail(path, where, "a group is a table with model, data, preset and set.")
    _unknown_keys(path, f"{where}.", group, GROUP_KEYS)
    if "model" not in group:
        raise _fail(path, f"{where}.model", "missing; give one of " + ", ".join(registry.models()))
    model = group["model"]
    try:
        family = registry.family_of(model).settings
    except settings.SettingsError as err:
        raise _fail(path, f"{where}.model", str(err)) from None
    chosen = dict(group.get("set", {}))
    forbidden = sorted(set(chosen) & {"model", "data", "seed"})
    if forbidden:
        raise _fail(path, f"{where}.set.{forbidden[0]}",
                    "set by the group's model, its data and the study's seeds, not by set.")
    data = group.get("data", default_data)
    if data is None:
        raise _fail(path, f"{where}.data", "missing, and the study gives no default data.")
    try:
        # A value written as a string is read the way --set reads it.
        text = [f"{k}={v}" for k, v in chosen.items() if isinstance(v, str)]
        chosen.update(registry.parse_assignments(model, text))
        chosen = {k: tuple(v) if isinstance(v, list) else v for k, v in chosen.items()}
        preset = group.get("preset")
        if preset is not None:
            try:
                family.preset(preset, model, profile)
            except settings.SettingsError as err:
                raise _fail(path, f"{where}.preset", str(err)) from None
        return registry.build_settings(model, profile, preset, data=data, seed=seed, **chosen)
    except settings.SettingsError as err:
        raise _fail(path, f"{where}.set", str(err)) from None


def load_study(path: str | Path, profile: str | None = None) -> Study:
    """Read and check a study file; ``profile`` overrides the file's. Every run's settings are
    built here, so that an unknown model, setting or metric, missing seeds, or a comparison of
    groups that do not exist is refused (:class:`StudyError`, naming the key) before any run."""
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: no such study file; the shipped ones are in studies/.")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise StudyError(f"{path}: not valid TOML: {err}") from None
    _unknown_keys(path, "", spec, TOP_KEYS)
    for key in ("seeds", "metrics", "groups", "comparisons"):
        if key not in spec:
            raise _fail(path, key, "missing: a study declares its seeds, metrics, groups and "
                                   "comparisons before it runs.")
    try:
        profile = config.resolve_profile(profile or spec.get("profile"))
    except config.ProfileError as err:
        raise _fail(path, "profile", str(err)) from None
    seeds = _seeds(path, spec["seeds"])
    metrics = spec["metrics"]
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise _fail(path, "metrics", "give a non-empty list of metric names.")
    groups = spec["groups"]
    if not isinstance(groups, dict) or not groups:
        raise _fail(path, "groups", "declare at least one [groups.NAME] table.")
    for name in groups:
        _safe_name(path, f"groups.{name}", name)
    planned: list[Run] = []
    for name, group in groups.items():
        for seed in seeds:
            planned.append(Run(name, seed, _group_settings(path, name, group, spec.get("data"),
                                                           profile, seed)))
    for metric in metrics:
        if not any(_reports(group["model"], metric) for group in groups.values()):
            models = sorted({group["model"] for group in groups.values()})
            known = sorted({name for group in groups.values()
                            for name in metric_names(group["model"])})
            near = difflib.get_close_matches(metric.split(".")[0], known, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise _fail(path, "metrics", f"no group's model ({', '.join(models)}) reports "
                                         f"{metric!r}{hint}")
    by_settings: dict[str, str] = {}
    for run in planned:
        same = by_settings.setdefault(json.dumps(run.settings.as_dict(), sort_keys=True), run.group)
        if same != run.group:
            raise _fail(path, f"groups.{run.group}", f"the same settings as group {same}: two "
                                                     "groups of one run would share its folder.")
    comparisons = []
    declared = spec["comparisons"]
    if not isinstance(declared, list) or not declared:
        raise _fail(path, "comparisons", "declare at least one [[comparisons]] with a, b and "
                                         "primary.")
    for index, entry in enumerate(declared):
        where = f"comparisons[{index}]"
        _unknown_keys(path, f"{where}.", entry, COMPARISON_KEYS)
        for key in COMPARISON_KEYS:
            if key not in entry:
                raise _fail(path, f"{where}.{key}", "missing.")
        for key in ("a", "b"):
            if entry[key] not in groups:
                raise _fail(path, f"{where}.{key}", f"no group {entry[key]!r}; the groups are "
                                                    f"{', '.join(groups)}.")
        if entry["a"] == entry["b"]:
            raise _fail(path, where, "compares a group with itself.")
        if any((c.a, c.b) == (entry["a"], entry["b"]) for c in comparisons):
            raise _fail(path, where, f"compares {entry['a']} - {entry['b']} a second time; "
                                     "declare each pair once (every metric of the study is "
                                     "compared for it, the primary one decides).")
        if entry["primary"] not in metrics:
            raise _fail(path, f"{where}.primary", f"{entry['primary']!r} is not among the "
                                                  "study's metrics.")
        for key in ("a", "b"):
            model = groups[entry[key]]["model"]
            if not _reports(model, entry["primary"]):
                raise _fail(path, f"{where}.primary", f"{model} (group {entry[key]}) reports no "
                                                      f"{entry['primary']!r}.")
        comparisons.append(Comparison(entry["a"], entry["b"], entry["primary"]))
    return Study(
        name=_safe_name(path, "name", spec.get("name", path.stem)), path=path,
        description=spec.get("description", ""),
        profile=profile, file_profile=spec.get("profile"), seeds=seeds, metrics=tuple(metrics),
        groups=groups, comparisons=tuple(comparisons), runs=tuple(planned),
    )


def results_path(study: Study) -> Path:
    """``data/results/study_NAME.json``, with ``_PROFILE`` appended when the study runs in another
    profile than its file names (so a gpu rerun never overwrites the recorded cpu study)."""
    suffix = "" if study.file_profile in (None, study.profile) else f"_{study.profile}"
    return config.data_dir() / "results" / f"study_{study.name}{suffix}.json"


# --- One run, where Ray puts it ------------------------------------------------------------------


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _number(value: Any) -> float | None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) else None


def scores(run_settings: settings.Settings, result: dict, wanted: tuple[str, ...]) -> dict:
    """The ``wanted`` metrics (dotted names reach into nested ones) of a run's ``metrics.json``;
    a metric missing or not finite is ``None``."""
    reported = result["metrics"]
    flat = _flatten({k: reported[k] for k in metric_names(run_settings.model) if k in reported})
    return {name: _number(flat.get(name)) for name in wanted}


def execute(task: dict) -> dict:
    """Train and evaluate one run (a Ray task, or called directly): ``task`` holds the run's
    settings, profile, wanted metrics, the store's root (``None``: this machine's repository),
    the CPUs and GPUs it was given, and the training code's fingerprint the study expects.

    The run's output goes to ``log.txt`` in its folder. A finished run of the same settings and
    code is read, not trained again; an interrupted one resumes from its checkpoint. An error is
    returned as a failed run with its one-line message. When the study raises its stop signal
    (``task["stop"]``, see :func:`_watch_for_stop`), the training loop checkpoints at the end of
    its step and the run returns as interrupted."""
    import torch

    from disentangle import family as skeleton

    started = time.perf_counter()
    family = registry.family_of(task["model"])
    run_settings = family.settings(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in task["settings"].items()})
    profile = task["profile"]
    outcome: dict[str, Any] = {"machine": socket.gethostname(), "cpu_model": config.cpu_model(),
                               "status": "failed", "metrics": {}, "error": None}
    torch.set_num_threads(max(int(task["cpus"]), 1))
    os.environ.update(task["environment"])  # the driver's dry-run switch, on every machine
    out = runs.default_dir(run_settings, profile, root=task["store"])
    out.mkdir(parents=True, exist_ok=True)
    outcome["run_dir"] = str(out)
    ours = family.fingerprint()
    if ours != task["fingerprint"]:
        outcome["error"] = (f"{outcome['machine']} runs other code (training fingerprint {ours}, "
                            f"the study's {task['fingerprint']}): install the same revision of "
                            "the library on every machine.")
        return outcome
    device = torch.device("cuda" if task["gpus"] and torch.cuda.is_available() else "cpu")
    with (runs.exclusive(out / "lock", f"run folder {out}"), (out / "log.txt").open("a") as log,
          redirect_stdout(log), redirect_stderr(log), _watch_for_stop(task.get("stop"))):
        # A new line first: an attempt killed mid-bar left the log without one.
        print(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {task['key']} of study "
              f"{task['study']} on {outcome['machine']} ({device}), code {ours}", flush=True)
        try:
            result = runs.current_result(out, run_settings, profile, ours,
                                         family.evaluation_fingerprint())
            if result is None:
                result = skeleton.run(family, run_settings, profile, out, device)[1]
            logged = history(out)
            outcome.update(
                status="finished",
                metrics=scores(run_settings, result, tuple(task["metrics"])),
                fingerprint=result["fingerprint"],
                evaluation_fingerprint=result["evaluation_fingerprint"],
                flags=current_flags(family, result, logged),
                train_seconds=result.get("train_seconds"),
                history=logged,
            )
        except KeyboardInterrupt:  # the study's stop signal; the loop has checkpointed
            outcome["status"] = "interrupted"
        except Exception as err:  # noqa: BLE001 - a run's failure is recorded, the study goes on
            traceback.print_exc()
            outcome["error"] = f"{type(err).__name__}: {' '.join(str(err).split())}"
        outcome["seconds"] = time.perf_counter() - started
        print(f"\n--- {outcome['status']} after {outcome['seconds']:.1f} s"
              + (f": {outcome['error']}" if outcome["error"] else ""), flush=True)
    return outcome


def current_flags(family: Family, result: dict, logged: dict | None) -> list[str]:
    """A run's flags by its family's rule of today, from its scores and logged history (a rule
    changed since a finished run was scored applies to it too); the recorded ones without a
    history."""
    if family.flags is None:
        return []
    if logged is None:
        return result.get("flags", [])
    return family.flags(result["metrics"], train.History(logged["steps"], logged["terms"]))


def history(run_dir: str | Path | None) -> dict | None:
    """The training curves a run logged (``history.json`` in its folder): the logged steps and
    each term's mean over the steps before, to 4 significant digits; ``None`` where the folder is
    not on this machine."""
    path = Path(run_dir) / "history.json" if run_dir else None
    if path is None or not path.exists():
        return None
    try:
        saved = runs.read_json(path, "a run's history", "")
    except ValueError:
        return None  # a history cut short: the record goes without its curves
    return {"steps": saved["steps"],
            "terms": {name: [float(f"{v:.4g}") for v in values]
                      for name, values in saved["terms"].items()}}


@contextmanager
def _watch_for_stop(name: str | None) -> Iterator[None]:
    """While the block runs, look every :data:`STOP_POLL` seconds for the study's stop signal: a
    Ray actor called ``name``, which the study creates on Ctrl-C. When it appears, interrupt the
    main thread as a Ctrl-C would, which the training loop holds until the end of its step.

    A cooperative stop rather than ``ray.cancel``: cancelling a task as it completes crashes the
    driver in Ray 2.x (``Check failed: ... Tried to complete task that was not pending``)."""
    import _thread

    import ray

    if name is None or not ray.is_initialized():
        yield
        return
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL):
            try:
                ray.get_actor(name, namespace=STOP_NAMESPACE)
            except ValueError:  # not raised yet
                continue
            with lock:  # never after the block has ended
                if not done.is_set():
                    _thread.interrupt_main()
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with lock:
            done.set()
        watcher.join()


class _Stop:
    """The study's stop signal: its existence is the message."""


# --- The study, on Ray ---------------------------------------------------------------------------


def _entry(run: Run) -> dict:
    return {"key": run.key, "group": run.group, "seed": run.seed, "model": run.settings.model,
            "data": run.settings.data, "settings": run.settings.as_dict(), "status": "pending",
            "metrics": {}, "seconds": None, "fingerprint": None, "machine": None}


def _is_current(study: Study, run: Run, held: dict | None) -> bool:
    """Whether a run the results file holds as finished still stands: same settings, the same
    code trained and evaluated it, and it reports every metric the study now asks for."""
    if not held or held.get("status") != "finished":
        return False
    family = run.family
    return (held.get("settings") == run.settings.as_dict()
            and held.get("fingerprint") == family.fingerprint()
            and held.get("evaluation_fingerprint") == family.evaluation_fingerprint()
            and set(study.metrics) <= set(held.get("metrics", {})))


def summarise(study: Study, entries: dict[str, dict]) -> tuple[dict, list]:
    """The ``summary`` and the ``comparisons`` of the finished runs (:func:`statistics`): one
    comparison per declared pair and metric both models report, primary first."""
    declared = []
    for pair in study.comparisons:
        # A secondary metric one of the two models does not report is not compared.
        both = [m for m in study.metrics
                if all(_reports(study.groups[g]["model"], m) for g in (pair.a, pair.b))]
        ordered = [pair.primary] + [m for m in both if m != pair.primary]
        declared += [{"a": pair.a, "b": pair.b, "metric": metric,
                      "primary": metric == pair.primary} for metric in ordered]
    return statistics(list(study.groups), study.metrics, declared, entries.values())


def statistics(groups: list[str], metrics: tuple[str, ...] | list[str], declared: list[dict],
               entries: Iterable[dict]) -> tuple[dict, list]:
    """The ``summary`` (group -> metric -> :func:`stats.summarise` over the finished runs) and the
    ``comparisons``: each ``declared`` one (``a``, ``b``, ``metric``, ``primary``) with
    :func:`stats.compare` of the pair by seed, and the inference rule applied across them
    (:func:`stats.adjust`: Holm across the primary comparisons, the others exploratory)."""
    by_group: dict[str, dict[int, dict]] = {name: {} for name in groups}
    where: dict[tuple[str, int], tuple] = {}
    for entry in entries:
        if entry["status"] == "finished":
            by_group[entry["group"]][entry["seed"]] = entry["metrics"]
            where[entry["group"], entry["seed"]] = (entry.get("machine"), entry.get("cpu_model"))
    summary = {
        group: {m: stats.summarise([found[s].get(m) for s in sorted(found)]) for m in metrics}
        for group, found in by_group.items()
    }
    comparisons = []
    for entry in declared:
        a = {s: v.get(entry["metric"]) for s, v in by_group[entry["a"]].items()}
        b = {s: v.get(entry["metric"]) for s, v in by_group[entry["b"]].items()}
        compared = stats.compare(a, b)
        machines = {where[group, int(seed)] for seed in compared["differences"]
                    for group in (entry["a"], entry["b"])}
        # Pairs trained on different machines (normal on a cluster) differ by the machines too.
        mixed = {"machines": sorted(str(m) for m in machines)} if len(machines) > 1 else {}
        comparisons.append({**{k: entry[k] for k in ("a", "b", "metric", "primary")},
                            **compared, **mixed})
    return summary, stats.adjust(comparisons)


def _write(path: Path, record: dict) -> None:
    """Replace the results file in one step, so that a study stopped while writing leaves the
    previous version whole."""
    runs.write_json(path, record)


def _record(study: Study, entries: dict[str, dict], command: str, environment: dict,
            timing: dict) -> dict:
    summary, comparisons = summarise(study, entries)
    counts = {status: sum(e["status"] == status for e in entries.values())
              for status in ("finished", "running", "failed", "interrupted", "pending")}
    return {
        "study": {"name": study.name, "file": study.path.name, "description": study.description,
                  "profile": study.profile, "seeds": list(study.seeds),
                  "metrics": list(study.metrics), "groups": study.groups,
                  "comparisons": [dataclasses.asdict(c) for c in study.comparisons]},
        "command": command,
        "counts": counts,
        "runs": [entries[run.key] for run in study.runs],
        "summary": summary,
        "comparisons": comparisons,
        "flagged": flagged(entries.values()),
        "environment": environment,
        "timing": timing,
    }


def flagged(entries: Iterable[dict]) -> list[dict]:
    """The finished runs marked by their family's flags (such as ``near_chance``, ``diverged``):
    key, group, seed and flags of each. They stay in the summary and the comparisons, where
    :func:`table` names them beside the numbers they are part of."""
    return [{k: entry[k] for k in ("key", "group", "seed", "flags")} for entry in entries
            if entry["status"] == "finished" and entry.get("flags")]


def read_results(path: str | Path) -> dict:
    """A results file written by :func:`run_study`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No results file {path}: run the study first "
                                "(python -m disentangle study studies/NAME.toml).")
    return runs.read_json(path, "a study's results", "restore it from git, or delete it to run "
                                                   "the study again.")


def _present_token() -> None:
    """``ray start`` turns token authentication on, and a driver that joins by address presents
    the token only when ``RAY_AUTH_MODE=token`` is set before Ray is imported (Ray 2.5x).
    Presenting it is harmless where a cluster asks for none."""
    token = any(os.environ.get(v) for v in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"))
    if token or (Path.home() / ".ray" / "auth_token").exists():
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _connect(address: str | None) -> str:
    """Join the Ray cluster at ``address`` (``auto``: the one started on this machine with ``ray
    start``), or start Ray here with this machine's cores. Returns ``"joined"`` (Ray was running
    already, or at ``address``), ``"started"`` (this call started it, and so should stop it) or
    ``"in-process"``: Ray could not start here, and the study runs one run at a time in this
    process instead (said on stderr)."""
    import ray

    if ray.is_initialized():
        return "joined"
    quiet = dict(log_to_driver=False, logging_level="ERROR")
    if address:
        _check_head(address)
        ray.init(address=address, **quiet)
        return "joined"
    global _reaper
    # The reaper ends this Ray's processes if this process dies without stopping them.
    _reaper = reaper.start(Path(ray.__file__).parent)
    try:
        # "local": a new instance here even where a `ray start` cluster was left running, or left
        # its address behind in /tmp/ray, which ray.init() would otherwise try to join.
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
    except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception on a failed start
        # Ray gives its node 30 s to register, and a loaded two-core machine can miss that.
        _disconnect()
        print(f"Ray did not start on this machine ({' '.join(str(err).split())}); the study runs "
              "one run at a time in this process instead: the same runs, seeds and results, "
              "without the parallelism.", file=sys.stderr, flush=True)
        return "in-process"
    return "started"


def _disconnect() -> None:
    """Stop the Ray that :func:`_connect` started here, and its reaper."""
    import ray

    global _reaper
    ray.shutdown()
    if _reaper is not None:
        reaper.stop(_reaper)
        _reaper = None


def _check_head(address: str) -> None:
    """Refuse at once, in one line, an address where no Ray head listens (Ray itself would wait
    for minutes): ``HOST:PORT`` must accept a connection within :data:`CONNECT_TIMEOUT` seconds;
    ``auto`` needs the address a ``ray start`` on this machine leaves behind."""
    how = ("start one with `ray start --head --port 6379` on the head machine, or leave "
           "--address out to run on this machine alone")
    if address == "auto":
        if not Path("/tmp/ray/ray_current_cluster").exists() and "RAY_ADDRESS" not in os.environ:
            raise RuntimeError(f"--address auto: no Ray cluster was started here; {how}.")
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address {address!r}: give HOST:PORT (or auto).")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as err:
        raise RuntimeError(f"no Ray head answers at {address} ({err.strerror or err}); "
                           f"{how}.") from None


def _capacity(workers: int | None, cpus: float, gpus: float) -> int:
    import ray

    if workers is not None:
        return workers
    resources = ray.cluster_resources()
    fits = [resources.get("CPU", 1) / cpus] + ([resources.get("GPU", 0) / gpus] if gpus else [])
    return max(int(min(fits)), 1)


def run_study(
    study: Study,
    *,
    workers: int | None = None,
    address: str | None = None,
    store: str | Path | None = None,
    results: str | Path | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run every run of ``study`` that the results file does not already hold as finished by
    today's code, as Ray tasks of ``cpus_per_run`` CPUs (PyTorch's threads set to match) and
    ``gpus_per_run`` GPUs (default: one where the cluster has GPUs, else none), at most
    ``workers`` at once (default: as many as the cluster's CPUs and GPUs hold). ``address`` joins
    a running Ray cluster; without it Ray starts here. Runs live in the run store under ``store``
    (default: each machine's repository). The results file (default :func:`results_path`) is
    rewritten after every run; it is returned too. A failed run is recorded with its message and
    the others go on; Ctrl-C stops the runs in flight at their next step, checkpointed, records
    them as interrupted and raises ``KeyboardInterrupt``."""
    path = Path(results) if results is not None else results_path(study)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}.")
    if not cpus_per_run > 0 or (gpus_per_run is not None and gpus_per_run < 0):
        raise ValueError(f"--cpus-per-run must be > 0 and --gpus-per-run >= 0; got "
                         f"{cpus_per_run} and {gpus_per_run}.")
    with runs.exclusive(path.with_name(f".{path.name}.lock"), f"results file {path}"):
        return _run(study, path, workers, address, store, cpus_per_run, gpus_per_run, progress,
                    command or f"python -m disentangle study {study.path}")


def _run(study: Study, path: Path, workers: int | None, address: str | None,
         store: str | Path | None, cpus_per_run: float, gpus_per_run: float | None,
         progress: bool, command: str) -> dict:
    from tqdm.auto import tqdm

    previous, recorded = {}, {}
    if path.exists():
        recorded = read_results(path)
        previous = {e["key"]: e for e in recorded.get("runs", [])}
    entries = {}
    for run in study.runs:
        held = previous.get(run.key)
        entries[run.key] = held if _is_current(study, run, held) else _entry(run)
        if entries[run.key]["status"] == "finished" and not entries[run.key].get("history"):
            # A run recorded before records held training curves: read them from its folder.
            entries[run.key]["history"] = history(entries[run.key].get("run_dir"))
    # Seed by seed, so that a study stopped part-way holds complete pairs of the seeds it reached.
    todo = deque(sorted((run for run in study.runs if entries[run.key]["status"] != "finished"),
                        key=lambda run: run.seed))
    if address:
        _present_token()
    import ray

    # A study resumed over several sessions sums its time over every invocation that ran
    # something; one that ran nothing keeps the record's time and environment as they were.
    before = recorded.get("timing", {})
    total = {key: before.get(key, 0) for key in ("wall_seconds", "run_seconds", "runs_executed")}
    timing = {"ray_start_seconds": before.get("ray_start_seconds", 0.0), **total,
              "workers": before.get("workers", workers)}
    environment = (recorded["environment"] if recorded and not todo
                   else config.environment("cpu"))
    environment["ray"] = ray.__version__
    started = time.perf_counter()
    _write(path, _record(study, entries, command, environment, timing))
    if not todo:
        return _with_traversals(study, _record(study, entries, command, environment, timing), path)
    executor = _connect(address)
    timing["ray_start_seconds"] = round(time.perf_counter() - started, 3)
    environment["executor"] = "ray" if executor != "in-process" else "in-process"
    if executor == "in-process":
        if gpus_per_run is None:
            gpus_per_run = 1 if _has_cuda() else 0
        environment["cluster"] = {"nodes": 1, "cpus": os.cpu_count(), "gpus": int(_has_cuda())}
        capacity = 1
    else:
        resources = ray.cluster_resources()
        environment["cluster"] = {"nodes": len(ray.nodes()), "cpus": resources.get("CPU", 0),
                                  "gpus": resources.get("GPU", 0)}
        if gpus_per_run is None:
            gpus_per_run = 1 if resources.get("GPU", 0) >= 1 else 0
        capacity = _capacity(workers, cpus_per_run, gpus_per_run)
    timing["workers"] = capacity
    shared = {
        "study": study.name, "profile": study.profile, "metrics": list(study.metrics),
        "store": None if store is None else str(Path(store).resolve()),
        "cpus": cpus_per_run, "gpus": gpus_per_run,
        "environment": {config.DRY_RUN_ENV: os.environ.get(config.DRY_RUN_ENV, "")},
        "stop": f"stop-{uuid.uuid4().hex}" if executor != "in-process" else None,
    }
    in_flight: dict[Any, Run] = {}
    bar = tqdm(total=len(study.runs), initial=len(study.runs) - len(todo), desc=study.name,
               disable=not progress, unit="run")

    def payload(run: Run) -> dict:
        entries[run.key]["status"] = "running"
        return {**shared, "key": run.key, "model": run.settings.model,
                "settings": run.settings.as_dict(), "fingerprint": run.family.fingerprint()}

    def show() -> None:
        count = {s: sum(e["status"] == s for e in entries.values()) for s in ("finished", "failed")}
        running = sum(e["status"] == "running" for e in entries.values())
        bar.set_postfix_str(f"finished {count['finished']}, running {running}, failed "
                            f"{count['failed']}, left {len(todo)}")

    first_submit = time.perf_counter()

    def finish(run: Run, outcome: dict) -> None:
        entries[run.key] = {**_entry(run), **outcome}
        total["run_seconds"] += outcome.get("seconds") or 0.0
        total["runs_executed"] += 1
        timing.update(total, wall_seconds=round(
            total["wall_seconds"] + time.perf_counter() - first_submit, 3))
        _write(path, _record(study, entries, command, environment, timing))
        bar.update(1)
        show()

    try:
        if executor == "in-process":
            _run_here(todo, payload, finish, show)
        else:
            task = ray.remote(execute).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                               max_retries=RETRIES)
            while todo or in_flight:
                while todo and len(in_flight) < capacity:
                    run = todo.popleft()
                    in_flight[task.remote(payload(run))] = run
                show()
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    run = in_flight.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        outcome = {"status": "failed", "metrics": {}, "machine": None,
                                   "error": f"{type(err).__name__}: {' '.join(str(err).split())}"}
                    finish(run, outcome)
    except KeyboardInterrupt:
        ready = []
        if in_flight:
            # Every run in flight sees the signal within STOP_POLL s, checkpoints at the end of
            # its step and returns; one that had ended keeps its outcome.
            stop = ray.remote(num_cpus=0)(_Stop).options(
                name=shared["stop"], namespace=STOP_NAMESPACE).remote()
            ready = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=STOP_WAIT)[0]
            ray.kill(stop)
        for ref, run in in_flight.items():
            try:
                outcome = ray.get(ref) if ref in ready else None
            except ray.exceptions.RayError:
                outcome = None
            if outcome is None:
                entries[run.key]["status"] = "interrupted"
            else:
                entries[run.key] = {**_entry(run), **outcome}
        for entry in entries.values():  # a run of this process stopped outside its training
            if entry["status"] == "running":
                entry["status"] = "interrupted"
        _write(path, _record(study, entries, command, environment, timing))
        raise
    finally:
        bar.close()
        if executor == "started":
            _disconnect()
    return _with_traversals(study, _record(study, entries, command, environment, timing), path)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _run_here(todo: deque, payload: Callable[[Run], dict],
              finish: Callable[[Run, dict], None], show: Callable[[], None]) -> None:
    """Run the study's runs one after another in this process (where Ray could not start): each
    as :func:`execute` runs it on Ray, with as many BLAS and OpenMP threads as a Ray task of its
    CPUs gets. A Ctrl-C lets the run checkpoint at the end of its step, records it as interrupted
    and raises ``KeyboardInterrupt``."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    try:
        while todo:
            run = todo.popleft()
            task = payload(run)
            show()
            with threadpool_limits(max(int(task["cpus"]), 1)):
                outcome = execute(task)
            finish(run, outcome)
            if outcome["status"] == "interrupted":
                raise KeyboardInterrupt
    finally:
        torch.set_num_threads(threads)


def collect_traversals(record: dict, folder: Path, metric: str) -> dict[str, dict]:
    """Copy each group's traversal figure (``traversal.png``, which a GAN or VAE run writes to its
    folder) of its median-seed run by ``metric`` to ``folder/GROUP.png``: the run whose score is
    the median of the group's finished runs (of two middle ones, the lower). Groups whose runs
    write no figure, or whose folders are not on this machine, are left out. Returns, by group,
    the run's seed, its score and the figure's path relative to ``folder``'s parent."""
    found = {}
    for group in record["study"]["groups"]:
        scored = sorted((entry["metrics"][metric], entry["seed"], entry.get("run_dir"))
                        for entry in record["runs"]
                        if entry["group"] == group and entry["status"] == "finished"
                        and _number(entry["metrics"].get(metric)) is not None)
        if not scored:
            continue
        value, seed, run_dir = scored[(len(scored) - 1) // 2]
        figure = Path(run_dir) / "traversal.png" if run_dir else None
        if figure is None or not figure.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(figure, folder / f"{group}.png")
        found[group] = {"seed": seed, metric: value,
                        "file": str(Path(folder.name) / f"{group}.png")}
    return found


def _with_traversals(study: Study, record: dict, path: Path) -> dict:
    """A finished study's record with the median-seed traversal figures of its groups (by the
    first primary metric) beside its results file, in ``study_NAME_traversals/``."""
    if record["counts"]["finished"] == len(record["runs"]):
        metric = study.comparisons[0].primary if study.comparisons else study.metrics[0]
        record["traversals"] = collect_traversals(
            record, path.parent / f"{path.stem}_traversals", metric)
        _write(path, record)
    return record


def failures(record: dict) -> list[dict]:
    """The runs of a results record that failed."""
    return [entry for entry in record["runs"] if entry["status"] == "failed"]


def table(record: dict) -> str:
    """A results record as text: a row per metric with each group's mean [95% t-interval] and n,
    then every comparison's verdict (:func:`stats.verdict`), primary ones marked, then the flagged
    runs (:func:`flagged`) and the failed ones."""
    metrics, groups = record["study"]["metrics"], list(record["summary"])
    width = max(len(m) for m in metrics) + 2
    lines = [f"{'metric':{width}s}" + "".join(f"{g:>30s}" for g in groups)]
    for metric in metrics:
        cells = []
        for group in groups:
            s = record["summary"][group][metric]
            if s["mean"] is None:
                cell = "-"
            elif s["ci_low"] is None:  # one run: no interval
                cell = f"{s['mean']:.3f} n={s['n']}"
            else:
                cell = f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] n={s['n']}"
            cells.append(f"{cell:>30s}")
        lines.append(f"{metric:{width}s}" + "".join(cells))
    lines.append("")
    for comparison in record["comparisons"]:
        mark = "primary   " if comparison["primary"] else "secondary "
        lines.append(mark + stats.verdict(comparison, comparison["a"], comparison["b"],
                                          comparison["metric"]))
        if comparison.get("machines"):
            lines.append(f"          its pairs were trained on {len(comparison['machines'])} "
                         "machines: the same code and seed differ between them within the "
                         "seeds' spread")
    marked = record.get("flagged", [])
    if marked:
        lines.append("")
        lines += [f"flagged {entry['key']}: {', '.join(entry['flags'])} (in the numbers above)"
                  for entry in marked]
    failed = failures(record)
    if failed:
        lines.append("")
        lines += [f"failed {entry['key']}: {entry.get('error')}" for entry in failed]
    return "\n".join(lines)


def select(record: dict, groups: list[str], lowest: str, most: str | None = None) -> str:
    """A selection rule stated in advance and applied to a results record: of ``groups``, keep
    those whose every seed finished; with ``most``, keep of those the ones whose worst seed scores
    highest on ``most``; return the one with the lowest mean ``lowest``. The rule sees only the
    metrics it names, so one that names none scored against ground-truth factors selects without
    them. Raises ``ValueError`` saying why when no group qualifies."""
    seeds = len(record["study"]["seeds"])
    unknown = [g for g in groups if g not in record["summary"]]
    if unknown:
        raise ValueError(f"No group {unknown[0]!r} in study {record['study']['name']}; its groups "
                         f"are {', '.join(record['summary'])}.")
    done = {g: [r for r in record["runs"] if r["group"] == g and r["status"] == "finished"]
            for g in groups}
    kept = [g for g in groups if len(done[g]) == seeds]
    if not kept:
        raise ValueError("No group has finished every seed: " + "; ".join(
            f"{g} {len(done[g])} of {seeds}" for g in groups) + ".")
    if most is not None:
        def score(run: dict) -> float:
            value = run["metrics"].get(most)
            return -math.inf if value is None else value

        worst = {g: min(score(r) for r in done[g]) for g in kept}
        kept = [g for g in kept if worst[g] == max(worst.values())]
    return min(kept, key=lambda g: record["summary"][g][lowest]["mean"])
