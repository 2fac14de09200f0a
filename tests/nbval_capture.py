"""nbval as the smoke executor of the chapters, its executions kept for the book build.

With the README's test command nbval executes every chapter once, in the smoke profile (the
environment's ``DISENTANGLE_PROFILE``, set in the top-level ``conftest.py``), each code cell a test,
and compares the outputs of the cells marked ``NBVAL_CHECK_OUTPUT`` with their stored reference
(``--nbval-lax``, after the sanitizer file). The hooks in ``tests/conftest.py`` call this module
so that those executions are not thrown away: each chapter's cells, their outputs and its widget
state are written, as papermill would have written them, into the session's shared tree of
executed chapters (``NAME.ipynb`` with ``NAME.done``, or ``NAME.failed`` naming the first cell
that raised), from which the book is built without executing a chapter again.
"""

from __future__ import annotations

import copy
import fcntl
import json
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import pytest

# Printed by the kernel after the last cell: the state of every widget the chapter made, which
# the built page needs to draw them (papermill stores the same in the notebook's metadata).
_WIDGET_STATE = """
import json as _json, sys as _sys
if "ipywidgets" in _sys.modules:
    print("WIDGET-STATE" + _json.dumps(_sys.modules["ipywidgets"].Widget.get_manager_state()))
"""


#: The chapters nbval executes in this session (their stems), set at collection.
CHAPTERS = pytest.StashKey[set]()


def is_cell(item: pytest.Item) -> bool:
    """Whether ``item`` is one of nbval's cell tests."""
    return type(item).__name__ == "IPyNbCell"


class Capture:
    """One chapter's execution by nbval, cell by cell, written out when its last cell is done."""

    def __init__(self, tree: Path, source: nbformat.NotebookNode, stem: str):
        self.tree, self.stem = tree, stem
        self.notebook = copy.deepcopy(source)
        self.code = [c for c in self.notebook.cells if c.cell_type == "code"]
        for cell in self.code:
            cell.outputs, cell.execution_count = [], None
        self.failure: str | None = None
        # Held from the first cell to the last, so that a worker asking for this chapter waits.
        self.lock = (tree / f"{stem}.lock").open("a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        for end in ("done", "failed"):
            (tree / f"{stem}.{end}").unlink(missing_ok=True)

    def record(self, item: pytest.Item, report: pytest.TestReport) -> None:
        cell = self.code[item.cell_num]
        cell.outputs = [nbformat.from_dict(dict(o)) for o in (item.test_outputs or [])]
        cell.execution_count = item.cell_num + 1
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = cell.execution_count
        if report.failed and self.failure is None:
            self.failure = (f"{self.stem}.ipynb failed in code cell {item.cell_num} (nbval):\n"
                            f"{report.longreprtext[-3000:]}")

    def finish(self, kernel: Any) -> None:
        state = _widget_state(kernel) if kernel is not None and kernel.is_alive() else None
        if state is not None:
            self.notebook.metadata["widgets"] = {
                "application/vnd.jupyter.widget-state+json": state}
        nbformat.write(self.notebook, self.tree / "notebooks" / f"{self.stem}.ipynb")
        if self.failure is None:
            (self.tree / f"{self.stem}.done").touch()
        else:
            (self.tree / f"{self.stem}.failed").write_text(self.failure)
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


def _widget_state(kernel: Any, timeout: float = 60) -> dict | None:
    """The widget state the kernel holds, or None if the chapter made no widget."""
    msg_id = kernel.execute_cell_input(_WIDGET_STATE, allow_stdin=False)
    text = []
    while True:
        try:
            msg = kernel.get_message(stream="iopub", timeout=timeout)
        except Empty:
            return None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text.append(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    printed = "".join(text)
    if "WIDGET-STATE" not in printed:
        return None
    return json.loads(printed.split("WIDGET-STATE", 1)[1])
