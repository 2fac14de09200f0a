import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from disentangle import data, runs, supervised, train
from disentangle.supervised import SupervisedSettings
from disentangle.supervised import evaluation as supervised_evaluation

KEYS = {
    "accuracy_a", "probe_label_from_a", "probe_label_from_z", "probe_nuisance_from_a",
    "probe_nuisance_from_z", "mi_x_a", "mi_x_z", "mi_a_y", "mi_a_z", "fgsm_accuracy", "profile",
    "seed", "flags",
    "environment", "wall_seconds", "train_seconds", "swaps", "probe_label_from_a_sampled",
    "probe_label_from_z_sampled", "probe_nuisance_from_a_sampled", "probe_nuisance_from_z_sampled",
    "probe_label_from_z_mlp", "probe_nuisance_from_a_sampled_mlp", "probe_nuisance_from_z_mlp",
}


@pytest.fixture(scope="module")
def distib_digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("distib")
    return out, supervised.run("distib", "digits", profile="smoke", seed=0, out_dir=out,
                               progress=False, steps=60)


def test_distib_run_writes_every_metric(distib_digits):
    out, result = distib_digits
    metrics = result["metrics"]
    assert KEYS <= set(metrics) | set(result)
    rows = supervised.probe_table(metrics).splitlines()
    # two header lines, then the label and every nuisance factor, each read from A and from Z
    assert len(rows) == 2 + 2 * (1 + len(metrics["nuisance_chance"]))
    z_row = next(row for row in rows if row.startswith("label from Z")).split()[3:]
    assert [float(v) for v in z_row] == pytest.approx(
        [metrics["probe_label_from_z"], metrics["probe_label_from_z_sampled"],
         metrics["probe_label_from_z_mlp"], metrics["probe_label_from_z_sampled_mlp"],
         metrics["chance"]], abs=5e-4)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["metrics"]["accuracy_a"] == metrics["accuracy_a"]
    for name in supervised_evaluation.FGSM_SCORES:
        assert set(on_disk["metrics"][name]) == {"0.1", "0.2", "0.3"}, name
    assert on_disk["flags"] == []  # a model that learned, with a loss that fell
    assert on_disk["environment"]["torch"] == torch.__version__
    history = json.loads((out / "history.json").read_text())
    assert {"reconstruction", "cross_entropy", "kl_a", "kl_z", "total"} <= set(history["terms"])
    # Learning happened: 60 steps on 8 x 8 digits are far above the 10% of chance.
    assert metrics["accuracy_a"] > 0.3
    for rate in ("accuracy", "survival"):
        assert 0 <= metrics[f"fgsm_{rate}"]["0.3"] <= metrics[f"fgsm_{rate}"]["0.1"] <= 1
    # Over all points the attacked accuracy is at most the clean one; survival is of those.
    assert metrics["fgsm_accuracy"]["0.1"] <= metrics["accuracy_a"]
    assert set(metrics["swaps"]) == {"label_follows_a", "follows_a", "follows_z", "reconstructed",
                                     "centre_x_follows_z", "centre_x_follows_a"}


def test_a_finished_run_resumes_without_training_again(distib_digits, monkeypatch):
    out, result = distib_digits
    stamp = (out / "checkpoint.pt").stat().st_mtime_ns

    def no_step(*args, **kwargs):
        def step(batch):
            raise AssertionError("a finished run took a training step")
        return step

    # Any step the loaded run took would now raise.
    monkeypatch.setattr(train, "gradient_step", no_step)
    again = supervised.run("distib", "digits", profile="smoke", seed=0, out_dir=out,
                           progress=False, steps=60)
    assert again["metrics"]["accuracy_a"] == result["metrics"]["accuracy_a"]
    assert again["train_seconds"] == result["train_seconds"]  # the recorded training time
    assert (out / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_labelled_dsprites_has_nuisance_factors():
    labelled = data.load_labelled("dsprites-style", None, "smoke", 0, torch.device("cpu"))
    assert labelled.label == "shape" and labelled.num_classes == 3
    assert set(labelled.nuisance_test) == {"scale", "orientation", "posX", "posY"}
    first = labelled.x_train[torch.arange(4)]
    assert first.shape == (4, 1, 64, 64) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert len(np.intersect1d(labelled.x_train.index.numpy(), labelled.x_test.index.numpy())) == 0


def test_upright_dsprites_holds_every_sprite_at_one_orientation():
    cpu = torch.device("cpu")
    for profile, n_train in (("smoke", 652), ("cpu", 14_432), ("gpu", 14_432)):
        labelled = data.load_labelled("dsprites-style-upright", None, profile, 0, cpu)
        # orientation has one value, so it is no nuisance factor; the test set fits in the grid
        assert set(labelled.nuisance_test) == {"scale", "posX", "posY"}
        assert (len(labelled.y_train), labelled.label) == (n_train, "shape")
        assert len(labelled.y_test) == (500 if profile == "smoke" else 4_000)


def test_sampled_probes_see_only_what_survives_the_posterior_noise(monkeypatch):
    # A label code whose means carry the scale as a trace 100 times smaller than its unit noise:
    # a probe on the means reads the scale, a probe on a sample of the code does not.
    cpu = torch.device("cpu")
    labelled = data.load_labelled("dsprites-style", None, "smoke", 0, cpu)
    labels = labelled.y_test.numpy()
    scale = labelled.nuisance_test["scale"]
    mean = np.zeros((len(labels), 4))
    mean[np.arange(len(labels)), labels] = 3.0
    mean[:, 3] = 0.01 * scale
    coded = {"mean_a": mean, "log_var_a": np.zeros_like(mean), "logits": mean[:, :3]}
    monkeypatch.setattr(supervised_evaluation, "encode_test", lambda model, data: coded)
    vib = supervised.VIB(labelled.image_shape, 3, dim_z=4, hidden=16)
    metrics = supervised.evaluate_model(vib, labelled, seed=0, fgsm_points=8)
    chance = metrics["nuisance_chance"]["scale"]
    assert metrics["probe_nuisance_from_a"]["scale"] > chance + 0.5
    assert metrics["probe_nuisance_from_a_sampled"]["scale"] < chance + 0.1
    assert metrics["probe_nuisance_from_a_sampled_mlp"]["scale"] < chance + 0.1  # nor a network
    assert metrics["probe_label_from_a_sampled"] > 0.8  # the label is far above the noise


def test_a_network_probe_reads_what_no_direction_of_the_code_shows():
    # The label is whether a 2-d code lies outside the unit circle: every direction of the code
    # splits the two classes evenly, so the linear probe stays near the majority class, while
    # the small network draws the circle.
    points = np.random.default_rng(0).standard_normal((2000, 2))
    outside = (np.linalg.norm(points, axis=1) > 1.18).astype(int)  # about half the points
    majority = max(outside.mean(), 1 - outside.mean())
    assert supervised.probe(points, outside) < majority + 0.05
    assert supervised.probe(points, outside, reader="mlp") > 0.95
    with pytest.raises(ValueError, match="Unknown probe reader 'tree'; valid readers are linear"):
        supervised.probe(points, outside, reader="tree")


def test_bad_labelled_data_are_named():
    with pytest.raises(ValueError, match="valid names are dsprites-style"):
        data.load_labelled("cifar", None, "smoke", 0, torch.device("cpu"))
    with pytest.raises(KeyError, match="Unknown factor 'colour'"):
        data.load_labelled("dsprites-style", "colour", "smoke", 0, torch.device("cpu"))


def test_command_line_trains_vib(tmp_path):
    out = tmp_path / "vib"
    done = subprocess.run(
        [sys.executable, "-m", "disentangle", "train", "vib", "--data", "digits",
         "--profile", "smoke", "--seed", "1", "--beta", "0.002", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "vib" and metrics["seed"] == 1
    assert metrics["settings"]["beta"] == 0.002
    assert (out / "checkpoint.pt").exists()


def test_load_or_train_trains_once_then_loads(tmp_path):
    out = tmp_path / "run"
    first = supervised.load_or_train("distib", "digits", profile="smoke", out_dir=out,
                                     progress=False)
    assert first.trained and (out / "checkpoint.pt").exists()
    assert first.settings == SupervisedSettings.for_profile("smoke", data="digits")
    again = supervised.load_or_train("distib", "digits", profile="smoke", out_dir=out,
                                     progress=False)
    assert not again.trained and not again.model.training
    assert again.history.steps == first.history.steps and again.out_dir == out
    images = first.data.test_images(0, 32)
    with torch.no_grad():
        torch.testing.assert_close(again.model.classify(images), first.model.classify(images))


def test_load_or_train_loads_what_the_command_line_wrote(tmp_path):
    # The command line's default folder is relative to where it runs: the repository root.
    done = subprocess.run(
        [sys.executable, "-m", "disentangle", "train", "distib", "--data", "digits",
         "--profile", "smoke", "--seed", "2", "--set", "beta=0.01", "--set", "depth=1",
         "--activation", "leaky_relu", "--set", "steps=40", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # The default reconstruction weight, 0.005, puts beta 0.01 at 2 on the paper's scale.
    assert '"paper_beta": 2.0' in done.stdout
    settings = dict(beta=0.01, depth=1, activation="leaky_relu", steps=40)
    out = runs.default_dir(
        SupervisedSettings.for_profile("smoke", data="digits", seed=2, **settings), "smoke",
        root=tmp_path,
    )
    assert out.parent == tmp_path / "runs" and out.name.startswith("distib_digits_smoke_seed2_")
    loaded = supervised.load_or_train("distib", "digits", profile="smoke", seed=2, out_dir=out,
                                      progress=False, **settings)
    assert not loaded.trained and loaded.settings.depth == 1
    assert torch.nn.LeakyReLU in {type(layer) for layer in loaded.model.modules()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert "depth=1" in metrics["command"]
    coded = supervised.encode_test(loaded.model, loaded.data)
    accuracy = (coded["logits"].argmax(1) == loaded.data.y_test.cpu().numpy()).mean()
    assert accuracy == pytest.approx(metrics["metrics"]["accuracy_a"])
    # A ReLU model has the same shapes: only the recorded settings keep it from loading this one.
    with pytest.raises(ValueError, match=r"activation \('leaky_relu' here, 'relu' asked\)"):
        supervised.load_or_train("distib", "digits", profile="smoke", seed=2, out_dir=out,
                                 progress=False, **{**settings, "activation": "relu"})


def test_load_or_train_refuses_another_runs_folder(distib_digits):
    out, _ = distib_digits
    with pytest.raises(ValueError, match=r"model \('distib' here, 'vib' asked\)"):
        supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False)


def test_settings_must_describe_the_data_they_train_on():
    labelled = row_column_data()
    with pytest.raises(ValueError, match="settings are for dsprites-style"):
        supervised.build_model(SupervisedSettings(), labelled)


class RowColumnModel(torch.nn.Module):
    """A stand-in for DisTIB on 1 x 4 x 8 images holding one bright pixel: the label is its row,
    the style its column. A holds the row and Z the column (or, with ``z_holds_label``, Z holds
    both and the decoder draws Z's row). The classifier reads the row exactly."""

    swap = supervised.DisTIB.swap
    image_shape = (1, 4, 8)

    def __init__(self, z_holds_label: bool = False):
        super().__init__()
        self.z_holds_label = z_holds_label

    def encode(self, x):
        pixel = x.flatten(1).argmax(1)
        row, column = (pixel // 8).float(), (pixel % 8).float()
        return row[:, None], torch.stack([column, row], 1)

    def decode(self, a, z):
        row = z[:, 1] if self.z_holds_label else a[:, 0]
        images = torch.zeros(len(a), *self.image_shape)
        images[torch.arange(len(a)), 0, row.long(), z[:, 0].long()] = 1.0
        return images

    def classify(self, x):
        return torch.nn.functional.one_hot(self.encode(x)[0][:, 0].long(), 4).float()


class GamedModel(RowColumnModel):
    """A stand-in whose decoder draws Z's row and hides A's row in a faint mark that only its own
    classifier reads: the way a decoder trained against the model's classifier games it."""

    def __init__(self):
        super().__init__(z_holds_label=True)

    def decode(self, a, z):
        images = super().decode(a, z)
        mark = (z[:, 0].long() + 4) % 8
        images[torch.arange(len(a)), 0, a[:, 0].long(), mark] = 0.5
        return images

    def classify(self, x):
        flat = x.flatten(1)
        faint = (flat - 0.5).abs() < 0.1
        pixel = torch.where(faint.any(1), faint.float().argmax(1), flat.argmax(1))
        return torch.nn.functional.one_hot(pixel // 8, 4).float()


def row_column_data(n: int = 80, seed: int = 0) -> data.LabelledData:
    rng = np.random.default_rng(seed)
    rows, columns = rng.integers(0, 4, n), rng.integers(0, 8, n)
    images = torch.zeros(n, 1, 4, 8)
    images[torch.arange(n), 0, torch.from_numpy(rows), torch.from_numpy(columns)] = 1.0
    labels = torch.from_numpy(rows)
    return data.LabelledData("rows", "row", "smoke", (1, 4, 8), 4, images, labels, images, labels)


def test_swap_scores_tell_a_working_split_from_a_label_drawn_from_z():
    data = row_column_data()
    split = supervised.swap_scores(RowColumnModel(), data, n_pairs=40)
    assert split["label_follows_a"] == split["follows_a"] == split["reconstructed"] == 1.0
    assert split["follows_z"] == 0.0
    assert split["centre_x_follows_z"] == pytest.approx(1.0)
    assert abs(split["centre_x_follows_a"]) < 0.2
    leaky = supervised.swap_scores(RowColumnModel(z_holds_label=True), data, n_pairs=40)
    assert leaky["follows_a"] == 0.0 and leaky["follows_z"] == 1.0
    assert leaky["reconstructed"] == 1.0
    with pytest.raises(ValueError, match="smaller n_pairs"):
        supervised.swap_scores(RowColumnModel(), data, n_pairs=41)


def test_an_independent_judge_sees_through_swaps_that_game_the_models_classifier():
    data = row_column_data()
    fooled = supervised.swap_scores(GamedModel(), data, n_pairs=40)
    assert fooled["follows_a"] == 1.0 and fooled["follows_z"] == 0.0
    judged = supervised.swap_scores(GamedModel(), data, n_pairs=40, judge=RowColumnModel().classify)
    assert judged["follows_a"] == 0.0 and judged["follows_z"] == 1.0
    assert judged["reconstructed"] == 1.0


def test_the_run_settings_choose_the_activation():
    labelled = torch.zeros(8, 1, 28, 28), torch.arange(8) % 2
    digits = data.LabelledData("mnist", "label", "smoke", (1, 28, 28), 2, *labelled, *labelled)
    model = supervised.build_model(
        SupervisedSettings(data="mnist", activation="leaky_relu"), digits
    )
    kinds = {type(layer) for layer in model.modules()}
    assert torch.nn.LeakyReLU in kinds and torch.nn.ReLU not in kinds


def test_a_collapsed_model_is_flagged_and_cannot_win_fgsm_accuracy(tmp_path):
    # VIB at learning rate 30 collapses to (about) one class: every point it gets right survives
    # the attack, so the survival rate says 1.0; the accuracy over all points stays at chance.
    result = supervised.run("vib", "digits", profile="smoke", seed=0, out_dir=tmp_path,
                            progress=False, lr=30.0)
    metrics = result["metrics"]
    assert result["flags"] == ["near_chance"]
    assert metrics["fgsm_survival"]["0.1"] == 1.0
    assert metrics["fgsm_accuracy"]["0.1"] < metrics["chance"] + 0.1


def test_a_loss_that_rose_while_finite_marks_the_run_diverged():
    from disentangle import family

    assert family.loss_rose(train.History([1, 2, 3], {"total": [2.0, 1.0, 2.5]}))
    assert not family.loss_rose(train.History([1, 2, 3], {"total": [2.0, 3.0, 1.5]}))
    assert not family.loss_rose(train.History([1], {"total": [2.0]}))
    marked = supervised_evaluation.flags({"accuracy_a": 0.9, "chance": 0.1},
                                         train.History([1, 2], {"total": [1.0, 4.0]}))
    assert marked == ["diverged"]


def test_train_size_keeps_the_first_images_of_the_seeds_order_nested_and_shared():
    """The scale study's training sets: the first n images of the seed's order, so a seed's
    smaller set lies inside its larger one and every model of that seed sees the same images."""
    from disentangle.supervised.training import load

    device = torch.device("cpu")

    def images(size, seed=0, model="distib"):
        run = SupervisedSettings.for_profile("smoke", model=model, data="mnist-5k", seed=seed,
                                             train_size=size)
        return load(run, "smoke", device)

    full, small, vib = images(None), images(200), images(200, model="vib")
    assert len(small.y_train) == 200 and len(full.y_train) > 200
    assert torch.equal(small.x_train, full.x_train[:200])
    assert torch.equal(small.x_train, vib.x_train)
    assert torch.equal(small.x_test, full.x_test)  # the test set is whole
    assert not torch.equal(images(200, seed=1).x_train, small.x_train)
    with pytest.raises(ValueError, match="set train_size <="):
        images(len(full.y_train) + 1)
    with pytest.raises(ValueError, match="below one batch"):
        SupervisedSettings.for_profile("smoke", data="mnist-5k", train_size=10)


def test_residual_variance_is_the_squared_error_the_loss_sees():
    """s^2 on sampled codes is the loss's reconstruction term per pixel (over 1/2), drawn with the
    same codes; on the means it differs; beta / (w s^2) follows."""
    torch.manual_seed(0)
    model = supervised.DisTIB((1, 8, 8), 10, dim_a=2, dim_z=2, encoder="mlp", hidden=16,
                              likelihood="gaussian")
    images = torch.rand(32, 1, 8, 8)
    s2 = supervised.residual_variance(model, images, seed=3)
    torch.manual_seed(3)
    with torch.no_grad():
        out = model(images)
    term = supervised.distib_loss(out, images, torch.zeros(32, dtype=torch.long), 0.1,
                                  "gaussian")["reconstruction"].item()
    assert s2 == pytest.approx(term / (0.5 * 64), rel=1e-5)
    assert supervised.residual_variance(model, images, sampled=False) != pytest.approx(s2)
    run = SupervisedSettings.for_profile("smoke", "paper", data="digits", beta=0.1,
                                         reconstruction_weight=4.0)
    assert supervised.exact_beta(run, 0.05) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Gaussian decoder"):
        supervised.residual_variance(supervised.DisTIB((1, 8, 8), 10, encoder="mlp"), images)
