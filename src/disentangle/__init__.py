"""disentangle: the library of the book *Disentangled representation learning through
information theory*.

A model family is one package with its settings, networks, objectives, training and evaluation,
and one line in :mod:`disentangle.registry`: ``supervised`` (DisTIB and its baselines), ``gan``
(InfoGAN and TC-GAN, the two-level latent space) and ``vae`` (the VAE family). What they share:
``config`` (profiles, devices, seeds, the environment record), ``settings`` (typed run settings),
``data`` (datasets and their registry), ``nets`` and ``losses`` (building blocks), ``train`` (the
loop), ``family`` (the family record and the one run skeleton), ``runs`` (the run store),
``info`` and ``estimators`` (information on tables and from samples), ``metrics``, ``studies``
with ``stats``, ``bench``, ``viz`` and ``widgets``. ``ARCHITECTURE.md`` draws the layout.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("disentangle")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
