"""MedSAM2: SAM2.1 Hiera-T at 512x512, one key-slice box per class propagated through the volume.

Built with the ``sam2`` package from a MedSAM2 checkpoint that the user points
to, the way MedSAM2's ``medsam2_infer_3D_CT.py`` runs it: every slice resized to
512x512, grey repeated to RGB and ImageNet-normalised (without MedSAM2's uint8
rounding); per class, a box on the slice where the class is largest; the video
predictor propagates that box forward and, from a fresh state, backward.
MedSAM2 tracks to the ends of the volume; tracking is causal and only the
slices that hold the class become rows of Z, so it stops at the class's first
and last slices, which gives the same rows for less work.

Z[c] is the mask-decoder logits of class c per slice at the decoder's native
128x128 (N = 16384 for every case); ``present[c, d]`` is where the label map
holds class c. Image mode gives the encoder's top feature map, 256x32x32.

The encoder runs once per slice per image: its features (about 4 MiB a slice)
are kept and shared by every class's propagation, and by later label maps of
the same ``image_key``. Tracking runs per class and slice, and one tracking step
(memory attention over up to 7 earlier slices) costs about as much as encoding
a slice, so on a CPU classwise time grows with the summed extent of the classes.

``sam2`` is imported only when a backend is built: importing it initialises
Hydra globally.

Example (needs ``pip install sam2`` and a MedSAM2 checkpoint)::

    backend = MedSAM2Backend(torch.device("cpu"), "MedSAM2_latest.pt")
    features = backend.classwise_features(volume, labels, class_ids=[1, 2])
    features.z.shape  # (2, D, 16384)
"""

from __future__ import annotations

import contextlib
import io
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..files import file_sha256
from .base import CaseFeatures
from .medsam2_model import (
    ARCHITECTURE,
    CONFIG_NAME,
    CONFIG_OVERRIDES,
    EMBEDDING_SHAPE,
    IMAGE_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MASK_SIZE,
    build_model,
    load_checkpoint,
    require_checkpoint_file,
)
from .medsam2_prompts import ClassPrompt, class_prompts

#: One encoded slice as sam2's video predictor caches it: (image, backbone output).
_FrameFeatures = tuple[torch.Tensor, dict[str, list[torch.Tensor]]]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """sam2 draws a progress bar per propagation; the caller's case-level bar is the one to read."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


class MedSAM2Backend:
    """The ``medsam2`` backbone: SAM2.1 Hiera-T with MedSAM2 weights, 3D box propagation.

    Args:
        device: where the model runs, in float32 on every device (MedSAM2 itself
            autocasts to bfloat16 on CUDA; that it keeps S within 1e-3 is unmeasured).
        checkpoint: path of a MedSAM2 checkpoint (e.g. ``MedSAM2_latest.pt``): a
            state dict, bare or under ``"model"``, loaded with ``weights_only=True``.
    """

    name = "medsam2"

    def __init__(self, device: torch.device, checkpoint: str | None) -> None:
        if not checkpoint:
            raise InputError("--checkpoint", "the medsam2 backbone needs the path of a MedSAM2 checkpoint (e.g. MedSAM2_latest.pt)")
        path = Path(checkpoint)
        require_checkpoint_file(path)
        self.device = torch.device(device)
        self.checkpoint = str(path)
        self.checkpoint_sha256 = file_sha256(path)
        self._model = build_model(torch.device("cpu"))
        load_checkpoint(self._model, path)
        self._model.to(self.device)
        # Encoder features per slice of the last image (frame index -> backbone output).
        self._image_key: str | None = None
        self._frames: dict[int, _FrameFeatures] = {}

    def describe(self) -> dict[str, Any]:
        """What determines the features (see :meth:`FoundationBackend.describe`; not the cache key)."""
        return {
            "backbone": self.name,
            "weights_sha256": self.checkpoint_sha256,
            "config": CONFIG_NAME,
            "config_overrides": {k: v for k, v in CONFIG_OVERRIDES.items() if k != "model._target_"},
            "input_size": IMAGE_SIZE,
            "preprocessing": "512x512 bicubic-antialias, grey to RGB, ImageNet mean/std",
            "mask_size": MASK_SIZE,
            "embedding_shape": list(EMBEDDING_SHAPE),
            "sam2_version": metadata.version("sam2"),
        }

    def feature_bytes(self, volume_shape: tuple[int, int, int], n_classes: int, mode: str) -> int:
        """Bytes of Z (float32); the kept encoder features of the volume add about 4 MiB a slice."""
        depth = int(volume_shape[0])
        if mode == "image":
            return depth * int(np.prod(EMBEDDING_SHAPE)) * 4
        return n_classes * depth * MASK_SIZE * MASK_SIZE * 4

    def classwise_features(
        self, volume: np.ndarray, labels: np.ndarray, class_ids: Sequence[int], image_key: str | None = None
    ) -> CaseFeatures:
        """Z[c]: mask logits (128x128) per slice from class c's key-slice box, propagated both ways."""
        _check_volume(volume, labels)
        present, prompts = class_prompts(labels, class_ids)
        needed = sorted({d for p in prompts if p for d in range(p.first_slice, p.last_slice + 1)})
        frames, encoded, encoder_seconds = self._encode(volume, needed, image_key)
        start = time.perf_counter()
        z = torch.zeros(len(prompts), volume.shape[0], MASK_SIZE * MASK_SIZE, device=self.device)
        with torch.inference_mode(), _quiet_stderr():
            for c, prompt in enumerate(prompts):
                if prompt is not None:
                    for frame, logits in self._propagate(frames, volume.shape[0], prompt):
                        z[c, frame] = logits.reshape(-1).float()
        propagation_seconds = self._elapsed(start)
        return CaseFeatures(
            z=z,
            present=torch.from_numpy(present).to(self.device),
            # "decoder": the whole tracking step (memory attention, mask decoder, memory encoder).
            timings={"encoder": encoder_seconds, "decoder": propagation_seconds},
            slices_encoded=encoded,
            # Slices are resized whole to the input size, so both maps cover the whole slice.
            grid=(MASK_SIZE, MASK_SIZE),
            embeddings={d: frames[d][1]["backbone_fpn"][-1][0].float() for d in needed},
        )

    def image_features(self, volume: np.ndarray, image_key: str | None = None) -> CaseFeatures:
        """z (1, D, 256*32*32): the encoder's top feature map of every slice."""
        _check_volume(volume)
        depth = volume.shape[0]
        frames, encoded, encoder_seconds = self._encode(volume, range(depth), image_key)
        z = torch.stack([frames[d][1]["backbone_fpn"][-1].reshape(-1) for d in range(depth)]).unsqueeze(0)
        return CaseFeatures(
            z=z.float(),
            present=torch.ones(1, depth, dtype=torch.bool, device=self.device),
            timings={"encoder": encoder_seconds, "decoder": 0.0},
            slices_encoded=encoded,
        )

    def _elapsed(self, start: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def _preprocess(self, plane: np.ndarray) -> torch.Tensor:
        """One [0, 1] slice as MedSAM2 feeds it: 512x512 bicubic, grey to RGB, ImageNet-normalised."""
        image = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32)).to(self.device)
        image = F.interpolate(image[None, None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", antialias=True)
        image = image.clamp(0.0, 1.0).expand(1, 3, -1, -1)
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        return (image - mean) / std

    def _encode(
        self, volume: np.ndarray, frames: Sequence[int], image_key: str | None
    ) -> tuple[dict[int, _FrameFeatures], int, float]:
        """Encoder features of ``frames``, computing only those not kept for this image.

        Returns the features by slice, how many slices were encoded and the seconds
        it took. With an ``image_key`` the features are kept for the next call on
        the same image (only the latest image is kept).
        """
        if image_key is None:
            kept: dict[int, _FrameFeatures] = {}
        else:
            if image_key != self._image_key:
                self._image_key, self._frames = image_key, {}
            kept = self._frames
        todo = [d for d in frames if d not in kept]
        start = time.perf_counter()
        with torch.inference_mode():
            for d in todo:
                features = self._model.forward_image(self._preprocess(volume[d]))
                backbone = {"backbone_fpn": features["backbone_fpn"], "vision_pos_enc": features["vision_pos_enc"]}
                if kept:
                    # The positional encoding depends on the shape only: keep one copy.
                    backbone["vision_pos_enc"] = next(iter(kept.values()))[1]["vision_pos_enc"]
                # The tracker reads only the features of a cached frame, never its image.
                kept[d] = (_NO_IMAGE.to(self.device), backbone)
        return kept, len(todo), self._elapsed(start)

    def _propagate(
        self, frames: dict[int, _FrameFeatures], depth: int, prompt: ClassPrompt
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """(slice, 128x128 logits) over the class's extent, as MedSAM2 tracks one object:
        forward from the key slice, then backward from it in a fresh state."""
        state = self._new_state(frames, depth)
        spans = ((False, prompt.last_slice - prompt.key_slice), (True, prompt.key_slice - prompt.first_slice))
        for reverse, span in spans:
            if reverse and span == 0:
                continue  # the key slice's own logits came with the forward pass
            self._model.reset_state(state)
            self._model.add_new_points_or_box(
                state, frame_idx=prompt.key_slice, obj_id=1, box=prompt.box, normalize_coords=False
            )
            tracked = self._model.propagate_in_video(
                state, start_frame_idx=prompt.key_slice, max_frame_num_to_track=span, reverse=reverse
            )
            for frame, _, masks in tracked:
                if not (reverse and frame == prompt.key_slice):
                    yield frame, masks[0, 0]

    def _new_state(self, frames: dict[int, _FrameFeatures], depth: int) -> dict[str, Any]:
        """An inference state of sam2's video predictor over the kept encoder features.

        ``SAM2VideoPredictor.init_state`` reads frames from a JPEG folder or an MP4;
        MedSAM2 replaces it to take an in-memory array. Here the state starts with
        every needed slice's features already computed, shared by all classes.
        "Video" size = mask size, so outputs are the decoder's logits, unresized.
        """
        return {
            "images": _UnencodedFrames(depth),
            "num_frames": depth,
            "offload_video_to_cpu": False,
            "offload_state_to_cpu": False,
            "video_height": MASK_SIZE,
            "video_width": MASK_SIZE,
            "device": self.device,
            "storage_device": self.device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": frames,
            "constants": {},
            "obj_id_to_idx": {},
            "obj_idx_to_id": {},
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }


#: Stands in for a cached frame's image, which sam2's tracker returns but never reads.
_NO_IMAGE = torch.empty(1, 3, 0, 0)


class _UnencodedFrames:
    """The state's frame list: every frame the tracker visits is already encoded."""

    def __init__(self, depth: int) -> None:
        self._depth = depth

    def __len__(self) -> int:
        return self._depth

    def __getitem__(self, index: int) -> torch.Tensor:
        raise RuntimeError(f"slice {index} was not encoded before propagation; this is a bug in auvcore")


def _check_volume(volume: np.ndarray, labels: np.ndarray | None = None) -> None:
    if volume.ndim != 3:
        raise ValueError(f"volume must be (D, H, W), got shape {volume.shape}")
    if labels is not None and labels.shape != volume.shape:
        raise ValueError(f"labels shape {labels.shape} differs from volume shape {volume.shape}")


__all__ = [
    "ARCHITECTURE",
    "CONFIG_NAME",
    "CONFIG_OVERRIDES",
    "EMBEDDING_SHAPE",
    "IMAGE_SIZE",
    "MASK_SIZE",
    "ClassPrompt",
    "MedSAM2Backend",
    "build_model",
    "class_prompts",
    "load_checkpoint",
]
