"""The results package: layout, case records, progress lines, the table and the reference, on their own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from auvcore.errors import InputError
from auvcore.results import (
    CaseProgress,
    CaseRecord,
    ClassRecord,
    EpochProgress,
    ResultsFolder,
    ScorerValues,
    format_case_progress,
    format_epoch_progress,
    load_reference,
    parse_progress_line,
    read_case_record,
    read_results,
    results_table,
    save_reference,
    write_case_record,
    write_results,
)
from auvcore.scales import CohortReference, ScoreScale


def test_find_takes_the_folder_or_its_results_csv_and_names_anything_else(tmp_path: Path):
    assert ResultsFolder.find(tmp_path / "results.csv").root == tmp_path  # before `auv merge` writes it
    (tmp_path / "results.csv").write_text("case_id,auv\n")
    assert ResultsFolder.find(tmp_path).root == tmp_path
    assert ResultsFolder.find(tmp_path / "results.csv").root == tmp_path
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt: is not a results folder"):
        ResultsFolder.find(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="missing: does not exist"):
        ResultsFolder.find(tmp_path / "missing")
    with pytest.raises(InputError, match="does not exist"):
        ResultsFolder.find(tmp_path / "missing" / "results.csv")


def _record() -> CaseRecord:
    return CaseRecord(
        case_id="a b", image="/d/a.nii.gz", label="/d/a_seg.nii.gz", auv=0.5, S=0.9,
        classes=(ClassRecord(1, "liver", 0.9, 12), ClassRecord(2, "spleen", None, 1, "fewer than 2 slices hold the class")),
        absent_classes=(), modality="ct", backbone="litemedsam", mode="classwise",
        scores={"agreement": ScorerValues({"liver": 0.1, "spleen": None}, {"liver": [0.1, None]})},
        slice_centres_lps=[[0.0, 0.0, 1.5], [0.0, 0.0, 3.0]], case_scores={"agreement": 1.0},
        extra={"written_by_a_newer_auvcore": {"kept": True}},
    )


def test_case_record_round_trips_through_its_file_and_keeps_unknown_keys(tmp_path: Path):
    record = _record()
    path = ResultsFolder(tmp_path).case_json(record.case_id)
    write_case_record(path, record)
    assert path.name == "a_b.json"
    again = read_case_record(path)
    assert again == record and again.extra == record.extra
    assert again.classes[1].U is None and again.classes[0].U == pytest.approx(0.1)
    assert again.class_values("auv") == {"liver": 0.9} and again.class_values("agreement") == {"liver": 0.1}
    assert json.loads(path.read_text())["schema"] == 1


@pytest.mark.parametrize("content, problem", [
    ("{", "cannot be read as JSON"),
    ('{"classes": []}', "needs case_id"),
    ('{"case_id": "a", "classes": [{"name": "liver"}]}', "missing or malformed"),
    ('{"case_id": "a", "schema": 99, "classes": []}', "schema 99"),
])
def test_a_bad_case_file_is_an_error_naming_it(tmp_path: Path, content: str, problem: str):
    path = tmp_path / "case.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as error:
        read_case_record(path)
    assert str(path) in str(error.value)


def test_a_class_without_s_always_says_why():
    assert ClassRecord.from_dict({"id": 3, "name": "aorta", "S": None}).missing_reason == "no score reported"


def test_progress_lines_written_are_the_lines_parsed():
    assert parse_progress_line(format_case_progress(2, 9, "case 7", "ok")) == CaseProgress(2, 9, "case_7", "ok")
    epoch = parse_progress_line(format_epoch_progress(3, 10, 5, 20, 0.25, None, "stopped"))
    assert isinstance(epoch, EpochProgress) and (epoch.epoch, epoch.epochs, epoch.step) == (3, 10, "5/20")
    assert epoch.loss == 0.25 and math.isnan(epoch.dice)


def test_results_table_is_written_atomically_and_read_back(tmp_path: Path):
    write_results(results_table([_record()]), tmp_path)
    table = read_results(tmp_path / "results.csv")
    assert list(table.columns) == ["case_id", "auv", "S", "S_liver", "S_spleen", "agreement", "status", "error", "backbone",
                                   "mode", "image", "label"]
    assert table.loc[0, "case_id"] == "a b" and math.isnan(table.loc[0, "S_spleen"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.parquet"]  # no temporary left behind


def test_reference_saved_is_the_reference_loaded_and_checked(tmp_path: Path):
    scale = ScoreScale("mean", False, {"liver": (0.5, 0.1)}, 0.0, 2.0)
    save_reference(tmp_path / "reference.json", CohortReference(1.0, 3.0, 4), "litemedsam", "classwise",
                   {"modality": "auto", "scorers": ["auv", "agreement"], "weights": "abc"}, "mean", {"agreement": scale})
    saved = load_reference(tmp_path)
    assert saved.scale == CohortReference(1.0, 3.0, 4) and saved.aggregate == "mean" and saved.scales["agreement"] == scale
    saved.check_compatible("litemedsam", "classwise", {"modality": "auto", "scorers": ["auv"], "weights": "abc"})  # scorers may differ
    with pytest.raises(InputError, match="setting weights='other'"):
        saved.check_compatible("litemedsam", "classwise", {"modality": "auto", "weights": "other"})


HOLD = """
import sys
from auvcore.results import ResultsFolder
shard = tuple(int(v) for v in sys.argv[2].split("/")) if sys.argv[2] != "-" else None
with ResultsFolder(sys.argv[1]).writer_lock(command=f"holder {sys.argv[2]}", shard=shard):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_shard_and_a_whole_folder_writer_exclude_each_other_and_name_the_holder(tmp_path: Path):
    import subprocess
    import sys

    from auvcore.results import FolderBusyError, held_by

    for holding, asking, named in [("0/2", None, "holder 0/2"), ("-", (1, 2), "holder -")]:
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), holding], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(FolderBusyError, match=rf"pid {holder.pid} \({named}\)"):
                with ResultsFolder(tmp_path).writer_lock(timeout=0, shard=asking):
                    pass
            if holding != "-":
                with ResultsFolder(tmp_path).writer_lock(timeout=0, shard=(1, 2)):
                    pass  # another shard writes beside it
        finally:
            holder.communicate("go\n", timeout=60)
        assert held_by(tmp_path) is None and held_by(tmp_path, (0, 2)) is None
