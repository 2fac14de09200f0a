"""The saved models shipped with the book (``models/``): loaded instead of trained only where the
run store finds them current, never resumed, and each one current with the library's code."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from disentangle import registry, runs, supervised, train

TOOL = runs.PACKAGE.parents[1] / "tools" / "save_models.py"


def test_every_saved_model_is_current_with_the_code():
    """A stale saved model is not wrong (the chapter trains instead) but it makes the book slow:
    remake it when a family's training code changes."""
    saved = sorted(runs.saved_models().glob(f"*/{runs.RECORD}"))
    for path in saved:
        held = json.loads(path.read_text())
        family = registry.family_of(held["model"])
        assert held["fingerprint"] == family.fingerprint(), (
            f"{path.parent} was trained by code {held['fingerprint']}, the library is "
            f"{family.fingerprint()}: train the chapter's run again in the cpu profile and run "
            "`python tools/save_models.py --chapters` (or restamp it after a change proved to "
            "change no number)")
        metrics = path.parent / "metrics.json"  # absent where a chapter only trains the run
        if metrics.exists():
            assert json.loads(metrics.read_text())["fingerprint"] == held["fingerprint"]
        assert train.load_payload(path.parent / train.CHECKPOINT).get("slim") is True


def test_a_saved_model_is_loaded_where_current_and_trained_where_stale(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(runs, "repository_root", lambda: tmp_path)
    asked = dict(profile="smoke", seed=0, progress=False, steps=20)
    first = supervised.run("vib", "digits", **asked)
    [folder] = (tmp_path / "runs").iterdir()
    done = subprocess.run([sys.executable, str(TOOL), str(folder), "--store",
                           str(tmp_path / "models")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    saved = tmp_path / "models" / folder.name
    full = (folder / train.CHECKPOINT).stat().st_size
    assert (saved / train.CHECKPOINT).stat().st_size < 0.6 * full  # no optimizer state
    shutil.rmtree(tmp_path / "runs")
    capsys.readouterr()

    found = supervised.load_or_train("vib", "digits", **asked)
    assert not found.trained
    assert f"loaded the saved model models/{folder.name}" in capsys.readouterr().err
    assert supervised.run("vib", "digits", **asked)["metrics"] == first["metrics"]

    # A saved model of other code is left alone: the run trains, and says why.
    shutil.rmtree(tmp_path / "runs")
    held = json.loads((saved / runs.RECORD).read_text())
    runs.write_json(saved / runs.RECORD, {**held, "fingerprint": "000000000000"})
    found = supervised.load_or_train("vib", "digits", **asked)
    assert found.trained
    assert "the saved model" in capsys.readouterr().err


def test_a_slim_checkpoint_loads_but_never_trains_on(tmp_path):
    net = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.ones(4, 2)

    def step(batch):
        loss = net(batch).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"total": loss.detach()}

    state = {"net": net, "optimizer": optimizer}
    train.fit(step, lambda: x, 3, state=state, out_dir=tmp_path / "full", progress=False)
    train.slim(tmp_path / "full" / train.CHECKPOINT, tmp_path / "slim" / train.CHECKPOINT)
    payload = train.load_payload(tmp_path / "slim" / train.CHECKPOINT)
    assert payload["slim"] and set(payload["state"]) == {"net"}

    loaded = torch.nn.Linear(2, 1)
    history = train.fit(step, lambda: x, 3, state={"net": loaded, "optimizer": optimizer},
                        out_dir=tmp_path / "slim", progress=False)
    assert history.resumed_from == 3
    assert torch.equal(loaded.weight, net.weight)
    with pytest.raises(ValueError, match="saved model of 3 steps without its optimizers' state"):
        train.fit(step, lambda: x, 5, state={"net": loaded, "optimizer": optimizer},
                  out_dir=tmp_path / "slim", progress=False)
