"""Every chapter runs in the smoke profile, and the notebooks are committed the way the book
expects: listed in the table of contents, without bulky outputs, with a ``parameters`` cell."""

from __future__ import annotations

import nbformat
import papermill
import pytest

from tests.book import NOTEBOOKS, ROOT, TOC, resolve_entry, toc_entries, toc_notebooks

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
            # nbval skips a cell whose reference was never run, so the count must stay.
            assert cell.outputs and cell.execution_count, (
                f"{where} is marked {CHECK_MARK} but has no stored, executed output"
            )
        else:
            strip = f"nbstripout --keep-count {path.relative_to(ROOT)}"
            assert not cell.outputs, f"{where} has stored outputs: run `{strip}`"


@pytest.mark.notebook
@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(path, tmp_path):
    try:
        papermill.execute_notebook(
            str(path),
            str(tmp_path / path.name),
            parameters={"PROFILE": "smoke"},
            cwd=str(path.parent),
            kernel_name="python3",
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as err:
        source = "\n".join("    " + line for line in err.source.splitlines())
        pytest.fail(
            f"{path.name} failed in cell {err.cell_index} (execution count {err.exec_count}):\n"
            f"{source}\n{err.ename}: {err.evalue}",
            pytrace=False,
        )
