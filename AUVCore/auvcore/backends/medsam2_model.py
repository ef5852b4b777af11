"""MedSAM2's network: SAM2.1 Hiera-T at 512x512, built from sam2's config, and its checkpoint loader.

``sam2`` (and Hydra, which it initialises globally) is imported only inside
:func:`build_model`.

Example (needs ``pip install sam2`` and a MedSAM2 checkpoint)::

    model = build_model(torch.device("cpu"))
    load_checkpoint(model, "MedSAM2_latest.pt")
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import InputError

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


def require_checkpoint_file(path: Path) -> None:
    """Raise an InputError naming ``path`` unless it is an existing file."""
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
    require_checkpoint_file(path)
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

