"""The planted-corruption audit (``auv audit``): which score finds which error, on the user's own cohort."""

from .corruptions import IMAGE_KINDS, KINDS, LABEL_KINDS, MAGNITUDES, Corruption, plant
from .metrics import auroc, detection_table, precision_at
from .runner import run_audit, summary
from .settings import AuditSettings

__all__ = [
    "IMAGE_KINDS",
    "KINDS",
    "LABEL_KINDS",
    "MAGNITUDES",
    "AuditSettings",
    "Corruption",
    "auroc",
    "detection_table",
    "plant",
    "precision_at",
    "run_audit",
    "summary",
]
