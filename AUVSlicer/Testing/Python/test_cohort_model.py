"""The cohort browser's model: sorting, selection, decisions, quantile, autosave, save and export on disk."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from auvcore.curation import ConcurrentChangeError, load_exclusions
from auvcore.errors import InputError
from AUVSlicerLib.case_loader import CaseLoader
from AUVSlicerLib.cohort_model import AUTOSAVE_NAME, CohortModel

AUVS = [0.05, 0.9, 0.3, None, 0.55, 1.0, 0.0, 0.72, 0.41, 0.18]


@pytest.fixture
def results_folder(tmp_path, sample_manifest):
    """A ten-case results folder in the `auv score` layout (one failed case), images relative to the folder."""
    (tmp_path / "example_ct_sm.nii.gz").symlink_to(sample_manifest.parent / "example_ct_sm.nii.gz")
    rows = []
    for index, auv in enumerate(AUVS):
        failed = auv is None
        rows.append({"case_id": f"case_{index:02d}", "auv": auv, "S": None if failed else 2.0 - auv,
                     "S_liver": None if failed else 0.9 - auv / 3, "status": "error" if failed else "ok",
                     "error": "image unreadable" if failed else "", "backbone": "litemedsam", "mode": "classwise",
                     "image": "example_ct_sm.nii.gz", "label": str(sample_manifest.parent / "example_seg.nii.gz")})
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    return tmp_path


def test_the_table_sorts_by_any_column_with_missing_values_last(results_folder):
    model = CohortModel(results_folder)
    by_auv = model.table("auv", descending=True)
    assert by_auv["case_id"].tolist()[:2] == ["case_05", "case_01"]
    assert by_auv["case_id"].iloc[-1] == "case_03"  # the failed case has no AUV
    ascending = model.table("auv", descending=False)["auv"].dropna().tolist()
    assert ascending == sorted(ascending)
    assert model.table("case_id", descending=False)["case_id"].tolist() == sorted(model.case_ids)
    assert list(model.table().columns[:7]) == ["case_id", "auv", "S", "excluded", "decision", "status", "correction"]
    assert "S_liver" in model.table().columns
    with pytest.raises(KeyError, match="no column"):
        model.table("volume")


def test_the_extra_scorers_columns_are_shown_and_sortable(results_folder):
    results = pd.read_csv(results_folder / "results.csv")
    results.insert(4, "agreement", [0.2, 0.1, None, None, 0.9, 0.4, 0.3, 0.0, 0.5, 0.6])
    results.to_csv(results_folder / "results.csv", index=False)
    table = CohortModel(results_folder).table("agreement", descending=True)
    assert list(table.columns[7:9]) == ["agreement", "S_liver"]
    assert table["case_id"].tolist()[:2] == ["case_04", "case_09"]


def test_case_files_resolve_relative_paths_against_the_folder(results_folder):
    image, label = CohortModel(results_folder).case_files("case_00")
    assert image == results_folder / "example_ct_sm.nii.gz" and image.exists() and label.exists()


def test_quantile_marks_the_cases_above_the_threshold_and_keeps_manual_decisions(results_folder):
    model = CohortModel(results_folder)
    model.include("case_05", note="checked: fine")
    threshold = model.mark_quantile(0.7)
    assert threshold == pytest.approx(model.quantile_threshold(0.7)) == 0.72
    rows = model.table().set_index("case_id")
    scored = [a for a in AUVS if a is not None]  # F^-1(0.7) over these nine is 0.72
    above = {f"case_{i:02d}" for i, a in enumerate(AUVS) if a is not None and a > threshold}
    assert above == {"case_01", "case_05"} and len(scored) == 9
    assert set(rows.index[rows["excluded"]]) == above - {"case_05"}
    assert rows.loc["case_05", "decision"] == "include (manual): checked: fine"
    assert "case_03" not in model.retained()  # a failed case is not retained


def test_decisions_round_trip_through_the_core_file_and_autosave_until_saved(results_folder):
    model = CohortModel(results_folder)
    assert not model.dirty
    model.exclude("case_02", note="label shifted by one slice")
    assert model.dirty and (results_folder / AUTOSAVE_NAME).exists()
    assert not (results_folder / "exclusions.json").exists()
    model.save()
    assert not model.dirty and not (results_folder / AUTOSAVE_NAME).exists()

    reread = load_exclusions(results_folder / "exclusions.json")  # what `auv train --exclusions` reads
    assert reread.excluded() == {"case_02"}
    decision = reread.effective()["case_02"]
    assert (decision.reason, decision.note, decision.auv) == ("manual", "label shifted by one slice", 0.3)

    reopened = CohortModel(results_folder)
    reopened.include("case_02", note="second look: fine")
    reopened.save()
    assert CohortModel(results_folder).exclusions.excluded() == set()


def test_unsaved_decisions_survive_a_crash_through_the_autosave(results_folder):
    crashed = CohortModel(results_folder)
    crashed.exclude("case_07", note="motion")
    del crashed  # never saved

    reopened = CohortModel(results_folder)
    assert reopened.autosave_found and reopened.exclusions.excluded() == set()
    reopened.recover_autosave()
    assert reopened.dirty and reopened.exclusions.excluded() == {"case_07"}
    reopened.save()
    assert load_exclusions(results_folder / "exclusions.json").excluded() == {"case_07"}
    assert not CohortModel(results_folder).autosave_found


def test_saving_over_someone_elses_changes_is_refused(results_folder):
    mine, theirs = CohortModel(results_folder), CohortModel(results_folder)
    theirs.exclude("case_01", note="theirs")
    theirs.save()
    mine.exclude("case_05", note="mine")
    with pytest.raises(ConcurrentChangeError):
        mine.save()
    assert load_exclusions(results_folder / "exclusions.json").excluded() == {"case_01"}
    assert mine.dirty and (results_folder / AUTOSAVE_NAME).exists()  # my decision is not lost either


def test_export_writes_the_retained_manifest_and_splits(results_folder, tmp_path):
    model = CohortModel(results_folder)
    model.exclude("case_05")
    manifest, splits = model.export_retained(tmp_path / "export")
    retained = pd.read_csv(manifest)["case_id"].tolist()
    assert "case_05" not in retained and "case_03" not in retained and len(retained) == 8
    folds = json.loads(splits.read_text())
    assert len(folds) == 5 and sorted(case for fold in folds for case in fold["val"]) == sorted(retained)


def test_unknown_cases_and_foreign_folders_are_reported(results_folder, tmp_path):
    with pytest.raises(KeyError, match="case_99"):
        CohortModel(results_folder).exclude("case_99")
    with pytest.raises(InputError, match="empty: does not exist"):
        CohortModel(tmp_path / "empty")
    (results_folder / "exclusions.json").write_text("{not json")
    with pytest.raises(InputError, match="exclusions.json"):
        CohortModel(results_folder)


def test_selecting_a_scored_case_loads_it_with_its_real_scores(scene, scored_cohort):
    model = CohortModel(scored_cohort)
    assert set(model.case_ids) == {"ct_full", "ct_fast", "ct_shifted"}
    case = model.case_result("ct_fast")
    image, label = model.case_files("ct_fast")
    loaded = CaseLoader(scene).load(image, label, {c.label_value: c.name for c in case.classes}, "ct_fast")
    assert loaded.segmentation_node.GetSegmentation().GetNumberOfSegments() == len(case.classes)
    model.exclude("ct_fast", note="fast model labels")
    model.save()
    assert CohortModel(scored_cohort).table().set_index("case_id").loc["ct_fast", "excluded"]
    (scored_cohort / "exclusions.json").unlink()  # the session's other tests share this copy
