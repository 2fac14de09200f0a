"""Settings for the whole test session, loaded before anything is collected.

The notebook runs (papermill, nbval and the book build) start Jupyter kernels that inherit this
environment, so the profile is fixed here: the tests always run the smoke profile, whatever the
shell exports. (MPLBACKEND is left alone: set to Agg, it would stop the kernels drawing figures.)
"""

import os

os.environ["DISENTANGLE_PROFILE"] = "smoke"


def pytest_ignore_collect(collection_path, config):
    """nbval collects only notebooks that have reference outputs to compare: one with no cell
    marked NBVAL_CHECK_OUTPUT would only be executed again, which tests/test_notebooks.py does."""
    if collection_path.suffix == ".ipynb":
        return "NBVAL_CHECK_OUTPUT" not in collection_path.read_text(encoding="utf-8")
    return None
