"""The run store: where a run lives, what it records, and when a finished run may be loaded.

A run's folder is ``runs/{model}_{data}_{profile}_seed{seed}`` with ``_{hash}`` appended when some
settings differ from the profile's defaults (a short hash of those settings), so two different
runs never share a folder by default. Its ``run.json`` records every setting, the profile, the
*code fingerprint* (a hash of the source of the library modules that define the data, the model,
its objective and the training), the library version and the git revision.

Opening a folder (:func:`open_run`) decides what its contents are worth:

- the same settings and fingerprint: the run is current; a finished one is loaded, an interrupted
  one resumes from its checkpoint;
- the same settings, another fingerprint: the run is *stale* (trained by other code). It is moved
  aside into ``stale-{fingerprint}/`` inside the folder, nothing deleted, and trained again; with
  ``load_stale=True`` it is used as it is, with a warning;
- other settings: refused, naming each setting that differs. A folder resumes only its own run.

Checkpoints hold tensors and plain containers only and load with ``weights_only=True``
(:func:`disentangle.train.load_payload`): a file that needs more could run code when unpickled,
and is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from disentangle import config
from disentangle.settings import Settings

RECORD = "run.json"
#: The files a run writes to its folder: all that setting a stale run aside moves. A study's
#: ``log.txt`` stays: it logs every attempt at the folder's run, stale ones included.
RUN_FILES = (RECORD, "checkpoint.pt", "metrics.json", "history.json", "traversal.png")
PACKAGE = Path(__file__).resolve().parent


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be) or refuse at once with
    ``RuntimeError`` naming ``what``, the process that holds it and the way out: two processes
    never train one run or write one results file. The system drops the lock when its holder
    dies, so a killed process leaves none behind and the next one takes it over. (Where
    ``fcntl`` is missing, on Windows, nothing is locked.)"""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RuntimeError(f"{what} is in use by {holder} (lock {path}): let it finish or "
                               "stop it first.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: str | Path, value: object, indent: int | None = 2) -> Path:
    """Write ``value`` as JSON to ``path`` whole or not at all: into a temporary file beside it,
    flushed to disk, then renamed over ``path`` in one step, so that a kill during the write
    leaves the previous file (or none), never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with scratch.open("w") as handle:
        handle.write(json.dumps(value, indent=indent) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)
    return path


def read_json(path: str | Path, what: str, fix: str) -> Any:
    """The JSON in ``path`` (``what`` it is), or one ``ValueError`` naming the file, what is wrong
    with it and ``fix``, the way out: a file cut short, garbage, or not what it should hold."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}): {fix}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds a JSON {type(value).__name__}, not {what}: {fix}")
    return value


def fingerprint(sources: tuple[str, ...], package: Path | None = None) -> str:
    """A 12-digit hash of the source files (and folders) ``sources`` of ``package`` (default: this
    library): paths and contents, in sorted order, so that any edit to them changes it."""
    package = PACKAGE if package is None else package
    digest = hashlib.sha256()
    for source in sources:
        where = package / source
        files = sorted(where.rglob("*.py")) if where.is_dir() else [where]
        for path in files:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def repository_root() -> Path:
    """The repository this library is installed from (an editable install, as the book's is),
    where the README runs the commands and so where chapters find what the commands wrote;
    outside a repository, the current folder."""
    repository = PACKAGE.parents[1]
    return repository if (repository / "pyproject.toml").exists() else Path.cwd()


def settings_hash(values: dict) -> str:
    """A short hash of a dict of settings (order-free)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


def default_dir(settings: Settings, profile: str, root: str | Path | None = None) -> Path:
    """``runs/{model}_{data}_{profile}_seed{seed}[_{hash}]`` under ``root`` (default:
    :func:`repository_root`); the hash covers the settings that differ from the profile's."""
    profile = config.resolve_profile(profile)
    name = f"{settings.model}_{settings.data}_{profile}_seed{settings.seed}"
    differing = settings.differing(profile)
    if differing:
        name += "_" + settings_hash(differing)
    store = Path(root if root is not None else repository_root()) / "runs"
    # A dry run's few steps must never be taken for the profile's real run.
    return store / name if config.learns(profile) else store / "dry-run" / name


def record(settings: Settings, profile: str, family: str, code: str) -> dict:
    """What ``run.json`` holds for a run of ``settings`` of ``family`` made now by the training
    code of fingerprint ``code``."""
    try:
        version = metadata.version("disentangle")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "model": settings.model,
        "data": settings.data,
        "profile": profile,
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "differing_from_profile": settings.differing(profile),
        "dry_run": not config.learns(profile),
        "family": family,
        "fingerprint": code,
        "disentangle": version,
        "git_revision": config.git_revision(),
        # A record is per machine: the same code and seed on another processor lands within the
        # seeds' spread, not bit for bit.
        "environment": config.environment("cpu"),
    }


def read_record(out: str | Path) -> dict | None:
    """The ``run.json`` of a run folder, ``None`` where there is none; a damaged one is refused
    in one line naming it."""
    path = Path(out) / RECORD
    if not path.exists():
        return None
    return read_json(path, "a run's record", f"move the folder {Path(out)} aside (or delete it) "
                                               "and run again to train the run afresh.")


def _differences(held: dict, asked: dict) -> list[str]:
    """Each setting (and the profile) whose recorded value differs from the one asked for; a
    setting the record does not know is no difference (it came with newer code: a staleness)."""
    changed = [f"{key} ({held.get(key)} here, {asked[key]} asked)"
               for key in ("profile", "dry_run") if held.get(key, False) != asked[key]]
    for name, value in asked["settings"].items():
        if name in held.get("settings", {}) and held["settings"][name] != value:
            changed.append(f"{name} ({held['settings'][name]!r} here, {value!r} asked)")
    return changed


def _set_aside(out: Path, label: str) -> Path:
    """Move the run's files (:data:`RUN_FILES`) of ``out`` into ``out/stale-{label}``."""
    aside = out / f"stale-{label}"
    aside.mkdir(exist_ok=True)
    for name in RUN_FILES:
        if (out / name).exists():
            shutil.move(str(out / name), aside / name)
    return aside


def _clear_leftovers(out: Path) -> None:
    """Delete the half-written files a process killed while writing left in ``out`` (a
    checkpoint's ``*.PID.partial``, a JSON file's ``.*.PID.tmp``) whose process is gone."""
    for leftover in [*out.glob("*.partial"), *out.glob(".*.tmp")]:
        pid = leftover.name.split(".")[-2]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def saved_models() -> Path:
    """The folder of saved models shipped with the book (``models/`` in the repository): finished
    runs of the cpu profile, each in a folder named as in the run store, with a slim checkpoint
    (:func:`disentangle.train.slim`)."""
    return repository_root() / "models"


def _take_saved(out: Path, asked: dict) -> None:
    """Copy the saved model of the run ``asked`` into its empty default folder ``out`` when one
    is shipped (:func:`saved_models`) and current: same settings, profile and training code. A
    stale one is left where it is, and the run trains (one line on stderr says so)."""
    saved = saved_models() / out.name
    if any((out / name).exists() for name in RUN_FILES) or not (saved / RECORD).exists():
        return
    held = read_record(saved)
    if held.get("fingerprint") != asked["fingerprint"] or _differences(held, asked):
        print(f"the saved model {saved} was trained by code {held.get('fingerprint')}, the "
              f"library is now {asked['fingerprint']}: training the run instead (remake the "
              "saved models with tools/save_models.py)", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (saved / name).exists():
            shutil.copy2(saved / name, out / name)
    print(f"loaded the saved model {saved.relative_to(repository_root())}", file=sys.stderr)


def open_run(
    out: str | Path, settings: Settings, profile: str, family: str, code: str, *,
    load_stale: bool = False,
) -> dict:
    """Check ``out`` against the run asked for and claim it; returns the record in force.

    An empty or new folder gets ``run.json``. A folder of the same run and code is used as it is.
    A stale one is set aside and started anew (one line on stderr says so), or with
    ``load_stale=True`` kept, with a warning. A folder of other settings raises ``ValueError``
    naming each difference, unless it has the default name of the run asked for and was made by
    other code: a profile's defaults changed since, and the old run is set aside as stale. Files
    of a run made before the store (a checkpoint with no ``run.json``) count as stale."""
    out = Path(out)
    _clear_leftovers(out)
    asked = record(settings, profile, family, code)
    if out.resolve() == default_dir(settings, profile).resolve():
        _take_saved(out, asked)
    held = read_record(out)
    if held is None and any((out / name).exists() for name in RUN_FILES):
        held = {"profile": profile, "settings": {}, "fingerprint": "unrecorded"}
    if held is not None:
        changed = _differences(held, asked)
        older = held.get("fingerprint") != asked["fingerprint"]
        # A folder of the default name holds other settings when a profile's defaults changed
        # with the code since: that run is another one now, and stale. Any other folder of other
        # settings was named by hand, and is refused.
        if changed and not (older and out.name == default_dir(settings, profile).name):
            raise ValueError(
                f"{out} holds a run with other settings: {'; '.join(changed)}. A folder resumes "
                "only its own run: give another folder, or leave --out out for the default one."
            )
        same_names = set(held.get("settings", {})) == set(asked["settings"])
        if not older and same_names:
            return held
        if load_stale and not changed:
            warnings.warn(
                f"{out} was trained by other code (fingerprint {held.get('fingerprint')}, the "
                f"library's is {asked['fingerprint']}); loading it anyway as asked.", stacklevel=2
            )
            return held
        aside = _set_aside(out, str(held.get("fingerprint")))
        unknown = sorted(set(asked["settings"]) - set(held.get("settings", {})))
        why = (f"a run of the profile's former defaults ({'; '.join(changed)})" if changed
               else f"a run recorded before the settings {', '.join(unknown)} existed"
               if unknown and not older else "a stale run")
        print(f"{out} holds {why}, trained by code {held.get('fingerprint')}; the library is now "
              f"{asked['fingerprint']}: training the run asked for; the old files are in "
              f"{aside.name}/", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RECORD, asked)
    return asked


def current_result(
    out: str | Path, settings: Settings, profile: str, code: str, evaluation_code: str
) -> dict | None:
    """The ``metrics.json`` in ``out`` if it records the finished run of ``settings`` in
    ``profile``, trained by the code of fingerprint ``code`` and scored by that of
    ``evaluation_code``; else ``None``. The one check of whether a finished result is current."""
    path = Path(out) / "metrics.json"
    held = read_record(out)
    if not path.exists() or held is None:
        return None
    try:
        recorded = read_json(path, "a run's result", "")
    except ValueError as err:
        # A result cut short: the checkpoint is what counts, and the run is scored again.
        print(f"{' '.join(str(err).split()).rstrip(': ')}; scoring the run again",
              file=sys.stderr)
        return None
    current = (
        recorded.get("settings") == settings.as_dict()
        and recorded.get("profile") == profile
        and held.get("dry_run", False) == (not config.learns(profile))
        and recorded.get("fingerprint") == code
        and held.get("fingerprint") == code
        and recorded.get("evaluation_fingerprint") == evaluation_code
    )
    return recorded if current else None


def restamp(check: dict, store: str | Path, results: str | Path,
            complete: Callable[[dict], dict] | None = None) -> dict[str, int]:
    """Carry finished runs across a change of code that changed no number.

    ``check`` is the record of an old-versus-new comparison (``tools/same_numbers.py compare``):
    seed 0 of every group of every recorded study trained by both versions on one machine, with
    every number equal (``same``), and per family the one training and evaluation fingerprint of
    each side. Only then, and only for a family whose fingerprints each side holds exactly one of,
    every run of the store ``store`` (its ``runs/`` folders and saved models, ``models/``) and
    every run of the study results files in ``results`` that was made by the old code of that
    family is stamped with the new fingerprints (its ``run.json`` and ``metrics.json``, or its
    entry in the results file; a run only trained, without ``metrics.json``, by its training
    fingerprint alone), with a ``restamped`` note naming the old ones. Runs made by any
    other code are left stale. A setting the new code added (at its default, or the check would
    have failed) is written into a restamped folder's record by ``complete``, which gives the whole
    settings of a ``run.json`` under the new code; without it such a run would count as stale.
    Returns how many run folders and study entries were restamped."""
    if not check.get("same"):
        raise ValueError("The check found numbers that changed (or missing runs): nothing is "
                         "restamped; retrain instead.")
    mapping: dict[tuple[str, str], tuple[str, str]] = {}
    for name, prints in check.get("fingerprints", {}).items():
        sides = [prints.get(side, []) for side in ("old", "new", "old_evaluation",
                                                    "new_evaluation")]
        if any(len(side) != 1 for side in sides):
            raise ValueError(f"The check holds {sides} for family {name}: one fingerprint of "
                             "each kind per side is needed to restamp.")
        mapping[(sides[0][0], sides[2][0])] = (sides[1][0], sides[3][0])
    counts = {"run_folders": 0, "study_runs": 0}

    def stamped(entry: dict) -> bool:
        key = (entry.get("fingerprint"), entry.get("evaluation_fingerprint"))
        if key not in mapping:
            return False
        entry["fingerprint"], entry["evaluation_fingerprint"] = mapping[key]
        entry["restamped"] = {"fingerprint": key[0], "evaluation_fingerprint": key[1]}
        return True

    # A run a chapter only trained (no metrics.json) holds the training fingerprint alone.
    trained_only = {old[0]: new[0] for old, new in mapping.items()}

    def completed(held: dict) -> dict:
        if complete is None:
            return held
        return {**held, "settings": {**complete(held), **held.get("settings", {})}}
    store = Path(store)
    for folder in sorted([*store.glob("runs/**/" + RECORD), *store.glob("models/*/" + RECORD)]):
        metrics_path = folder.parent / "metrics.json"
        held = read_json(folder, "a run's record", "move that run folder aside.")
        if not metrics_path.exists():
            if held.get("fingerprint") in trained_only:
                held["restamped"] = {"fingerprint": held["fingerprint"]}
                held["fingerprint"] = trained_only[held["fingerprint"]]
                write_json(folder, completed(held))
                counts["run_folders"] += 1
            continue
        result = read_json(metrics_path, "a run's result", "move that run folder aside.")
        if stamped(result):
            held["fingerprint"] = result["fingerprint"]
            held["restamped"] = result["restamped"]
            held = completed(held)
            write_json(folder, held)
            if "settings" in result:
                result["settings"] = held["settings"]
            write_json(metrics_path, result)
            counts["run_folders"] += 1
    for path in sorted(Path(results).glob("study_*.json")):
        record = read_json(path, "a study's results", "restore it from git.")
        changed = [entry for entry in record.get("runs", []) if stamped(entry)]
        if changed:
            write_json(path, record)
            counts["study_runs"] += len(changed)
    return counts
