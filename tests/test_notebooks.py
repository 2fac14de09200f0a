"""The notebooks are committed the way the book expects: listed in the table of contents, without
bulky outputs, with a ``parameters`` cell, reference outputs where nbval checks them, objectives,
a summary and exercises, within the prose budget. (nbval executes every chapter in the smoke
profile and checks those references: ``tests/conftest.py``.)"""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.book import (
    NOTEBOOKS,
    ROOT,
    TOC,
    resolve_entry,
    toc_entries,
    toc_notebooks,
)

CHECK_MARK = "NBVAL_CHECK_OUTPUT"


def test_table_of_contents_names_only_existing_files():
    missing = [entry for entry in toc_entries() if resolve_entry(entry) is None]
    assert not missing, f"{TOC.name} names files that do not exist: {missing}"


def test_every_notebook_is_in_the_table_of_contents():
    listed = set(toc_notebooks())
    omitted = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p not in listed)
    assert not omitted, f"notebooks missing from {TOC.name}: {omitted}"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert "PROFILE" in parameters[0].source, f"{path.name}: its parameters cell must set PROFILE"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        checked = CHECK_MARK in cell.source
        where = f"{path.name}, cell {index}"
        if checked:
            assert cell.metadata.get("keep_output"), (
                f"{where} is marked {CHECK_MARK}: set its metadata keep_output: true so that "
                "nbstripout keeps the reference output"
            )
            # A reference must come from an execution (nbval, for a reader who runs it, also
            # skips a cell without an execution count).
            assert cell.outputs and cell.execution_count, (
                f"{where} is marked {CHECK_MARK} but has no stored, executed output"
            )
        else:
            strip = f"nbstripout --keep-count {path.relative_to(ROOT)}"
            assert not cell.outputs, f"{where} has stored outputs: run `{strip}`"


#: Chapters that do not yet open with what the reader will learn and close with a summary and
#: exercises; the test below fails when one of them gains them, so that this list only shrinks.
WITHOUT_EXERCISES: set[str] = set()
EXERCISE = re.compile(r":::\{exercise\}\n:label: (\S+)\n")
SOLUTION = re.compile(r":::\{solution\} (\S+)\n:class: dropdown\n")


def test_chapters_open_with_objectives_and_close_with_a_summary_and_exercises():
    labels: list[str] = []
    for path in toc_notebooks():
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        exercises, solutions = EXERCISE.findall(text), SOLUTION.findall(text)
        complete = ("In this chapter you will learn" in nb.cells[0].source
                    and "\n## Summary" in "\n" + text and 3 <= len(exercises) <= 5)
        if path.stem in WITHOUT_EXERCISES:
            assert not exercises, f"{path.name} has exercises now: take it off WITHOUT_EXERCISES"
            continue
        assert complete, (f"{path.name}: needs 'In this chapter you will learn' in its first "
                          "cell, a '## Summary' and 3 to 5 exercises")
        assert solutions == exercises, f"{path.name}: each exercise needs a hidden solution"
        # The exercises close the chapter: a heading, then the exercises, one cell each.
        start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))
        closing = nb.cells[start:]
        assert all(c.cell_type == "markdown" and ":::{exercise}" in c.source
                   for c in closing), f"{path.name}: the exercises close the chapter"
        labels += exercises
    assert len(labels) == len(set(labels)), "exercise labels must be unique across the book"


def test_chapters_keep_to_the_prose_budget():
    """At most 2,500 words of prose a chapter and 400 a cell (whitespace-split words of the
    markdown cells): longer, a chapter is two chapters, and a cell a wall of text."""
    for path in toc_notebooks():
        words = [len(c.source.split()) for c in nbformat.read(path, as_version=4).cells
                 if c.cell_type == "markdown"]
        assert sum(words) <= 2500, f"{path.name}: {sum(words)} words of prose, over 2,500"
        assert max(words) <= 400, f"{path.name}: a markdown cell of {max(words)} words, over 400"
