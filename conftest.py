"""Settings for the whole test session, loaded before anything is collected, and the hooks that
keep nbval's executions of the chapters (they live here because the chapters are collected from
``notebooks/``, outside ``tests/``).

The notebook runs (papermill and the book build) start Jupyter kernels that inherit this
environment, so the profile is fixed here: the tests always run the smoke profile, whatever the
shell exports. (MPLBACKEND is left alone: set to Agg, it would stop the kernels drawing figures.)
"""

import os

os.environ["DISENTANGLE_PROFILE"] = "smoke"

# Under pytest-xdist (`pytest -n 2`) the workers share the cores: each worker, and the kernels it
# starts, gets its share of threads instead of all of them (before anything imports torch).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import nbval_capture  # noqa: E402
from tests.book import executed_book_tree, locked, shared_folder  # noqa: E402

_captures: dict[Path, nbval_capture.Capture] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """nbval's cell tests are ``notebook`` and ``slow`` tests (``--dist loadfile`` keeps each
    chapter's cells on one xdist worker); the chapters are noted so that the book build waits for
    nbval's executions instead of running its own."""
    chapters = set()
    for item in items:
        if nbval_capture.is_cell(item):
            item.add_marker(pytest.mark.notebook)
            item.add_marker(pytest.mark.slow)
            chapters.add(item.path.stem)
    config.stash[nbval_capture.CHAPTERS] = chapters


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each nbval cell's outputs (and its failure) for the chapter's executed copy."""
    outcome = yield
    if not nbval_capture.is_cell(item) or call.when == "teardown":
        return
    report = outcome.get_result()
    if item.path not in _captures:
        tree = shared_folder(item.config._tmp_path_factory, "executed")
        with locked(tree / "tree.lock"):
            executed_book_tree(tree)
        _captures[item.path] = nbval_capture.Capture(tree, item.parent.nb, item.path.stem)
    if call.when == "call" or report.failed:
        _captures[item.path].record(item, report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a chapter's last cell, before nbval stops its kernel: write the executed copy."""
    last = nextitem is None or nextitem.parent is not item.parent
    if nbval_capture.is_cell(item) and last and item.path in _captures:
        _captures.pop(item.path).finish(item.parent.kernel)
    yield
