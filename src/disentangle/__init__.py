"""disentangle: the library of the book *Disentangled representation learning through
information theory*.

One module per idea: ``config`` (profiles, devices, seeds, the environment record) and, as the
book grows, ``data``, ``info``, ``models``, ``objectives``, ``train``, ``metrics`` and ``viz``.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("disentangle")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
