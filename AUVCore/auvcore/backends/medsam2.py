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

``runtime`` openvino / onnxruntime (or auto on the CPU) runs the image encoder
(Hiera trunk and FPN neck) as a graph exported from the loaded weights
(:class:`ExportedImageEncoder`, cached like LiteMedSAM's); the tracking step
(memory attention, prompt and mask decoder, memory encoder) stays in torch:
sam2's video predictor keeps per-object state in Python between its modules,
which ``torch.onnx.export`` cannot trace as one graph.

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
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..files import file_sha256
from ..prompts import slice_boxes
from .base import CaseFeatures
from .export_cache import blob_cache_dir, cached_onnx, export_key, export_onnx
from .runtimes import CompiledModel, load_compiled, resolve_runtime, runtime_version

CONFIG_NAME = "configs/sam2.1/sam2.1_hiera_t.yaml"
IMAGE_SIZE = 512
#: The mask decoder's low-resolution logits are a quarter of the input size.
MASK_SIZE = IMAGE_SIZE // 4
#: The encoder's top feature map: 256 channels at 1/16 of the input size.
EMBEDDING_SHAPE = (256, IMAGE_SIZE // 16, IMAGE_SIZE // 16)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: MedSAM2's changes to SAM2.1 Hiera-T (its ``sam2.1_hiera_t512.yaml``) and the
#: settings sam2's ``build_sam2_video_predictor`` adds, as MedSAM2 builds it.
CONFIG_OVERRIDES: dict[str, Any] = {
    "model._target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
    "model.image_size": IMAGE_SIZE,
    "model.memory_attention.layer.self_attention.feat_sizes": [32, 32],
    "model.memory_attention.layer.cross_attention.feat_sizes": [32, 32],
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "model.binarize_mask_from_pts_for_mem_enc": True,
    # Hole filling needs sam2's optional compiled CUDA extension; without it sam2
    # skips it with a warning. Off, so that every install gives the same logits.
    "model.fill_hole_area": 0,
}

ARCHITECTURE = "SAM2.1 Hiera-T (MedSAM2)"

#: One encoded slice as sam2's video predictor caches it: (image, backbone output).
_FrameFeatures = tuple[torch.Tensor, dict[str, list[torch.Tensor]]]


def build_model(device: torch.device) -> torch.nn.Module:
    """SAM2.1 Hiera-T video predictor with MedSAM2's 512x512 settings and random weights.

    The config is read with OmegaConf and instantiated with Hydra's
    ``instantiate``, so it works whatever Hydra's global state is.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config_path = resources.files("sam2").joinpath(CONFIG_NAME)
    config = OmegaConf.create(config_path.read_text())
    for key, value in CONFIG_OVERRIDES.items():
        OmegaConf.update(config, key, value, force_add=True)
    OmegaConf.resolve(config)
    model = instantiate(config.model, _recursive_=True)
    return model.to(device).eval()


def _require_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "MedSAM2 checkpoint not found")
    if not path.is_file():
        raise InputError(path, "is a folder, not a MedSAM2 checkpoint file")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a bare state dict or one under ``"model"``."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated / foreign files
        first_line = (str(error).strip().splitlines() or [""])[0][:200]  # weights_only errors run to pages
        raise InputError(
            path,
            "cannot be read as a PyTorch checkpoint: truncated, damaged or not written by torch.save "
            f"({type(error).__name__}: {first_line})",
        ) from error
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        loaded = loaded["model"]
    if not isinstance(loaded, dict) or not loaded or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise InputError(path, f"is not a {ARCHITECTURE} checkpoint: it holds no state dict of named tensors")
    return loaded


def _examples(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (", ..." if len(names) > limit else "")


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load a MedSAM2 checkpoint into ``model``, strictly.

    Raises:
        InputError: naming the file when it is missing, unreadable, or holds the
            weights of another architecture (missing, unexpected or misshapen keys).
    """
    path = Path(path)
    _require_file(path)
    state = _read_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or misshapen:
        problems = []
        if missing:
            problems.append(f"{len(missing)} of {len(expected)} weights missing ({_examples(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected ({_examples(unexpected)})")
        if misshapen:
            problems.append(f"{len(misshapen)} with the wrong shape ({_examples(misshapen, 2)})")
        raise InputError(path, f"is not a {ARCHITECTURE} checkpoint: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


@dataclass(frozen=True)
class ClassPrompt:
    """How one class is prompted: a box on its key slice, tracked over its extent.

    Attributes:
        key_slice: the slice where the class has the largest area.
        box: ``(x0, y0, x1, y1)`` on the key slice, as fractions of the slice width/height.
        first_slice, last_slice: the first and last slices that hold the class.
    """

    key_slice: int
    box: tuple[float, float, float, float]
    first_slice: int
    last_slice: int


def class_prompts(labels: np.ndarray, class_ids: Sequence[int]) -> tuple[np.ndarray, list[ClassPrompt | None]]:
    """Per class, the presence per slice (C, D) and its key-slice prompt (None when absent).

    Example:
        >>> labels = np.zeros((4, 10, 20), dtype=np.int32)
        >>> labels[1:3, 2:6, 5:15] = 7
        >>> labels[2, 2:8, 5:15] = 7
        >>> present, prompts = class_prompts(labels, [7, 9])
        >>> present.tolist()
        [[False, True, True, False], [False, False, False, False]]
        >>> prompts[0]
        ClassPrompt(key_slice=2, box=(0.25, 0.2, 0.7, 0.7), first_slice=1, last_slice=2)
        >>> prompts[1] is None
        True
    """
    boxes = slice_boxes(labels, class_ids)
    height, width = labels.shape[1:]
    scale = np.array([width, height, width, height], dtype=np.float64)
    prompts: list[ClassPrompt | None] = []
    for present, areas, class_boxes in zip(boxes.present, boxes.areas, boxes.boxes):
        if not present.any():
            prompts.append(None)
            continue
        key = int(areas.argmax())
        rows = np.flatnonzero(present)
        box = tuple(float(v) for v in class_boxes[key] / scale)
        prompts.append(ClassPrompt(key, box, int(rows[0]), int(rows[-1])))  # type: ignore[arg-type]
    return boxes.present, prompts


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """sam2 draws a progress bar per propagation; the caller's case-level bar is the one to read."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


class _EncoderOutputs(torch.nn.Module):
    """sam2's image encoder with its output dict flattened to a tuple, as the exporter needs."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.encoder(images)
        return (*output["backbone_fpn"], *output["vision_pos_enc"])


class ExportedImageEncoder(torch.nn.Module):
    """sam2's image encoder (trunk and neck) run as an exported graph, returning sam2's output dict."""

    def __init__(self, compiled: CompiledModel, levels: int) -> None:
        super().__init__()
        self.compiled, self.levels = compiled, levels

    @classmethod
    def build(cls, encoder: torch.nn.Module, runtime: str, weights_sha256: str) -> ExportedImageEncoder:
        """Export ``encoder`` once into the cache (keyed by the weights and the runtime) and load it in ``runtime``."""
        example = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
        with torch.no_grad():
            levels = len(encoder(example)["backbone_fpn"])
        names = [f"fpn{i}" for i in range(levels)] + [f"pos{i}" for i in range(levels)]
        export = export_onnx(_EncoderOutputs(encoder), (example,), ["images"], names, {})
        key = export_key("medsam2-encoder", weights_sha256, runtime, runtime_version(runtime))
        path = cached_onnx("medsam2-encoder", key, export)
        return cls(load_compiled(runtime, path, "fp32", blob_cache_dir(runtime), outputs="all"), levels)

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        outputs = [torch.from_numpy(a) for a in self.compiled({"images": images.cpu().numpy()})]
        features, positions = outputs[: self.levels], outputs[self.levels :]
        return {"vision_features": features[-1], "vision_pos_enc": positions, "backbone_fpn": features}


class MedSAM2Backend:
    """The ``medsam2`` backbone: SAM2.1 Hiera-T with MedSAM2 weights, 3D box propagation.

    Args:
        device: where the model runs, in float32 on every device (MedSAM2 itself
            autocasts to bfloat16 on CUDA; that it keeps S within 1e-3 is unmeasured).
        checkpoint: path of a MedSAM2 checkpoint (e.g. ``MedSAM2_latest.pt``): a
            state dict, bare or under ``"model"``, loaded with ``weights_only=True``.
    """

    name = "medsam2"

    def __init__(self, device: torch.device, checkpoint: str | None, runtime: str = "auto", precision: str = "fp32") -> None:
        if precision != "fp32":
            raise ValueError("the medsam2 backbone runs fp32 only; use --precision fp32")
        if not checkpoint:
            raise InputError("--checkpoint", "the medsam2 backbone needs the path of a MedSAM2 checkpoint (e.g. MedSAM2_latest.pt)")
        path = Path(checkpoint)
        _require_file(path)
        self.device = torch.device(device)
        self.checkpoint = str(path)
        self.checkpoint_sha256 = file_sha256(path)
        self._model = build_model(torch.device("cpu"))
        load_checkpoint(self._model, path)
        self._model.to(self.device)
        self.runtime = resolve_runtime(runtime, self.device)
        if self.runtime != "torch":
            self._model.image_encoder = ExportedImageEncoder.build(self._model.image_encoder, self.runtime, self.checkpoint_sha256)
        # Encoder features per slice of the last image (frame index -> backbone output).
        self._image_key: str | None = None
        self._frames: dict[int, _FrameFeatures] = {}

    def describe(self) -> dict[str, Any]:
        """What determines the features, for the result cache key."""
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
            "runtime": {"name": self.runtime, "version": runtime_version(self.runtime), "precision": "fp32"},
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
