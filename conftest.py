"""Settings for the whole test session, loaded before anything is collected.

The notebook runs (papermill, nbval and the book build) start Jupyter kernels that inherit this
environment, so the profile is fixed here: the tests always run the smoke profile, whatever the
shell exports. (MPLBACKEND is left alone: set to Agg, it would stop the kernels drawing figures.)
"""

import os

os.environ["DISENTANGLE_PROFILE"] = "smoke"
