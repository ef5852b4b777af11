"""``auv predict``: segment a volume with a trained run and write a label map on the input's grid.

The image is preprocessed exactly as in training (the plan inside the
checkpoint), segmented with Gaussian-weighted sliding windows, the class
probabilities are resampled back to the image's own voxel grid, and each voxel
gets the id of its most probable class above the threshold (0 elsewhere). The
label map is written with the input file's size, spacing, origin and direction,
so it overlays the image in Slicer.

Example:
    >>> predict_file("run/model.pt", "case.nii.gz", "case_seg.nii.gz")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from monai.transforms import ResampleToMatch

from ..datasets import CaseSpec
from ..devices import resolve_device
from ..imaging import LoadedCase, load_case, read_image, write_image_atomic
from . import checkpoint as ckpt
from .backbones import build_backbone
from .data import as_metatensor, prepare_case
from .inference import decode_labels, predict_probabilities
from .model import DUONet
from .plan import Plan


def load_model(model_path: str | Path, device: torch.device) -> tuple[DUONet, Plan]:
    """A trained network and its plan, from ``model.pt``, ``checkpoint_latest.pt`` or a run folder."""
    path = Path(model_path)
    if path.is_dir():
        path = path / ckpt.MODEL
    state = ckpt.load_checkpoint(path, map_location=device)
    plan = Plan.from_dict(state["plan"])
    model = DUONet(build_backbone(state["backbone"]), len(plan.classes), noise=bool(state.get("duo", True)))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), plan


def class_probabilities(model: DUONet, plan: Plan, image_path: str | Path, device: torch.device) -> tuple[np.ndarray, LoadedCase]:
    """Each class's probability (C, D, H, W) on the image's own voxels, in the LPS orientation of
    :func:`auvcore.imaging.load_case`, channel ``i`` for ``plan.classes[i]``; and the loaded image.

    The 2d configuration's one-slice windows segment the volume slice by slice.
    """
    case = load_case(image_path)
    item = prepare_case(case, CaseSpec(Path(image_path).name, Path(image_path), None), plan)
    image = torch.as_tensor(item["image"])[None].to(device)
    probabilities = predict_probabilities(model, image, plan.patch, amp=device.type == "cuda")[0].cpu()
    on_plan_grid = MetaTensor(probabilities, affine=item["image"].affine)
    case_grid = as_metatensor(np.zeros(case.image.shape, dtype=np.float32), case.spacing)
    back = ResampleToMatch(mode="bilinear", padding_mode="border")(on_plan_grid, img_dst=case_grid)
    return np.asarray(back.array if isinstance(back, MetaTensor) else back, dtype=np.float32), case


def segment(model: DUONet, plan: Plan, image_path: str | Path, device: torch.device, threshold: float = 0.5) -> np.ndarray:
    """Label map (D, H, W) in the LPS orientation of :func:`auvcore.imaging.load_case`."""
    probabilities, _ = class_probabilities(model, plan, image_path, device)
    return decode_labels(torch.from_numpy(probabilities)[None], plan.label_ids, threshold)[0].numpy()


def write_label_map(labels: np.ndarray, image_path: str | Path, out_path: str | Path) -> None:
    """Write an LPS (D, H, W) label map atomically with the geometry of the image file."""
    original = read_image(image_path)
    oriented = sitk.DICOMOrient(original, "LPS")
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    label_image = sitk.GetImageFromArray(labels.astype(dtype))
    label_image.CopyInformation(oriented)
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(original.GetDirection())
    label_image = sitk.DICOMOrient(label_image, code)
    label_image.CopyInformation(original)  # same grid; removes round-off from the reorientation
    write_image_atomic(label_image, out_path)


def predict_file(model_path: str | Path, image_path: str | Path, out_path: str | Path, device: str = "auto", threshold: float = 0.5) -> Path:
    """Segment ``image_path`` with the model at ``model_path`` and write ``out_path``."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    torch_device = resolve_device(device)
    model, plan = load_model(model_path, torch_device)
    write_label_map(segment(model, plan, image_path, torch_device, threshold), image_path, out_path)
    return Path(out_path)
