"""auvcore: aleatoric uncertainty of medical volumes and annotations from frozen foundation models.

The measure (SPEC §3) is the public core:

    >>> import torch
    >>> from auvcore import semantic_scale, cohort_auv
    >>> s = semantic_scale(torch.randn(2, 6, 32))      # S(Z|c) per class
    >>> bool(((s >= 0) & (s <= 1)).all())
    True
    >>> cohort_auv([1.5, 1.0, 0.7]).values.round(2).tolist()
    [0.0, 0.53, 1.0]
"""

from importlib import metadata

from .errors import InputError
from .spectrum import CohortAUV, CohortReference, SemanticScales, class_spectra, cohort_auv, semantic_scale

try:
    __version__ = metadata.version("auvcore")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

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
