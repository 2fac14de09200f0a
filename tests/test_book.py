"""The book builds, offline, with warnings as errors, and a chapter that raises fails the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from tests.book import ROOT

# The console script installed next to this interpreter, so the build uses this environment.
JUPYTER_BOOK = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"


def _build(source: Path, output: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISENTANGLE_PROFILE": "smoke"}
    return subprocess.run(
        [JUPYTER_BOOK, "build", str(source), "--path-output", str(output), *flags],
        capture_output=True, text=True, env=env, timeout=1200,
    )


def test_configuration_fails_loudly_and_never_serves_stale_outputs():
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    # A cache keyed on notebook sources would not see a change in src/.
    assert execute["execute_notebooks"] == "force"
    assert execute["allow_errors"] is False and execute["raise_on_error"] is True
    assert execute["timeout"] >= 1800, "the per-cell timeout must fit a gpu-profile training cell"


@pytest.mark.book
def test_book_builds_without_warnings(tmp_path):
    result = _build(ROOT, tmp_path, "-W", "--keep-going")
    log = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"book build failed:\n{log}"
    html = tmp_path / "_build" / "html"
    assert (html / "index.html").exists()
    intro = (html / "book" / "intro.html").read_text()
    assert "Disentangled representation learning through information theory" in intro
    chapter = (html / "notebooks" / "00_how_to_use_this_book.html").read_text()
    assert "profile &#39;smoke&#39;" in chapter or "profile 'smoke'" in chapter
    assert '<img alt="_images/' in chapter or "<img " in chapter, "the chapter's plot is missing"
    images = list((html / "_images").glob("*.png"))
    assert images, "no figure was written into the built book"


@pytest.mark.book
def test_a_chapter_that_raises_fails_the_build(tmp_path):
    source = tmp_path / "book"
    (source / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", source / "_config.yml")
    shutil.copy(ROOT / "book" / "references.bib", source / "book" / "references.bib")
    (source / "intro.md").write_text("# Intro\n")
    (source / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, source / "broken.ipynb")
    result = _build(source, tmp_path / "out")  # no -W: the README's command must fail by itself
    assert result.returncode != 0, "a notebook that raised did not fail the build"
    assert "ZeroDivisionError" in result.stdout + result.stderr
