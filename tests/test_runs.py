"""The settings records and the run store: every run is a record, never stale or mislabelled."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from disentangle import gan, registry, runs, supervised, train
from disentangle.cli import main
from disentangle.gan import GanSettings
from disentangle.settings import SettingsError
from disentangle.supervised import SupervisedSettings
from disentangle.supervised import objectives as supervised_objectives

TINY = {"steps": 20}


def _train(argv, capsys):
    code = main(["train", *argv, "--profile", "smoke", "--quiet"])
    return code, capsys.readouterr()


# --- settings ------------------------------------------------------------------------------------


def test_settings_are_checked_by_name_type_and_value():
    with pytest.raises(SettingsError, match="Unknown setting 'stepz' for distib; valid ones"):
        SupervisedSettings.for_profile("smoke", stepz=3)
    with pytest.raises(SettingsError, match="belongs to infogan, tcgan, not to distib"):
        registry.build_settings("distib", "smoke", estimator="drt")
    with pytest.raises(SettingsError, match="steps='many' is not of the right type: give int"):
        SupervisedSettings(steps="many")
    with pytest.raises(SettingsError, match="activation='tanh' is not valid; valid values"):
        SupervisedSettings(activation="tanh")
    with pytest.raises(SettingsError, match="no meaning for vib: VIB has one code and no decoder"):
        SupervisedSettings.for_profile("smoke", model="vib", dim_z=4)
    with pytest.raises(SettingsError, match="no meaning for disenib: DisenIB's encoders"):
        SupervisedSettings.for_profile("smoke", model="disenib", beta=0.5)
    with pytest.raises(SettingsError, match="Unknown preset 'papr'; valid presets are paper"):
        SupervisedSettings.for_profile("smoke", "papr")
    with pytest.raises(SettingsError, match="valid presets are none for this family"):
        GanSettings.for_profile("smoke", "paper")
    with pytest.raises(SettingsError, match="valid values are infogan, tcgan"):
        GanSettings(model="vae")
    with pytest.raises(SettingsError, match="no TC penalty"):
        GanSettings(model="infogan", tc_weight=0.1)
    # TC-GAN's default penalty keeps the reference settings' ratio to the information weight.
    reference = gan.REFERENCE_INFO_WEIGHT
    assert GanSettings(estimator="drt", info_weight=reference).tc_weight == pytest.approx(
        gan.TC_WEIGHTS["drt"])
    assert GanSettings(estimator="mws", info_weight=1.0).tc_weight == pytest.approx(
        gan.TC_WEIGHTS["mws"] / reference)
    assert GanSettings(model="infogan").tc_weight == 0.0
    assert SupervisedSettings(beta=1).beta == 1.0 and isinstance(SupervisedSettings(beta=1).beta,
                                                                 float)


def test_the_paper_preset_gives_each_model_what_it_has_and_yields_to_explicit_settings():
    paper = supervised.PAPER
    for model in SupervisedSettings.MODELS:
        run = SupervisedSettings.for_profile("cpu", "paper", model=model, data="mnist-5k")
        assert (run.depth, run.activation, run.hidden) == (3, "leaky_relu", paper["cpu"]["hidden"])
        assert run.separate == (model != "disenib") and run.beta == (
            SupervisedSettings.beta if model == "disenib" else paper["all"]["beta"])
        if model not in ("vib", "disenib"):  # DisenIB weighs its reconstruction its own way
            assert (run.likelihood, run.reconstruction_weight) == ("gaussian", 1.0)
    gpu = SupervisedSettings.for_profile("gpu", "paper", model="distib", data="mnist-5k")
    assert gpu.hidden == 4096
    mine = SupervisedSettings.for_profile("cpu", "paper", model="distib", beta=0.3, hidden=64)
    assert (mine.beta, mine.hidden, mine.depth) == (0.3, 64, 3)
    # The paper's beta is the KL weight over the reconstruction's weight.
    assert mine.paper_beta == 0.3
    assert SupervisedSettings(beta=1e-3, reconstruction_weight=0.005).paper_beta == (
        pytest.approx(0.2))
    assert SupervisedSettings(model="vib").paper_beta is None


def test_assignments_parse_to_the_fields_types():
    parsed = registry.parse_assignments(
        "tcgan", ["tc_weight=0.02", "aligned=posX,posY", "labelled=64", "categorical=10",
                  "estimator=drt"])
    assert parsed == {"tc_weight": 0.02, "aligned": ("posX", "posY"), "labelled": 64,
                      "categorical": (10,), "estimator": "drt"}
    parsed = registry.parse_assignments("distib", ["separate=false", "label=scale"])
    assert parsed == {"separate": False, "label": "scale"}
    assert registry.parse_assignments("tcgan", ["tc_weight=none"]) == {"tc_weight": None}
    with pytest.raises(SettingsError, match="give float"):
        registry.parse_assignments("distib", ["beta=large"])
    with pytest.raises(SettingsError, match="NAME=VALUE"):
        registry.parse_assignments("distib", ["beta"])


def test_settings_round_trip_through_json():
    chosen = GanSettings.for_profile("cpu", aligned=("posX", "posY"), labelled=16)
    again = GanSettings(**json.loads(json.dumps(chosen.as_dict())))
    assert again == chosen


def test_a_convolution_is_refused_on_images_too_small_for_it():
    assert SupervisedSettings.for_profile("cpu", data="digits").encoder == "mlp"
    with pytest.raises(SettingsError, match="encoder='conv' needs images of 28, 32, 64 pixels; "
                                            "digits has 8 x 8"):
        SupervisedSettings.for_profile("cpu", data="digits", encoder="conv")


def test_two_different_settings_never_share_a_folder_by_default(tmp_path):
    def folder(**chosen):
        return runs.default_dir(SupervisedSettings.for_profile("cpu", **chosen), "cpu", tmp_path)

    plain = folder()
    assert plain.name == "distib_dsprites-style_cpu_seed0"
    others = [folder(beta=0.01), folder(beta=0.02), folder(activation="leaky_relu"),
              folder(beta=0.01, activation="leaky_relu"), folder(model="twostep"),
              folder(seed=1), folder(data="styled-digits"), folder(model="vib")]
    assert len({plain, *others}) == 1 + len(others)
    assert folder(beta=0.01) == folder(beta=0.01)  # and the same run always the same one
    assert folder(label="shape") == plain  # the natural label is the profile's own


def test_the_default_folder_is_under_the_repository():
    repository = runs.PACKAGE.parents[1]
    chosen = SupervisedSettings.for_profile("cpu", seed=3)
    expected = repository / "runs" / "distib_dsprites-style_cpu_seed3"
    assert runs.default_dir(chosen, "cpu") == expected


# --- the command line ----------------------------------------------------------------------------


def test_set_round_trip_the_folder_run_json_and_metrics_agree(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, said = _train(["distib", "--data", "digits", "--set", "beta=0.004", "--set", "steps=20",
                         "--set", "dim_a=4"], capsys)
    assert code == 0, said.err
    expected = SupervisedSettings.for_profile("smoke", data="digits", beta=0.004, steps=20,
                                              dim_a=4)
    folder = runs.default_dir(expected, "smoke", root=".")
    assert folder.name == ("distib_digits_smoke_seed0_"
                           + runs.settings_hash({"beta": 0.004, "steps": 20, "dim_a": 4}))
    record = json.loads((folder / "run.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert record["settings"] == metrics["settings"] == expected.as_dict()
    assert record["differing_from_profile"] == {"beta": 0.004, "steps": 20, "dim_a": 4}
    assert metrics["fingerprint"] == record["fingerprint"] == supervised.FAMILY.fingerprint()
    assert record["git_revision"] is None or len(record["git_revision"]) >= 40
    assert "--set beta=0.004" in metrics["command"]


def test_a_folder_given_by_hand_refuses_a_run_of_other_settings(tmp_path, capsys):
    out = tmp_path / "mine"
    code, said = _train(["vib", "--data", "digits", "--out", str(out), "--set", "steps=20"],
                        capsys)
    assert code == 0, said.err
    before = (out / train.CHECKPOINT).read_bytes()
    # The old command line trained 0 steps here and wrote metrics that said beta 0.01.
    code, said = _train(["vib", "--data", "digits", "--out", str(out), "--set", "steps=20",
                         "--beta", "0.01"], capsys)
    assert code == 2
    assert said.err.count("\n") == 1 and "beta (0.001 here, 0.01 asked)" in said.err
    assert (out / train.CHECKPOINT).read_bytes() == before
    assert json.loads((out / "metrics.json").read_text())["settings"]["beta"] == 0.001


@pytest.mark.parametrize("argv, message", [
    (["distib", "--set", "stepz=3"], "Unknown setting 'stepz' for distib"),
    (["distib", "--set", "steps=3.5"], "steps='3.5' is not of the right type: give int"),
    (["distib", "--set", "estimator=drt"], "'estimator' belongs to infogan, tcgan, not to distib"),
    (["distib", "--tc-weight", "1"], "'tc_weight' belongs to infogan, tcgan, not to distib"),
    (["tcgan", "--beta", "1"], "'beta' belongs to distib, twostep, vib, disenib, not to tcgan"),
    (["tcgan", "--set", "activation=elu"], "'activation' belongs to distib, twostep, vib, disenib"),
    (["vib", "--set", "dim_z=4"], "no meaning for vib: VIB has one code and no decoder"),
    (["distib", "--preset", "papers"], "Unknown preset 'papers'; valid presets are paper"),
    (["distib", "--data", "digits", "--set", "encoder=conv"], "digits has 8 x 8"),
    (["distib", "--data", "cifar10"], "data='cifar10' is not valid"),
    (["distib", "--set", "seed=2"], "use MODEL, --data and --seed"),
    (["distib", "--set", "beta=nan"], "beta=nan must be a finite number"),
    (["tcgan", "--set", "tc_weight=inf"], "tc_weight=inf must be a finite number"),
    (["distib", "--set", "steps=0"], "steps=0 must be an integer >= 1"),
    (["distib", "--set", "hidden=0"], "hidden=0 must be an integer >= 1"),
    (["betavae", "--set", "latent_dim=-1"], "latent_dim=-1 must be an integer >= 1"),
])
def test_bad_settings_are_refused_in_one_line(argv, message, capsys):
    code, said = _train(argv, capsys)
    assert code == 2 and message in said.err
    assert said.err.startswith("error: ") and said.err.count("\n") == 1


def test_a_non_finite_loss_reaches_the_command_line_as_one_line(tmp_path, monkeypatch, capsys):
    def blown(out, x, y, *args):
        terms = real(out, x, y, *args)
        return {**terms, "kl_z": terms["kl_z"] * float("nan"),
                "total": terms["total"] * float("nan")}

    real = supervised.distib_loss
    monkeypatch.setattr(supervised_objectives, "distib_loss", blown)
    code, said = _train(["distib", "--data", "digits", "--out", str(tmp_path / "nan")], capsys)
    assert code == 2 and said.err.count("\n") == 1
    assert "Non-finite loss at step 0: term(s) kl_z, total" in said.err


def test_help_works_without_the_resource_module():
    # Windows has no `resource`; a None entry in sys.modules makes importing it fail the same way.
    script = ("import sys; sys.modules['resource'] = None; from disentangle.cli import main; "
              "sys.argv = ['disentangle', '--help']; main()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "materialize" in done.stdout


# --- the store -----------------------------------------------------------------------------------


def test_a_change_to_a_model_module_marks_a_finished_run_stale(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    first = supervised.load_or_train("distib", "digits", profile="smoke", out_dir=out,
                                     progress=False, **TINY)
    assert first.trained
    trained_by = runs.read_record(out)["fingerprint"]
    # The same library with one edit to the family's networks, as after a change in src/.
    edited = tmp_path / "library"
    shutil.copytree(runs.PACKAGE, edited, ignore=shutil.ignore_patterns("__pycache__"))
    with open(edited / "supervised" / "networks.py", "a") as source:
        source.write("\n# an edit that keeps every tensor shape\n")
    monkeypatch.setattr(runs, "PACKAGE", edited)
    assert supervised.FAMILY.fingerprint() != trained_by

    kept = supervised.load_or_train("distib", "digits", profile="smoke", out_dir=out,
                                    progress=False, load_stale=True, **TINY)
    assert not kept.trained and runs.read_record(out)["fingerprint"] == trained_by

    again = supervised.load_or_train("distib", "digits", profile="smoke", out_dir=out,
                                     progress=False, **TINY)
    assert again.trained
    said = capsys.readouterr().err
    assert f"{out} holds a stale run" in said and "training the run asked for" in said
    assert runs.read_record(out)["fingerprint"] == supervised.FAMILY.fingerprint()
    aside = out / f"stale-{trained_by}"
    assert (aside / train.CHECKPOINT).exists() and (aside / "run.json").exists()


def test_a_default_folder_of_former_defaults_is_stale_and_a_named_one_refused(tmp_path, capsys):
    # A run in its default folder, as an older library would have left it: the same folder name,
    # but another value of a profile default (beta) and another fingerprint.
    chosen = supervised.settings_for("vib", "digits", None, "smoke", 0, **TINY)
    out = runs.default_dir(chosen, "smoke", root=tmp_path)
    supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False,
                             **TINY)
    held = runs.read_record(out)
    held["settings"]["beta"] = 0.5
    held["fingerprint"] = "0123456789ab"
    (out / "run.json").write_text(json.dumps(held))
    named = tmp_path / "by-hand"
    shutil.copytree(out, named)

    again = supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out,
                                     progress=False, **TINY)
    assert again.trained and (out / "stale-0123456789ab" / train.CHECKPOINT).exists()
    said = capsys.readouterr().err
    assert "a run of the profile's former defaults (beta (0.5 here" in said
    with pytest.raises(ValueError, match=r"holds a run with other settings: beta \(0.5 here"):
        supervised.load_or_train("vib", "digits", profile="smoke", out_dir=named,
                                 progress=False, **TINY)


def test_load_stale_warns(tmp_path, monkeypatch):
    out = tmp_path / "run"
    supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False,
                             **TINY)
    monkeypatch.setattr(runs, "fingerprint", lambda sources, package=None: "0123456789ab")
    with pytest.warns(UserWarning, match="trained by other code .* loading it anyway"):
        supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False,
                                 load_stale=True, **TINY)


def test_a_run_made_before_the_store_is_stale(tmp_path, capsys):
    out = tmp_path / "old"
    supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False,
                             **TINY)
    (out / "run.json").unlink()
    again = supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out,
                                     progress=False, **TINY)
    assert again.trained and (out / "stale-unrecorded" / train.CHECKPOINT).exists()


def test_a_hand_made_pickle_checkpoint_is_refused(tmp_path):
    out = tmp_path / "run"
    supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False,
                             **TINY)
    payload = torch.load(out / train.CHECKPOINT, weights_only=True)
    payload["history"]["note"] = PickledNote()  # any object that is not plain data
    torch.save(payload, out / train.CHECKPOINT)
    with pytest.raises(ValueError, match="holds Python objects other than tensors"):
        supervised.load_or_train("vib", "digits", profile="smoke", out_dir=out, progress=False,
                                 **TINY)
    with pytest.raises(ValueError, match="could run code"):
        train.load_checkpoint(out, {})


class PickledNote:
    """An object a checkpoint has no business holding."""


def test_gan_runs_go_through_the_store(tmp_path):
    from disentangle import family, gan

    cpu = torch.device("cpu")
    chosen = GanSettings.for_profile("smoke", steps=2, batch_size=8)
    family.train_run(gan.FAMILY, chosen, "smoke", tmp_path, cpu, progress=False)
    other = GanSettings.for_profile("smoke", steps=2, batch_size=8, code_dim=4)
    with pytest.raises(ValueError, match=r"code_dim \(5 here, 4 asked\)"):
        family.train_run(gan.FAMILY, other, "smoke", tmp_path, cpu, progress=False)


def test_a_damaged_result_is_scored_again_and_a_damaged_record_named(tmp_path, capsys):
    out = tmp_path / "run"
    first = supervised.run("vib", "digits", profile="smoke", out_dir=out, progress=False,
                           **TINY)
    text = (out / "metrics.json").read_text()
    (out / "metrics.json").write_text(text[: len(text) // 2])  # a kill mid-write, of old
    again = supervised.run("vib", "digits", profile="smoke", out_dir=out, progress=False,
                           **TINY)
    assert again["metrics"] == first["metrics"]
    assert "scoring the run again" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["metrics"] == first["metrics"]
    for garbage in ("[1, 2]", "not json at all"):
        (out / "run.json").write_text(garbage)
        code = main(["train", "vib", "--data", "digits", "--profile", "smoke", "--out",
                     str(out), "--set", "steps=5", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert f"{out / 'run.json'}" in err and "move the folder" in err


def test_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = runs.write_json(tmp_path / "a.json", {"kept": 1})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        runs.write_json(path, {"kept": 2})
    assert json.loads(path.read_text()) == {"kept": 1}


def test_a_second_process_on_a_run_folder_is_told_who_holds_it(tmp_path, capsys):
    out = tmp_path / "run"
    script = ("import sys, time; from pathlib import Path; from disentangle import runs\n"
              f"with runs.exclusive(Path({str(out)!r}) / 'lock', 'run folder'):\n"
              "    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["train", "vib", "--data", "digits", "--profile", "smoke", "--out", str(out),
                     "--set", "steps=5", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and f"in use by process {holder.pid}" in err
        assert not (out / "run.json").exists()  # nothing was written under the holder
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock went with it, and the folder is taken over.
    assert main(["train", "vib", "--data", "digits", "--profile", "smoke", "--out", str(out),
                 "--set", "steps=5", "--quiet"]) == 0


def test_a_finished_run_in_a_folder_that_cannot_be_written_is_loaded(tmp_path, monkeypatch):
    """Loading writes nothing: a finished run on a read-only disk (or another user's folder) is
    read, not refused. Every write of the run store goes through ``runs.write_json`` or a
    checkpoint; both are made to fail here (a chmod would not stop this test's root user)."""
    asked = dict(profile="smoke", seed=0, progress=False, steps=20, out_dir=tmp_path)
    first = supervised.run("vib", "digits", **asked)

    def refused(*args, **kwargs):
        raise PermissionError(f"read-only: {args[0] if args else ''}")

    monkeypatch.setattr(runs, "write_json", refused)
    monkeypatch.setattr(torch, "save", refused)
    again = supervised.run("vib", "digits", **asked)
    assert again["metrics"] == first["metrics"]
