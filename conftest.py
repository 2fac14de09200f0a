"""Settings for the whole test session, loaded before anything is collected.

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

