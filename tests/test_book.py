"""The book builds, offline, with warnings as errors, and a chapter that raises fails the build."""

from __future__ import annotations

import shutil

import nbformat
import pytest
import yaml

from tests.book import ROOT, build_book


def test_configuration_fails_loudly_and_never_serves_stale_outputs():
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    # A cache keyed on notebook sources would not see a change in src/.
    assert execute["execute_notebooks"] == "force"
    assert execute["allow_errors"] is False and execute["raise_on_error"] is True
    assert execute["timeout"] >= 1800, "the per-cell timeout must fit a gpu-profile training cell"


@pytest.mark.book
def test_book_builds_without_warnings(built_book):
    # The build is shared with the browser tests (tests/conftest.py): it runs once per session.
    assert built_book.result.returncode == 0, f"book build failed:\n{built_book.log}"
    html = built_book.html
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
    # _config.yml loads the book's local Sphinx extension from book/_ext.
    shutil.copytree(ROOT / "book" / "_ext", source / "book" / "_ext")
    (source / "intro.md").write_text("# Intro\n")
    (source / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, source / "broken.ipynb")
    result = build_book(source, tmp_path / "out")  # no -W: the README's command must fail by itself
    assert result.returncode != 0, "a notebook that raised did not fail the build"
    assert "ZeroDivisionError" in result.stdout + result.stderr
