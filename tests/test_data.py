import gzip
import hashlib
import io
import urllib.error

import numpy as np
import pytest
import torch

from disentangle import data
from disentangle.data import dsprites, mnist

SMALL = {"orientation": [0, 10], "posX": [0, 31], "posY": [5, 20], "scale": [0, 5]}


@pytest.fixture(scope="module")
def full():
    return data.DSpritesStyle()


@pytest.fixture(scope="module")
def small():
    return data.DSpritesStyle(subset=SMALL)


# The common interface -----------------------------------------------------------------------


def test_grid_and_official_indexing(full):
    assert full.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert full.factor_sizes == (1, 3, 6, 40, 32, 32)
    assert len(full) == 737_280
    assert full.bases.tolist() == [737_280, 245_760, 40_960, 1024, 32, 1]
    # C order, last factor fastest, as in the official file.
    assert full.index([0, 0, 0, 0, 0, 1])[0] == 1
    assert full.index([0, 0, 0, 0, 1, 0])[0] == 32
    assert full.index([0, 2, 5, 39, 31, 31])[0] == len(full) - 1


def test_index_and_factors_are_inverse(full):
    rng = np.random.default_rng(0)
    index = rng.integers(0, len(full), 1000)
    assert np.array_equal(full.index(full.factors(index)), index)
    factors = full.sample_factors(1000, rng)
    assert np.array_equal(full.factors(full.index(factors)), factors)


def test_sampling_is_seeded_and_in_range(full):
    a = full.sample_factors(500, np.random.default_rng(3))
    b = full.sample_factors(500, np.random.default_rng(3))
    assert a.dtype == np.int64 and a.shape == (500, 6) and np.array_equal(a, b)
    assert (a >= 0).all() and (a < np.array(full.factor_sizes)).all()


def test_images_and_getitem(full):
    factors = full.sample_factors(16, np.random.default_rng(1))
    images = full.images(factors)
    assert images.dtype == torch.float32 and images.shape == (16, 1, 64, 64)
    assert set(images.unique().tolist()) <= {0.0, 1.0}
    image, item_factors = full[int(full.index(factors[3])[0])]
    assert np.array_equal(item_factors, factors[3]) and torch.equal(image, images[3])


def test_batch_on_the_host_path(small):
    generator = torch.Generator().manual_seed(0)
    images, factors = small.batch(32, generator)
    assert images.shape == (32, 1, 64, 64) and factors.shape == (32, 6)
    assert torch.equal(images, small.images(factors.numpy()))


@pytest.mark.parametrize(
    "factors, message",
    [
        ([0, 3, 0, 0, 0, 0], r"Factor 'shape' has class 3 out of range: valid classes are 0..2"),
        ([0, 0, 0, 40, 0, 0], r"'orientation' has class 40 .* 0..39"),
        ([0, 0, 0, 0, -1, 0], r"'posX' has class -1"),
        ([0, 0, 0, 0, 0], r"shape \(n, 6\) for the factors color, shape"),
        ([0.5, 0, 0, 0, 0, 0], r"integer class indices"),
    ],
)
def test_bad_factors_name_the_problem(full, factors, message):
    with pytest.raises(ValueError, match=message):
        full.images(factors)


def test_bad_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid names are dsprites-style, dsprites-style-tied, "
                                         "styled-digits"):
        data.load_ground_truth("dsprites", "smoke")
    with pytest.raises(ValueError, match="valid names are dsprites-style, dsprites-style-upright"):
        data.load_labelled("dsprites", None, "smoke", 0, "cpu")
    with pytest.raises(KeyError, match="dSprites factors are color, shape"):
        data.DSpritesStyle(subset={"size": [0]})
    with pytest.raises(ValueError, match="holds class 6: valid classes are 0..5"):
        data.DSpritesStyle(subset={"scale": [0, 6]})
    with pytest.raises(IndexError, match="valid indices are 0..737279"):
        data.DSpritesStyle().factors(737_280)


# dSprites-style ---------------------------------------------------------------------------


def test_calibrated_on_real_frames():
    _, iou = data.best_matches(data.reference_frames())
    assert len(iou) == 320
    # The bar: median >= 0.9 and worst >= 0.8; measured 0.974 and 0.889 when written.
    assert np.median(iou) >= 0.9, np.median(iou)
    assert iou.min() >= 0.8, iou.min()


def test_rendering_is_pinned(full):
    """The same factors give the same pixels on every machine: a change here changes the data of
    every chapter, and must come with a new GEOMETRY_VERSION and a new hash."""
    factors = full.sample_factors(256, np.random.default_rng(2024))
    bits = np.packbits(full.images(factors).numpy().astype(bool)).tobytes()
    assert dsprites.GEOMETRY_VERSION == 1
    assert (
        hashlib.sha256(bits).hexdigest()
        == "d43f18cbb9e1e64490c4288c0fb9123ee0519e0837917426b6257c8b01094cec"
    )


def test_geometry_matches_the_real_square(full):
    # The real frames show an upright square at scale 1 in the top-left corner covering
    # exactly the 20 x 20 pixels 6..25.
    image = full.images([0, 0, 5, 0, 0, 0])[0, 0].numpy()
    rows, cols = np.nonzero(image)
    assert image.sum() == 400
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 25, 6, 25)


def test_orientation_range_is_inclusive(full):
    # 0 and 2 pi are both in the grid, so classes 0 and 39 draw the same picture.
    for shape in range(3):
        first = full.images([0, shape, 3, 0, 10, 20])
        last = full.images([0, shape, 3, 39, 10, 20])
        assert torch.equal(first, last)


def test_every_image_stays_inside_the_frame(full):
    corners = [[0, s, 5, o, x, y] for s in range(3) for o in range(0, 40, 3) for x in (0, 31)
               for y in (0, 31)]
    images = full.images(corners)
    assert (images.sum(dim=(1, 2, 3)) > 20).all()
    assert images[..., 0, :].sum() == 0 and images[..., -1, :].sum() == 0
    assert images[..., :, 0].sum() == 0 and images[..., :, -1].sum() == 0


def test_reduced_grid(small, full):
    assert small.factor_sizes == (1, 3, 2, 2, 2, 2) and len(small) == 48
    assert small.official_classes([0, 1, 1, 1, 1, 0]).tolist() == [[0, 1, 5, 10, 31, 5]]
    assert torch.equal(small.images([0, 1, 1, 1, 1, 0]), full.images([0, 1, 5, 10, 31, 5]))
    values = small.latent_values([0, 2, 1, 0, 1, 1])[0]
    assert np.allclose(values, [1.0, 3.0, 1.0, 0.0, 1.0, 20 / 31])


def test_materialized_grid_is_cached_and_equal(tmp_path):
    grid = data.DSpritesStyle(subset=SMALL)
    store = grid.materialize(cache_dir=tmp_path, progress=False)
    assert len(store) == 48 and len(list(tmp_path.glob("dsprites_style_v1_*.npy"))) == 1
    every = grid.factors(np.arange(48))
    assert torch.equal(grid.images(every), torch.from_numpy(dsprites.render(
        grid.official_classes(every))).float().unsqueeze(1))
    again = data.DSpritesStyle(subset=SMALL)
    assert torch.equal(again.materialize(cache_dir=tmp_path, progress=False).bits, store.bits)
    other = data.DSpritesStyle(subset={**SMALL, "shape": [1]})
    other.materialize(cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 2, "a different subset must not reuse the file"


def test_device_fast_path_matches_rendering(tmp_path):
    grid = data.DSpritesStyle(subset=SMALL)
    grid.materialize(cache_dir=tmp_path, progress=False)
    grid.to("cpu")
    images, factors = grid.batch(64, torch.Generator().manual_seed(1), device="cpu")
    assert images.shape == (64, 1, 64, 64) and factors.shape == (64, 6)
    rendered = dsprites.render(grid.official_classes(factors.numpy()))
    assert torch.equal(images, torch.from_numpy(rendered).float().unsqueeze(1))


def test_packed_images_round_trip():
    images = np.random.default_rng(0).random((5, 64, 64)) > 0.5
    store = data.PackedImages.pack(images)
    assert store.bits.shape == (5, 512)
    assert np.array_equal(store[torch.arange(5)][:, 0].numpy().astype(bool), images)


# Official files ----------------------------------------------------------------------------


def _official_arrays(grid):
    every = grid.factors(np.arange(len(grid)))
    imgs = dsprites.render(grid.official_classes(every)).astype(np.uint8)
    return imgs, every, grid.latent_values(every)


def test_official_npz_is_read(tmp_path, small):
    imgs, classes, values = _official_arrays(small)
    path = tmp_path / "dsprites.npz"
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=np.array(0))
    loaded = data.DSprites.from_file(path)
    assert loaded.factor_sizes == small.factor_sizes and len(loaded) == 48
    factors = loaded.sample_factors(10, np.random.default_rng(0))
    assert torch.equal(loaded.images(factors), small.images(factors))


def test_official_hdf5_is_read(tmp_path, small):
    h5py = pytest.importorskip("h5py", reason="h5py reads the HDF5 twin; pip install h5py")
    imgs, classes, values = _official_arrays(small)
    path = tmp_path / "dsprites.hdf5"
    with h5py.File(path, "w") as f:
        f["imgs"] = imgs
        f["latents/classes"] = classes
        f["latents/values"] = values
    loaded = data.DSprites.from_file(path)
    assert torch.equal(loaded.images([0, 1, 1, 1, 1, 1]), small.images([0, 1, 1, 1, 1, 1]))


def test_wrong_official_files_say_what_was_expected(tmp_path, small):
    imgs, classes, values = _official_arrays(small)
    short = tmp_path / "short.npz"
    np.savez(short, imgs=imgs[:-1], latents_classes=classes[:-1], latents_values=values[:-1])
    with pytest.raises(ValueError, match="truncated or reordered.*737,280"):
        data.DSprites.from_file(short)
    keys = tmp_path / "keys.npz"
    np.savez(keys, images=imgs)
    with pytest.raises(ValueError, match=r"lacks the arrays \['imgs', 'latents_classes'"):
        data.DSprites.from_file(keys)
    broken = tmp_path / "broken.npz"
    good = tmp_path / "good.npz"
    np.savez(good, imgs=imgs, latents_classes=classes, latents_values=values)
    broken.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated or not the official .npz"):
        data.DSprites.from_file(broken)
    with pytest.raises(FileNotFoundError, match="deepmind/dsprites-dataset"):
        data.DSprites.from_file(tmp_path / "absent.npz")


# Styled digits and real digits --------------------------------------------------------------


def test_styled_digits_interface():
    digits = data.StyledDigits()
    assert digits.factor_names[0] == "digit" and digits.factor_sizes[0] == 10
    assert len(digits) == 10 * 4 * 9 * 5 * 4 * 8 * 8
    factors = digits.sample_factors(20, np.random.default_rng(0))
    images = digits.images(factors)
    assert images.shape == (20, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, digits.images(factors)), "rendering must be repeatable"
    assert data.StyledDigits(size=64).images(factors[:2]).shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="28, 32 or 64"):
        data.StyledDigits(size=30)


def test_styled_digits_factors_do_what_they_say():
    digits = data.StyledDigits()
    base = np.array([8, 0, 4, 2, 1, 3, 3])  # an upright 8, middle size and place

    def vary(k, values):
        rows = np.repeat(base[None], len(values), axis=0)
        rows[:, k] = values
        return digits.images(rows)[:, 0].numpy()

    ink = vary(4, range(4)).sum(axis=(1, 2))
    assert np.all(np.diff(ink) > 0), f"ink must grow with thickness: {ink}"
    ink = vary(3, range(5)).sum(axis=(1, 2))
    assert np.all(np.diff(ink) > 0), f"ink must grow with scale: {ink}"
    cols = np.arange(28)
    moved = vary(5, range(8))
    centre_x = (moved * cols).sum(axis=(1, 2)) / moved.sum(axis=(1, 2))
    assert np.all(np.diff(centre_x) > 0), "posX moves the digit to the right"
    turned = vary(2, [0, 4, 8])
    assert not np.allclose(turned[0], turned[1]) and not np.allclose(turned[1], turned[2])
    faces = vary(1, range(4))
    assert all(not np.allclose(faces[i], faces[j]) for i in range(4) for j in range(i + 1, 4))


def test_real_digits_split():
    split = data.load_digits()
    assert split["x_train"].shape == (1348, 1, 8, 8) and split["x_test"].shape == (449, 1, 8, 8)
    assert split["x_train"].max() <= 1 and split["y_test"].dtype == torch.int64
    assert torch.equal(split["y_test"], data.load_digits()["y_test"]), "the split is fixed"
    assert not torch.equal(split["y_test"], data.load_digits(seed=1)["y_test"])
    assert data.load_digits(size=28)["x_train"].shape == (1348, 1, 28, 28)
    with pytest.raises(ValueError, match="test_fraction"):
        data.load_digits(test_fraction=1.5)


def test_mnist_5k_is_real_mnist_with_a_fixed_stratified_split():
    split = data.load_mnist_5k()
    assert split["x_train"].shape == (4000, 1, 28, 28)
    assert split["x_test"].shape == (1000, 1, 28, 28)
    assert torch.equal(torch.bincount(split["y_test"]), torch.full((10,), 100))
    assert torch.equal(torch.bincount(split["y_train"]), torch.full((10,), 400))
    assert split["x_train"].min() == 0 and split["x_train"].max() == 1
    # No digit is in both halves, and the first test digits are a mix of classes.
    train = {tuple(row) for row in split["x_train"].flatten(1).numpy().round(3)}
    assert not any(tuple(row) in train for row in split["x_test"].flatten(1).numpy().round(3))
    assert len(set(split["y_test"][:20].tolist())) > 5
    again = data.load_labelled("mnist-5k", None, "cpu", 3, torch.device("cpu"))
    assert torch.equal(again.y_test, split["y_test"]), "the split does not depend on the seed"
    smoke = data.load_labelled("mnist-5k", None, "smoke", 0, torch.device("cpu"))
    assert len(smoke.y_train) == 2000 and len(smoke.y_test) == 1000


# MNIST files ------------------------------------------------------------------------------


def _write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def _fake_mnist(folder, n_train=12, n_test=5):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[prefix] = (
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8),
        )
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", arrays[prefix][0])
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", arrays[prefix][1])
    return arrays


def test_mnist_from_idx_files(tmp_path):
    arrays = _fake_mnist(tmp_path / "mnist")
    loaded = data.load_mnist("mnist", root=tmp_path)
    assert loaded["x_train"].shape == (12, 1, 28, 28) and loaded["y_test"].shape == (5,)
    assert np.allclose(loaded["x_train"][:, 0].numpy() * 255, arrays["train"][0])
    assert np.array_equal(loaded["y_test"].numpy(), arrays["t10k"][1])


def test_truncated_idx_file(tmp_path):
    _fake_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(ValueError, match=r"truncated or padded.*\(5, 28, 28\)"):
        data.load_mnist("mnist", root=tmp_path)


def test_missing_mnist_names_the_files_and_the_folder(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz.*download=True"):
        data.load_mnist("fashion_mnist", root=tmp_path)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match="Offline, place these files in"):
        data.load_mnist("mnist", root=tmp_path, download=True)
    with pytest.raises(ValueError, match="valid names are mnist, fashion_mnist"):
        data.load_mnist("kmnist", root=tmp_path)


def test_download_is_checked_against_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(
        mnist.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the file")
    )
    with pytest.raises(ValueError, match="does not match its MD5 sum"):
        data.load_mnist("mnist", root=tmp_path, download=True)
    assert not list((tmp_path / "mnist").glob("*.gz")), "a bad download must not be kept"


# Correlated factors -----------------------------------------------------------------------


def test_tied_positions_have_the_stated_dependence(full):
    equal = data.tie(full, "posX", "posY", spread=0)
    assert equal.mutual_information("posX", "posY") == pytest.approx(np.log(32), abs=1e-12)
    loose = data.tie(full, "posX", "posY", spread=3)
    exact = loose.mutual_information("posX", "posY")
    assert 0 < exact < np.log(32)
    assert loose.mutual_information("shape", "posX") == 0.0
    factors = loose.sample_factors(200_000, np.random.default_rng(0))
    assert np.abs(factors[:, 4] - factors[:, 5]).max() == 3
    counts = np.zeros((32, 32))
    np.add.at(counts, (factors[:, 4], factors[:, 5]), 1)
    p = counts / counts.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    empirical = (p[nz] * np.log(p[nz] / (px @ py)[nz])).sum()
    # Plug-in MI from 200,000 draws over ~220 cells: bias about cells / (2 n) = 0.0006 nats.
    assert empirical == pytest.approx(exact, abs=0.01)
    # The other factors stay uniform.
    assert np.bincount(factors[:, 1], minlength=3).min() > 60_000


def test_correlated_factors_check_their_table(full):
    with pytest.raises(ValueError, match=r"must have shape \(3, 6\)"):
        data.CorrelatedFactors(full, ("shape", "scale"), np.ones((3, 5)) / 15)
    with pytest.raises(KeyError, match="Unknown factor 'size'"):
        data.tie(full, "size", "posX", 1)
    with pytest.raises(ValueError, match="non-negative"):
        data.tie(full, "posX", "posY", -1)


def test_traversal_walks_one_factor(full):
    walk = full.traversal("posX", base=[0, 1, 2, 3, 4, 5], steps=5)
    assert walk[:, 4].tolist() == [0, 8, 16, 23, 31]
    assert (walk[:, [0, 1, 2, 3, 5]] == [0, 1, 2, 3, 5]).all()
    assert len(full.traversal("shape")) == 3
    with pytest.raises(KeyError, match="its factors are color, shape"):
        full.traversal("colour")


def test_traversal_images_pad_short_rows(small):
    grid = small.traversal_images(["shape", "scale"])
    assert grid.shape == (2, 3, 1, 64, 64)
    assert grid[1, 2].sum() == 0 and grid[1, 1].sum() > 0
    assert small.traversal_images().shape[0] == 5  # color has one class and is left out


def test_materialize_command_records_its_measurements(tmp_path, monkeypatch, capsys):
    import functools
    import json

    from disentangle import cli

    monkeypatch.setattr(data, "DSpritesStyle", functools.partial(data.DSpritesStyle, subset=SMALL))
    out = tmp_path / "record.json"
    args = ["materialize", "--fresh", "--device", "cpu", "--batch", "8", "--steps", "2",
            "--repeats", "3", "--quiet", "--out", str(out)]
    assert cli.main(args) == 0
    record = json.loads(out.read_text())
    assert record["images"] == 48 and record["rendered_fresh"] is True
    assert record["sampling_images_per_second_median"] > 0
    assert record["command"] == "python -m disentangle " + " ".join(args)
    assert record["environment"]["device"] == "cpu"
