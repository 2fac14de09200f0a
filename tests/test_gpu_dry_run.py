"""The gpu profile's path, dry-run on the CPU: its networks, data pipeline, bf16 autocast and
torch.compile (graphs captured by Dynamo and run by the eager backend, which needs no compiler),
capped to 2 steps of 8 images and smoke-sized data by ``DISENTANGLE_DRY_RUN=1``, so that the path
a reader with a GPU meets first cannot rot unseen on machines without one. The chapters skip
their claims in a dry run (``config.checks_claims``, ``config.learns``): a 2-step model has
learned nothing to check."""

from __future__ import annotations

import json
import os

import papermill
import pytest

from disentangle import config, runs
from disentangle.cli import main
from disentangle.gan import GanSettings
from disentangle.supervised import SupervisedSettings
from tests.book import NOTEBOOKS

pytestmark = pytest.mark.slow

#: The chapters that train or evaluate through the library, where the gpu profile takes another
#: path than the smoke profile; the others differ only in sizes, which a dry run takes at smoke
#: size. Chapter 17's gpu path is the benchmark alone, which the bench command's test runs.
CHAPTERS = ["03_information_bottleneck_and_vib", "05_distib", "08_distib_under_the_microscope",
            "13_infogan", "10_explorer", "18_studies_at_scale"]


@pytest.fixture
def dry(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DRY_RUN_ENV, "1")
    monkeypatch.setenv(config.PROFILE_ENV, "gpu")
    monkeypatch.setenv(config.DEVICE_ENV, "cpu")
    return {**os.environ}


def test_a_dry_run_keeps_the_gpu_settings_and_caps_the_rest(dry):
    supervised = SupervisedSettings.for_profile("gpu")
    assert (supervised.width, supervised.hidden, supervised.decoder) == (32, 512, "conv")
    assert (supervised.steps, supervised.batch_size) == (config.DRY_RUN_STEPS,
                                                         config.DRY_RUN_BATCH)
    assert GanSettings.for_profile("gpu").resolution == 64
    assert config.by_profile("gpu", smoke=1, cpu=2, gpu=3) == 1
    assert runs.default_dir(supervised, "gpu", "/x").parent.as_posix() == "/x/runs/dry-run"


# One train command per family a chapter does not already train in the gpu path (the chapters
# train the supervised models and the GANs); run in this process, as `python -m disentangle`
# would, to spare a second import of the library.
@pytest.mark.parametrize("model", ["factorvae"])
def test_the_train_command_runs_the_gpu_path(dry, tmp_path, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    assert main(["train", model, "--quiet"]) == 0
    [folder] = (tmp_path / "runs" / "dry-run").iterdir()
    record = json.loads((folder / "run.json").read_text())
    assert record["profile"] == "gpu" and record["dry_run"] is True
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["settings"]["steps"] == config.DRY_RUN_STEPS
    assert metrics["settings"]["resolution"] == 64


def test_the_bench_command_runs_the_gpu_path(dry, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--out", str(out), "--warmup", "1", "--steps", "1",
                 "--repeats", "1"]) == 0
    record = json.loads(out.read_text())
    assert record["profile_of_the_book_way"] == "gpu" and record["dry_run"] is True


@pytest.mark.notebook
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_the_gpu_path(dry, tmp_path, name):
    path = NOTEBOOKS / f"{name}.ipynb"
    try:
        papermill.execute_notebook(str(path), str(tmp_path / path.name),
                                   parameters={"PROFILE": "gpu"}, cwd=str(path.parent),
                                   kernel_name="python3", progress_bar=False)
    except papermill.PapermillExecutionError as err:
        pytest.fail(f"{path.name} failed in the gpu dry run, cell {err.cell_index}:\n"
                    f"{err.source}\n{err.ename}: {err.evalue}", pytrace=False)
