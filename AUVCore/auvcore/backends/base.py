"""The interface every foundation-model backend implements.

A backend turns one prepared volume into the class-wise feature tensor Z of
SPEC §3: ``z`` (C, D, N) with a bool ``present`` (C, D) of the rows to keep.

Volumes reach a backend already checked, reoriented and scaled to [0, 1]
(:mod:`auvcore.imaging`), as float32 (D, H, W) arrays with slices on axis 0.
Each backend does its own resizing to its input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch


@dataclass
class CaseFeatures:
    """Class-wise features of one case.

    Attributes:
        z: float32 (C, D, N) on the backend's device.
        present: bool (C, D), the rows (slices) that hold a prompt for the class.
        timings: seconds spent per stage, e.g. ``{"encoder": 3.1, "decoder": 0.8}``.
        slices_encoded: how many slices went through the image encoder.
        grid: (h, w) of one row of ``z`` in classwise mode, when each row is a
            map covering the whole slice (the mask logits); label-aware
            scorers (:mod:`auvcore.scorers`) compare it with the labels.
        embeddings: the image-encoder embedding (K, h', w') of each encoded
            slice, cropped to the slice's area, kept in classwise mode for the
            label-aware scorers; None where a backend does not expose them.
    """

    z: torch.Tensor
    present: torch.Tensor
    timings: dict[str, float] = field(default_factory=dict)
    slices_encoded: int = 0
    grid: tuple[int, int] | None = None
    embeddings: dict[int, torch.Tensor] | None = None


@runtime_checkable
class FoundationBackend(Protocol):
    """A frozen foundation model that yields class-wise features.

    Implementations are constructed by the registry (:mod:`auvcore.backends`)
    with ``device`` and an optional ``checkpoint``.
    """

    name: str
    device: torch.device

    def describe(self) -> dict[str, Any]:
        """Everything that changes the features (weights hash, input size, ...), JSON-serialisable.

        A description for people and tests, not the result cache key: that key
        (:mod:`auvcore.cohort`) hashes the scoring settings, the checkpoint's
        content and the auvcore version, so a change of what is listed here must
        come with a new checkpoint or a new auvcore version to rescore cached cases.
        """
        ...

    def classwise_features(
        self, volume: np.ndarray, labels: np.ndarray, class_ids: Sequence[int], image_key: str | None = None
    ) -> CaseFeatures:
        """Z[c] from box prompts of each class in ``labels`` (C = len(class_ids)).

        ``image_key`` identifies the volume's content so a backend may reuse
        its image embeddings across label maps of the same image.
        """
        ...

    def image_features(self, volume: np.ndarray, image_key: str | None = None) -> CaseFeatures:
        """Label-free features: the image-encoder embeddings of every slice, C = 1."""
        ...

    def feature_bytes(self, volume_shape: tuple[int, int, int], n_classes: int, mode: str) -> int:
        """Bytes the feature tensor Z will take for such a volume, checked before running."""
        ...


@runtime_checkable
class BoxPrompter(Protocol):
    """A backend that decodes box prompts of the caller's choosing on a volume's slices (LiteMedSAM does).

    The label-independent evidence of :mod:`auvcore.scorers.evidence` prompts with boxes that are not the
    label's own; a backend without this method leaves those scores missing, with the reason.
    """

    def box_logits(self, volume: np.ndarray, slices: Sequence[int], boxes: np.ndarray, image_key: str | None = None
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mask logits (N, h, w) on the backend's logit grid for each (slice, box), and the seconds spent per stage."""
        ...
