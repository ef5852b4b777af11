"""The cohort stage on its own: records in, case scores, reference.json and the results table out (no model)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from auvcore.cohort import ScoreSettings, normalise_cohort, place_on_reference
from auvcore.results import (
    CaseRecord,
    ClassRecord,
    ResultsFolder,
    ScorerValues,
    load_reference,
    read_case_record,
    read_structures,
    write_case_record,
)

SETTINGS = ScoreSettings(scorers=("auv", "agreement"), aggregate="paper")


def _case(case_id: str, liver: float, spleen: float, agreement: float) -> CaseRecord:
    return CaseRecord(case_id, f"{case_id}.nii.gz", f"{case_id}_seg.nii.gz", S=liver + spleen,
                      classes=(ClassRecord(1, "liver", liver, 10), ClassRecord(2, "spleen", spleen, 6)),
                      backbone="litemedsam", mode="classwise", settings=SETTINGS.key_dict(),
                      scores={"agreement": ScorerValues({"liver": agreement, "spleen": agreement})})


def _failed(case_id: str) -> CaseRecord:
    return CaseRecord(case_id, f"{case_id}.nii.gz", None, status="error", error=f"{case_id}.nii.gz: truncated file",
                      backbone="litemedsam", mode="classwise", settings=SETTINGS.key_dict())


def _write(folder: ResultsFolder, records: list[CaseRecord]) -> None:
    for record in records:
        write_case_record(folder.case_json(record.case_id), record)


@pytest.fixture
def cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ResultsFolder, list[CaseRecord]]:
    monkeypatch.setattr("auvcore.cohort.stage.scoring_identity", lambda settings: {**settings.key_dict(), "weights": "w"})
    records = [_case("a", 0.5, 0.5, 0.1), _case("b", 0.25, 0.25, 0.2), _case("c", 0.125, 0.125, 0.4), _failed("d")]
    folder = ResultsFolder(tmp_path)
    _write(folder, records)
    return folder, records


def test_normalise_scores_over_the_cohort_and_saves_its_scales(cohort):
    folder, records = cohort
    table = normalise_cohort(records, folder.root, SETTINGS).set_index("case_id")
    # a_i = -log S_i: log 1 = 0, -log 0.5, -log 0.25 -> AUV 0, 0.5, 1; the failed case has none.
    assert table["auv"].round(6).tolist()[:3] == [0.0, 0.5, 1.0] and math.isnan(table.loc["d", "auv"])
    assert table["agreement"].round(6).tolist()[:3] == [0.0, pytest.approx(1 / 3), 1.0]
    saved = load_reference(folder.reference)
    assert saved.scale.n_cases == 3 and set(saved.scales) == {"agreement"} and saved.settings["weights"] == "w"
    assert read_case_record(folder.case_json("b")).auv == pytest.approx(0.5)
    assert read_case_record(folder.case_json("d")).status == "error"


def test_a_new_case_is_placed_on_the_saved_scales_without_changing_them(cohort):
    folder, records = cohort
    normalise_cohort(records, folder.root, SETTINGS)
    saved = load_reference(folder.reference)
    newcomer = [_case("e", 0.25, 0.125, 0.3)]
    elsewhere = ResultsFolder(folder.root / "placed")
    _write(elsewhere, newcomer)
    table = place_on_reference(newcomer, elsewhere.root, SETTINGS, saved)
    # -log 0.375 = 0.98 on the cohort's range [0, 1.386]: AUV 0.708; agreement 0.3 between 0.1 and 0.4.
    assert table.loc[0, "auv"] == pytest.approx(-math.log(0.375) / -math.log(0.25))
    assert table.loc[0, "agreement"] == pytest.approx(2 / 3)
    assert not elsewhere.reference.exists()  # placing saves no scale of its own


def test_a_case_file_is_rewritten_only_when_its_scores_change(cohort):
    folder, records = cohort
    normalise_cohort(records, folder.root, SETTINGS)
    scored = [read_case_record(folder.case_json(r.case_id)) for r in records]
    stamp = os.stat(folder.case_json("a")).st_mtime_ns
    os.utime(folder.case_json("a"), ns=(stamp - 10**9, stamp - 10**9))
    normalise_cohort(scored, folder.root, SETTINGS)
    assert os.stat(folder.case_json("a")).st_mtime_ns == stamp - 10**9


def test_the_cohort_scorers_are_not_placed_on_a_reference(cohort):
    folder, records = cohort
    settings = ScoreSettings(scorers=("auv", "agreement", "prototype"), aggregate="mean")
    normalise_cohort(records, folder.root, settings)
    table = place_on_reference(records[:1], folder.root / "placed", settings, load_reference(folder.reference))
    assert np.isnan(table.loc[0, "prototype"]) and np.isfinite(table.loc[0, "auv"])


def test_structures_csv_holds_every_scored_structure_with_its_z_within_its_class(cohort):
    folder, records = cohort
    normalise_cohort(records, folder.root, SETTINGS)
    table = read_structures(folder.root)
    assert len(table) == 6  # 3 scored cases x 2 classes; the failed case has none
    assert list(table.columns[:12]) == ["case_id", "class_id", "class", "modality", "judged_against", "modality_cases", "slices",
                                       "voxels", "auv", "auv_z", "agreement", "agreement_z"]
    assert set(table["judged_against"]) == {"modality"} and set(table["modality_cases"]) == {3}
    liver = table[table["class"] == "liver"].set_index("case_id")
    # agreement 0.1, 0.2, 0.4: median 0.2, spread 1.4826 * MAD 0.1; auv uses -log S: log 2 apart, median -log 0.25.
    assert liver["agreement_z"].tolist() == pytest.approx([-0.1 / 0.14826, 0.0, 0.2 / 0.14826])
    assert liver["auv_z"].tolist() == pytest.approx([-1 / 1.4826, 0.0, 1 / 1.4826])
    assert liver["slices"].tolist() == [10, 10, 10]


def test_structures_placed_on_a_reference_use_its_class_statistics(cohort):
    folder, records = cohort
    settings = ScoreSettings(scorers=("auv", "agreement"), aggregate="mean")
    normalise_cohort(records, folder.root, settings)
    fitted = read_structures(folder.root).set_index(["case_id", "class"])
    placed = ResultsFolder(folder.root / "placed")
    place_on_reference(records[:1], placed.root, settings, load_reference(folder.reference))
    again = read_structures(placed.root).set_index(["case_id", "class"])
    assert again.loc[("a", "liver"), "agreement_z"] == pytest.approx(fitted.loc[("a", "liver"), "agreement_z"])


def test_a_mixed_cohort_judges_each_structure_against_its_own_modality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Four CT and three MR cases whose agreement sits on different levels: no MR case is suspect for being MR,
    the one odd CT liver still is, and a new MR case is placed on the saved MR statistics."""
    monkeypatch.setattr("auvcore.cohort.stage.scoring_identity", lambda settings: {**settings.key_dict(), "weights": "w"})
    settings = ScoreSettings(scorers=("auv", "agreement"), aggregate="calibrated")

    def case(case_id: str, modality: str, agreement: float) -> CaseRecord:
        return _case(case_id, 0.25, 0.25, agreement).updated(modality=modality)

    records = [case("ct1", "ct", 0.10), case("ct2", "ct", 0.11), case("ct3", "ct", 0.12), case("ct4", "ct", 0.13),
               case("ct_odd", "ct", 0.30), case("mr1", "mr", 0.50), case("mr2", "mr", 0.52), case("mr3", "mr", 0.54)]
    folder = ResultsFolder(tmp_path)
    _write(folder, records)
    table = normalise_cohort(records, folder.root, settings).set_index("case_id")
    assert table["agreement"].idxmax() == "ct_odd"
    assert table.loc[["mr1", "mr2", "mr3"], "agreement"].max() < table.loc["ct_odd", "agreement"]
    z = read_structures(folder.root).set_index(["case_id", "class"])["agreement_z"]
    assert z[("mr2", "liver")] == pytest.approx(0.0)  # the median MR case, not 0.5 - 0.12 above the cohort's median
    assert z[("ct_odd", "liver")] > 5

    saved = load_reference(folder.reference)
    assert set(saved.scales["agreement"].modality_stats) == {"ct", "mr"}
    newcomer = [case("mr_new", "mr", 0.52)]
    placed = ResultsFolder(folder.root / "placed")
    _write(placed, newcomer)
    place_on_reference(newcomer, placed.root, settings, saved)
    assert read_structures(placed.root).set_index("class").loc["liver", "agreement_z"] == pytest.approx(0.0)
    assert read_structures(placed.root).set_index("class").loc["liver", "judged_against"] == "modality"  # 3 MR cases saved
