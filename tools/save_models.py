"""Save finished runs as the book's saved models (``models/``), which a chapter loads instead of
training when the run store finds one current (:func:`disentangle.runs.open_run`).

    python tools/save_models.py runs/infogan_dsprites-style_cpu_seed0 ...
    python tools/save_models.py --chapters      # the cpu-profile runs the chapters train

Each run folder is copied as it is (``run.json``, ``metrics.json``, ``history.json``, the
figure) with a slim checkpoint: the weights without the optimizers' state
(:func:`disentangle.train.slim`). A run that is not finished (trained to its last step; a run a
chapter only trains, with ``load_or_train``, has no ``metrics.json`` yet), or not current with
the library's code, is refused: a saved model is only ever what this code trains. After a change
of a family's training code, train the chapters again in the cpu profile and run this again (or, for
a change proved to change no number, ``python -m disentangle restamp``, which stamps
``models/`` too).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from disentangle import registry, runs, train

ROOT = Path(__file__).resolve().parents[1]


#: The default run folders of the cpu profile that chapters train through the run store: 06's
#: beta sweep and VIB on styled digits and the Explorer's two-step model (11). Chapter 05's
#: DisTIB on mnist-5k and chapter 13's InfoGAN are not shipped: their weights alone are over
#: :data:`MAX_MB`; the first reading trains them into runs/, where later readings find them.
CHAPTER_RUNS = (
    "distib_styled-digits_cpu_seed0_036cdea9",
    "distib_styled-digits_cpu_seed0_56637e65",
    "distib_styled-digits_cpu_seed0_9c88e9fb",
    "vib_styled-digits_cpu_seed0_0b835f24",
    "twostep_styled-digits_cpu_seed0_8f0954ce",
)
#: The largest checkpoint the repository takes, in MB (larger files are generated, not tracked).
MAX_MB = 5.0


def save(folder: Path, store: Path) -> Path:
    """Copy the finished, current run ``folder`` into ``store`` with a slim checkpoint."""
    held = runs.read_record(folder)
    checkpoint = folder / train.CHECKPOINT
    if held is None or not checkpoint.exists() or \
            int(train.load_payload(checkpoint)["step"]) < held["settings"]["steps"]:
        raise SystemExit(f"error: {folder} holds no finished run: train it first.")
    family = registry.family_of(held["model"])
    if held["fingerprint"] != family.fingerprint():
        raise SystemExit(f"error: {folder} was trained by code {held['fingerprint']}, the "
                         f"library is {family.fingerprint()}: train it again first.")
    target = store / folder.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in runs.RUN_FILES:
        if name != train.CHECKPOINT and (folder / name).exists():
            shutil.copy2(folder / name, target / name)
    train.slim(folder / train.CHECKPOINT, target / train.CHECKPOINT)
    size = (target / train.CHECKPOINT).stat().st_size / 2**20
    if size > MAX_MB:
        shutil.rmtree(target)
        raise SystemExit(f"error: {folder.name}'s weights take {size:.1f} MB, over the "
                         f"repository's {MAX_MB:g} MB a file: leave it to the run store.")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="finished run folders")
    parser.add_argument("--chapters", action="store_true",
                        help="the cpu-profile runs the chapters train")
    parser.add_argument("--store", type=Path, default=ROOT / "models")
    args = parser.parse_args(argv)
    chapters = [ROOT / "runs" / name for name in CHAPTER_RUNS] if args.chapters else []
    folders = [*args.folders, *chapters]
    if not folders:
        parser.error("name run folders, or --chapters")
    for folder in folders:
        target = save(folder, args.store)
        size = sum(p.stat().st_size for p in target.iterdir()) / 2**20
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
              f"{size:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
