"""The planted-corruption audit (``auv audit``): which score finds which error, on the user's own cohort.

The kinds, magnitudes and settings (:mod:`.settings`) load without NumPy or
SciPy; the corruptions, metrics (scikit-learn) and runner (torch) load on
first use.
"""

from __future__ import annotations

from ..lazy import lazy_exports
from .settings import IMAGE_KINDS, KINDS, LABEL_KINDS, MAGNITUDES, AuditSettings

__getattr__ = lazy_exports(__name__, {
    "Corruption": "corruptions",
    "plant": "corruptions",
    "TOP_STRUCTURES": "metrics",
    "auroc": "metrics",
    "detection_table": "metrics",
    "precision_at": "metrics",
    "precision_at_count": "metrics",
    "structure_detection": "metrics",
    "AuditFigures": "runner",
    "run_audit": "runner",
    "summary": "runner",
})

__all__ = [
    "IMAGE_KINDS",
    "KINDS",
    "LABEL_KINDS",
    "MAGNITUDES",
    "TOP_STRUCTURES",
    "AuditFigures",
    "AuditSettings",
    "Corruption",
    "auroc",
    "detection_table",
    "plant",
    "precision_at",
    "precision_at_count",
    "run_audit",
    "structure_detection",
    "summary",
]
