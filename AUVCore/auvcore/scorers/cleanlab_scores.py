"""``cleanlab``: confident learning's label quality of each structure, from out-of-fold probabilities.

The peer method for label errors: a segmenter trained without the case
(``auv oof``, :mod:`auvcore.oof`) gives each voxel a probability per class;
where the label disagrees with confident predictions, the label is suspect.
Per case and class, the class becomes a binary problem (the class's channel
``p`` against ``1 - p``), and the voxels of the structure as labelled or as
predicted (label or ``p >= 0.5``) are scored with
``cleanlab.segmentation.rank.get_label_quality_scores`` (``softmin``: the
self-confidence of each voxel's given label, pooled with weight on the
worst voxels). The class value is ``1 - quality``, higher = more suspect.

Why that region and not cleanlab's per-pixel ``find_label_issues``: over a
whole volume the background sets confident learning's thresholds (its
self-confidence is near 1), so a two-voxel dilation of a structure drew no
issue at all in a constructed volume, while the region's quality fell.

Torch-free; ``cleanlab`` is imported when a cohort is scored with it.

Example:
    >>> labels = np.zeros((1, 4, 4), np.int32); labels[0, 1:3, 1:3] = 5
    >>> p = np.where(labels == 5, 0.9, 0.05)[None].astype(np.float32)
    >>> good = class_uncertainties(labels, {"liver": 5}, p, ("liver",))["liver"]
    >>> labels[0, 0, :] = 5  # a row the model calls background
    >>> class_uncertainties(labels, {"liver": 5}, p, ("liver",))["liver"] > good
    True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..oof import OofFolder
from ..results.case_record import CaseRecord

#: cleanlab's softmin temperature (its default): lower weighs the worst voxels more.
TEMPERATURE = 0.1


def class_uncertainty(mask: np.ndarray, probability: np.ndarray) -> float:
    """1 - cleanlab's softmin label quality of the voxels labelled (``mask``) or predicted as the class."""
    from cleanlab.segmentation.rank import get_label_quality_scores

    region = mask | (probability >= 0.5)
    if not region.any():
        return math.nan
    given = mask[region].astype(np.int64)[None, None, :]  # one "image" of the region's voxels
    p = probability[region].astype(np.float64)
    pred_probs = np.stack([1.0 - p, p])[None, :, None, :]
    quality, _ = get_label_quality_scores(given, pred_probs, method="softmin", verbose=False, temperature=TEMPERATURE)
    return float(1.0 - quality[0])


def class_uncertainties(labels: np.ndarray, class_ids: Mapping[str, int], probabilities: np.ndarray,
                        channels: Sequence[str]) -> dict[str, float]:
    """Per class name of ``class_ids`` that the probabilities (C, D, H, W) have a channel for: its uncertainty."""
    channel_of = {name: index for index, name in enumerate(channels)}
    return {name: class_uncertainty(labels == class_id, probabilities[channel_of[name]])
            for name, class_id in class_ids.items() if name in channel_of}


def cleanlab_scores(records: Sequence[CaseRecord], oof: str | Path) -> list[dict[str, float]]:
    """``cleanlab`` per case and class of the scored records, from the ``auv oof`` folder ``oof``.

    A case the folder has no probabilities for gets no values (a cohort's test
    cases, say); a folder that covers none of the cases is an error.
    """
    from ..imaging import load_case

    folder = OofFolder.open(oof)
    covered = [r for r in records if r.ok and r.case_id in folder.cases]
    if records and not covered:
        raise InputError(folder.root / "oof.json", "holds probabilities of none of the scored cases (made for another cohort?)")
    values: list[dict[str, float]] = []
    for record in records:
        probabilities = folder.load(record.case_id) if record.ok else None
        if probabilities is None or record.label is None:
            values.append({})
            continue
        case = load_case(record.image, record.label)
        assert case.labels is not None and case.oriented is not None
        probabilities.check_grid(case.oriented, case.labels.shape, folder.root / folder.cases[record.case_id]["file"])
        class_ids = {item.name: item.id for item in record.classes}
        values.append(class_uncertainties(case.labels, class_ids, probabilities.values, probabilities.classes))
    return values
