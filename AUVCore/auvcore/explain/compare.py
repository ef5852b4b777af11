"""A planted copy of the explained case: one corruption of :mod:`auvcore.audit.corruptions`, on the explained class.

The copy is written to files (the user's are only read), so the page's
numbers can be checked with a separate ``auv score`` of the copy.

Example:
    >>> parse_compare("blur=2")
    ('blur', 2.0)
    >>> parse_compare("dilate")
    ('dilate', None)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..audit.corruptions import Corruption, plant
from ..audit.settings import IMAGE_KINDS, KINDS
from ..datasets import CaseSpec
from ..errors import InputError
from ..imaging import read_image, write_array_like
from ..results import safe_file_name

PLANTED_DIR = "planted"


def parse_compare(text: str) -> tuple[str, float | None]:
    """``KIND`` or ``KIND=MAGNITUDE`` -> (kind, magnitude or None for the kind's default)."""
    kind, _, magnitude = text.partition("=")
    if kind not in KINDS:
        raise InputError("--compare", f"unknown corruption {kind!r}; choose from {', '.join(KINDS)}")
    try:
        return kind, float(magnitude) if magnitude else None
    except ValueError:
        raise InputError("--compare", f"magnitude {magnitude!r} of {kind} is not a number") from None


@dataclass(frozen=True)
class PlantedCopy:
    """The planted case (its files) and what was planted."""

    spec: CaseSpec
    corruption: Corruption

    @property
    def title(self) -> str:
        return f"{self.corruption.kind} {self.corruption.magnitude:g}"


def plant_copy(spec: CaseSpec, class_id: int, kind: str, magnitude: float | None, out: Path, seed: int = 0) -> PlantedCopy:
    """Write ``spec`` with one ``kind`` corruption (label kinds: on ``class_id``) under ``out/planted``."""
    assert spec.label is not None
    image, labels = read_image(spec.image), read_image(spec.label)
    image_array, label_array = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels)
    try:
        new_image, new_labels, corruption = plant(kind, image_array, label_array, np.random.default_rng(seed), magnitude, target=class_id)
    except ValueError as error:  # a swap needs a second structure big enough to corrupt
        raise InputError(spec.label, f"cannot plant {kind}: {error}") from None
    magnitude_text = f"{corruption.magnitude:g}"
    stem = f"{safe_file_name(spec.case_id)}~{kind}{magnitude_text}"
    folder = out / PLANTED_DIR
    image_path, label_path = Path(spec.image), Path(spec.label)
    if kind in IMAGE_KINDS:
        image_path = folder / f"{stem}_image.nii.gz"
        write_array_like(new_image, image, image_path)
    else:
        label_path = folder / f"{stem}_label.nii.gz"
        write_array_like(new_labels, labels, label_path)
    return PlantedCopy(CaseSpec(f"{spec.case_id}~{kind}{magnitude_text}", image_path, label_path, spec.class_names), corruption)
