"""``auv oof`` and the ``cleanlab`` scorer: out-of-fold probabilities on the images' grids, and confident learning on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from auvcore.audit.corruptions import plant
from auvcore.cli import main
from auvcore.datasets import discover_cases
from auvcore.errors import InputError
from auvcore.imaging import Geometry, load_case
from auvcore.oof import OofFolder, write_case_probabilities, write_oof_manifest
from auvcore.scorers.cleanlab_scores import class_uncertainties

from .conftest import CT_CLASSES

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def oof(small_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two folds of a tiny 2d model on the real small cohort."""
    out = tmp_path_factory.mktemp("oof")
    assert main(["oof", str(small_cohort / "manifest.csv"), "--out", str(out), "--folds", "2", "--config", "2d", "--epochs", "1",
                 "--steps-per-epoch", "1", "--base-filters", "4", "--classes", "liver,spleen", "--device", "cpu"]) == 0
    return out


def test_oof_writes_one_probability_file_per_case_on_its_images_grid(oof: Path, small_cohort: Path, capsys):
    folder = OofFolder.open(oof)
    specs = discover_cases(small_cohort / "manifest.csv")
    assert sorted(folder.cases) == sorted(s.case_id for s in specs) and folder.folds == 2
    assert {entry["fold"] for entry in folder.cases.values()} == {0, 1}
    assert len(list((oof / "probabilities").glob("*.npz"))) == len(specs)
    for spec in specs:
        case = load_case(spec.image)
        probabilities = folder.load(spec.case_id)
        assert probabilities is not None and sorted(probabilities.classes) == ["liver", "spleen"]
        assert probabilities.values.shape == (2, *case.image.shape)
        assert probabilities.values.min() >= 0.0 and probabilities.values.max() <= 1.0
        probabilities.check_grid(case.oriented, case.image.shape, "probabilities")  # raises when the grids differ
    manifest = json.loads((oof / "oof.json").read_text())
    assert manifest["training"]["config"] == "2d" and manifest["training"]["duo"] is False
    capsys.readouterr()
    assert main(["oof", str(small_cohort / "manifest.csv"), "--out", str(oof), "--folds", "2", "--config", "2d", "--epochs", "1",
                 "--steps-per-epoch", "1", "--base-filters", "4", "--classes", "liver,spleen", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count("already done") == 2  # a rerun resumes: nothing is trained again


def test_probabilities_on_another_grid_are_refused(oof: Path, small_cohort: Path):
    probabilities = OofFolder.open(oof).load("mr")
    assert probabilities is not None
    ct = load_case(small_cohort / "ct.nii.gz")
    with pytest.raises(InputError, match=r"mr.npz: holds probabilities of shape"):
        probabilities.check_grid(ct.oriented, ct.image.shape, oof / "probabilities" / "mr.npz")
    mr = load_case(small_cohort / "mr.nii.gz")
    moved = Geometry(mr.oriented.size, mr.oriented.spacing, tuple(v + 5.0 for v in mr.oriented.origin), mr.oriented.direction)
    with pytest.raises(InputError, match=r"origin .* differs from case 'mr'"):
        probabilities.check_grid(moved, mr.image.shape, "mr.npz")


def _confident_model(labels: np.ndarray, class_ids: dict[str, int]) -> np.ndarray:
    """Probabilities of a model that learned the clean labels: each class's mask, blurred in-plane."""
    return np.stack([ndimage.gaussian_filter((labels == i).astype(np.float32), sigma=(0, 1.5, 1.5)) for i in class_ids.values()])


@pytest.mark.parametrize("kind", ["dilate", "swap", "shift"])
def test_a_planted_label_error_ranks_above_its_clean_copy(small_cohort: Path, kind: str):
    case = load_case(small_cohort / "ct.nii.gz", small_cohort / "ct_full.nii.gz")
    classes = {"liver": CT_CLASSES["liver"], "spleen": CT_CLASSES["spleen"]}
    probabilities = _confident_model(case.labels, classes)
    _, planted, corruption = plant(kind, case.image, case.labels, np.random.default_rng(0), target=classes["liver"])
    assert corruption.changed_voxels > 0
    clean = class_uncertainties(case.labels, classes, probabilities, tuple(classes))
    noisy = class_uncertainties(planted, classes, probabilities, tuple(classes))
    changed = {name for name, i in classes.items() if i in corruption.classes}
    assert "liver" in changed
    for name in changed:
        assert noisy[name] > clean[name], (kind, name, noisy, clean)
    for name in set(classes) - changed:
        assert noisy[name] == pytest.approx(clean[name])


def test_auv_score_reads_the_oof_folder_at_the_cohort_stage(scored: Path, small_cohort: Path, tmp_path: Path, capsys):
    """cleanlab is not in the cases' cache key: adding it rescores no case, it only fills a column."""
    specs = discover_cases(small_cohort / "manifest.csv")
    folder = tmp_path / "oof"
    classes = {"liver": CT_CLASSES["liver"], "spleen": CT_CLASSES["spleen"]}
    truth = load_case(small_cohort / "ct.nii.gz", small_cohort / "ct_full.nii.gz")
    for spec in specs:
        case = load_case(spec.image, spec.label)
        reference = truth.labels if case.labels.shape == truth.labels.shape else case.labels  # ct_fast is judged by ct_full's truth
        write_case_probabilities(folder, spec.case_id, tuple(classes), _confident_model(reference, classes), case.oriented)
    write_oof_manifest(folder, 2, 0, {s.case_id: i % 2 for i, s in enumerate(specs)}, {s.case_id: tuple(classes) for s in specs}, {})
    out = tmp_path / "scored"
    shutil.copytree(scored, out)
    arguments = ["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress"]
    capsys.readouterr()
    assert main([*arguments, "--scorers", "cleanlab", "--oof", str(folder)]) == 0
    assert capsys.readouterr().out.count("status=cached") == 3
    structures = pd.read_csv(out / "structures.csv").set_index(["case_id", "class"])
    assert structures.loc[("ct_full", "liver"), "cleanlab"] < structures.loc[("ct_fast", "liver"), "cleanlab"]
    assert structures.loc[("ct_full", "kidney_right")].isna()["cleanlab"]  # no channel for it: no value
    results = pd.read_csv(out / "results.csv")
    assert results["cleanlab"].between(0, 1).all()


def test_cleanlab_is_named_explicitly_and_needs_its_folder(small_cohort: Path, tmp_path: Path, capsys):
    arguments = ["score", str(small_cohort / "manifest.csv"), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"]
    assert main([*arguments, "--scorers", "cleanlab"]) == 2
    assert "--scorers: the cleanlab scorer reads out-of-fold probabilities: give --scorers cleanlab with --oof" in capsys.readouterr().err
    assert main([*arguments, "--oof", str(tmp_path)]) == 2  # a folder without the scorer is a mistake too
    assert "or neither" in capsys.readouterr().err
    assert main([*arguments, "--scorers", "cleanlab", "--oof", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/oof.json: does not exist: give a folder written by `auv oof`" in capsys.readouterr().err
