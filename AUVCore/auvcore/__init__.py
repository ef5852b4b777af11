"""auvcore: aleatoric uncertainty of medical volumes and annotations from frozen foundation models.

The measure (SPEC §3) is the public core:

    >>> import torch
    >>> from auvcore import semantic_scale, cohort_auv
    >>> s = semantic_scale(torch.randn(2, 6, 32))      # S(Z|c) per class
    >>> bool(((s >= 0) & (s <= 1)).all())
    True
    >>> cohort_auv([1.5, 1.0, 0.7]).values.round(2).tolist()
    [0.0, 0.53, 1.0]

Importing the package loads nothing heavy: the measure (torch) loads when one
of its names is first used, so reading a results folder needs no PyTorch.
"""

from __future__ import annotations

from importlib import metadata

from .errors import InputError
from .lazy import lazy_exports

try:
    __version__ = metadata.version("auvcore")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Public names loaded on first use, and the submodule that defines each.
__getattr__ = lazy_exports(__name__, {
    "SemanticScales": "spectrum",
    "class_spectra": "spectrum",
    "semantic_scale": "spectrum",
    "CohortAUV": "scales",
    "CohortReference": "scales",
    "cohort_auv": "scales",
})


__all__ = [
    "CohortAUV",
    "CohortReference",
    "InputError",
    "SemanticScales",
    "__version__",
    "class_spectra",
    "cohort_auv",
    "semantic_scale",
]
