"""The C extension module _zinx, imported once for the package.

Checked here because a source checkout has a folder named _zinx (the C
sources): without the built module, ``import _zinx`` would quietly give
that folder as an empty namespace package and fail later and obscurely.
"""

import _zinx as zinx

if not hasattr(zinx, "Server"):
    raise ImportError(
        "the C extension module _zinx is not built or not on the path "
        "(found %r): run `make python`, or put the build's "
        "bindings/python folder first on PYTHONPATH"
        % (getattr(zinx, "__path__", None) or getattr(zinx, "__file__", None),))
