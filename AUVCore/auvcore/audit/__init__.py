"""The planted-corruption audit (``auv audit``): which score finds which error, on the user's own cohort."""

from .corruptions import IMAGE_KINDS, KINDS, LABEL_KINDS, MAGNITUDES, Corruption, plant
from .metrics import TOP_STRUCTURES, auroc, detection_table, precision_at, precision_at_count, structure_detection
from .runner import AuditFigures, run_audit, summary
from .settings import AuditSettings

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
