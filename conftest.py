"""Settings for the whole test session, loaded before anything is collected.

The notebook runs (papermill, nbval and the book build) start Jupyter kernels that inherit this
environment, so the profile is fixed here: the tests always run the smoke profile, whatever the
shell exports. (MPLBACKEND is left alone: set to Agg, it would stop the kernels drawing figures.)
"""

import os
from pathlib import Path

os.environ["DISENTANGLE_PROFILE"] = "smoke"


def pytest_configure(config):
    """nbval's lax output checks of the chapters (cells marked NBVAL_CHECK_OUTPUT, in this
    environment's kernel, with the book's sanitizers), set here rather than in ``addopts`` so that
    a reader without nbval can still run any test file; ``--nbval`` asks for the strict checks."""
    if config.pluginmanager.hasplugin("nbval") and not config.option.nbval:
        config.option.nbval_lax = True
        config.option.nbval_current_env = True
        sanitizers = Path(__file__).parent / "tests" / "nbval_sanitize.cfg"
        config.option.nbval_sanitize_with = config.option.nbval_sanitize_with or str(sanitizers)


def pytest_ignore_collect(collection_path, config):
    """nbval collects only notebooks that have reference outputs to compare: one with no cell
    marked NBVAL_CHECK_OUTPUT would only be executed again, which tests/test_notebooks.py does."""
    if collection_path.suffix == ".ipynb":
        return "NBVAL_CHECK_OUTPUT" not in collection_path.read_text(encoding="utf-8")
    return None
