"""The cohort loop's overlap (issue 30 item 4): the next case read and the last one written while the model runs.

A small stand-in backend (features computed from the volume with a few numpy sums) keeps these tests to seconds;
the real model's throughput is Testing/benchmarks/cohort_throughput.py's, whose smoke run is the last test here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from auvcore.backends.base import CaseFeatures
from auvcore.cohort import CaseScorer, ScoreSettings, score_cases, score_cohort
from auvcore.cohort import loop as loop_module
from auvcore.datasets import CaseSpec
from auvcore.results.layout import ResultsFolder

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = REPO_ROOT / "Testing" / "benchmarks" / "cohort_throughput.py"


class StandInBackend:
    """Class-wise features from the volume itself: each class's rows are the slice's intensities inside the class,
    pooled on a 4 x 4 grid. Deterministic, and fast enough for a loop test. ``passes`` logs (thread, start, end) of
    each model pass; ``pause`` makes a pass last at least that long."""

    name = "stand-in"
    device = torch.device("cpu")

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.passes: list[tuple[str, float, float]] = []

    def describe(self) -> dict:
        return {"name": self.name}

    def feature_bytes(self, volume_shape, n_classes, mode) -> int:
        return n_classes * volume_shape[0] * 16 * 4

    def classwise_features(self, volume, labels, class_ids, image_key=None) -> CaseFeatures:
        start = time.perf_counter()
        depth, height, width = volume.shape
        z = np.zeros((len(class_ids), depth, 16), np.float32)
        present = np.zeros((len(class_ids), depth), bool)
        for c, class_id in enumerate(class_ids):
            inside = labels == class_id
            present[c] = inside.any(axis=(1, 2))
            masked = np.where(inside, volume, 0.0)
            cells = masked[:, : height // 4 * 4, : width // 4 * 4].reshape(depth, 4, height // 4, 4, width // 4)
            z[c] = cells.sum(axis=(2, 4)).reshape(depth, 16)
        time.sleep(self.pause)
        self.passes.append((threading.current_thread().name, start, time.perf_counter()))
        return CaseFeatures(torch.from_numpy(z), torch.from_numpy(present), {"encoder": 0.0}, depth)

    def image_features(self, volume, image_key=None) -> CaseFeatures:
        raise NotImplementedError


def _write(array: np.ndarray, path: Path) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 3.0))
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def cohort(tmp_path: Path) -> list[CaseSpec]:
    """Five small CT-like cases, each its own image and label map."""
    rng = np.random.default_rng(30)
    specs = []
    for index in range(5):
        image = rng.normal(40.0, 200.0, size=(6, 32, 32)).astype(np.int16)
        image[:, :4] = -1000  # air: detected as CT
        labels = np.zeros(image.shape, np.uint8)
        labels[1:5, 8:20, 8:20] = 1
        labels[2:6, 18:28, 4 + index: 14 + index] = 2
        specs.append(CaseSpec(f"case{index}", _write(image, tmp_path / f"img{index}.nii.gz"),
                              _write(labels, tmp_path / f"lab{index}.nii.gz"), class_names={1: "liver", 2: "spleen"}))
    return specs


def _scorer(backend: StandInBackend | None = None) -> CaseScorer:
    backend = backend or StandInBackend()
    return CaseScorer(ScoreSettings(device="cpu", runtime="torch"), backend_factory=lambda: backend)


def _run(specs, out: Path, read_ahead: bool, scorer: CaseScorer | None = None):
    lines: list[str] = []
    records = score_cases(specs, out, ScoreSettings(device="cpu", runtime="torch"), scorer or _scorer(),
                          progress=False, emit=lines.append, read_ahead=read_ahead)
    return records, lines


def _without_timings(record) -> dict:
    data = record.to_dict()
    data.pop("timings", None)
    return data


def _files(out: Path) -> dict[str, bytes]:
    """Every file of the results folder's cases, the JSON without its timings."""
    files = {}
    for path in sorted(ResultsFolder(out).cases_dir.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            if path.suffix == ".json":
                data = json.loads(content)
                data.pop("timings", None)
                content = json.dumps(data, sort_keys=True).encode()
            files[str(path.relative_to(out))] = content
    return files


def test_overlapped_and_serial_agree(cohort, tmp_path):
    serial, serial_lines = _run(cohort, tmp_path / "serial", read_ahead=False)
    overlapped, overlapped_lines = _run(cohort, tmp_path / "overlapped", read_ahead=True)
    assert [r.status for r in serial] == ["ok"] * 5
    assert [_without_timings(r) for r in overlapped] == [_without_timings(r) for r in serial]
    assert overlapped_lines == serial_lines == [f"PROGRESS case={i}/5 id=case{i - 1} status=ok" for i in range(1, 6)]
    files = _files(tmp_path / "serial")
    assert any(name.endswith(".npz") for name in files) and len([n for n in files if n.endswith(".json")]) == 5
    assert _files(tmp_path / "overlapped") == files
    # the second run finds every case in the cache, in either way, and reads none
    again, lines = _run(cohort, tmp_path / "overlapped", read_ahead=True)
    assert [r.S for r in again] == [r.S for r in serial]
    assert lines == [f"PROGRESS case={i}/5 id=case{i - 1} status=cached" for i in range(1, 6)]


def test_the_next_case_is_read_while_the_model_runs(cohort, tmp_path, monkeypatch):
    backend = StandInBackend(pause=0.2)
    scorer = _scorer(backend)
    prepared: list[tuple[str, str, float, float]] = []
    prepare = scorer.prepare

    def logged(spec):
        start = time.perf_counter()
        result = prepare(spec)
        prepared.append((spec.case_id, threading.current_thread().name, start, time.perf_counter()))
        return result

    monkeypatch.setattr(scorer, "prepare", logged)
    _run(cohort, tmp_path / "out", read_ahead=True, scorer=scorer)
    assert [case for case, *_ in prepared] == [spec.case_id for spec in cohort]
    assert all(thread.startswith("auv-read") for _, thread, _, _ in prepared)
    assert all(thread == threading.main_thread().name for thread, _, _ in backend.passes)
    # case i+1 was read while the model ran on case i (each pass lasts 0.2 s, a read of these files far less)
    for (_, model_start, model_end), (_, _, read_start, read_end) in zip(backend.passes, prepared[1:]):
        assert model_start <= read_end <= model_end + 0.1 and read_start < model_end


@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_bad_case_in_the_middle_is_recorded_and_the_rest_scored(cohort, tmp_path, read_ahead):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(Path(cohort[1].image).read_bytes()[:300])
    cohort[1] = CaseSpec("case1", corrupt, cohort[1].label, class_names=cohort[1].class_names)
    cohort[3] = CaseSpec("case3", tmp_path / "gone.nii.gz", cohort[3].label, class_names=cohort[3].class_names)
    records, lines = _run(cohort, tmp_path / "out", read_ahead=read_ahead)
    assert [r.status for r in records] == ["ok", "error", "ok", "error", "ok"]
    assert "corrupt.nii.gz" in records[1].error and "gone.nii.gz: does not exist" in records[3].error
    assert lines == [f"PROGRESS case={i}/5 id=case{i - 1} status={s}" for i, s in enumerate(["ok", "error", "ok", "error", "ok"], 1)]
    written = json.loads(ResultsFolder(tmp_path / "out").case_json("case1").read_text())
    assert written["status"] == "error" and "corrupt.nii.gz" in written["error"]


@pytest.mark.parametrize("failing", [1, 4])  # a write before the last (raised at the next write), the last write
def test_an_error_of_the_writer_is_raised(cohort, tmp_path, monkeypatch, failing):
    saved = loop_module.save_case
    writes: list[str] = []

    def save_case(folder, record, *files):
        writes.append(record.case_id)
        if record.case_id == f"case{failing}":
            raise OSError(f"disk full writing {record.case_id}")
        saved(folder, record, *files)

    monkeypatch.setattr(loop_module, "save_case", save_case)
    with pytest.raises(OSError, match=f"disk full writing case{failing}"):
        _run(cohort, tmp_path / "out", read_ahead=True)
    assert writes[-1] == f"case{failing}" or writes[-2] == f"case{failing}"
    assert not any(t.name.startswith(("auv-read", "auv-write")) for t in threading.enumerate())


def test_an_interrupt_leaves_whole_files_and_no_threads(cohort, tmp_path):
    class Interrupting(StandInBackend):
        def classwise_features(self, volume, labels, class_ids, image_key=None):
            if len(self.passes) == 2:
                raise KeyboardInterrupt
            return super().classwise_features(volume, labels, class_ids, image_key)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        _run(cohort, out, read_ahead=True, scorer=_scorer(Interrupting()))
    assert not any(t.name.startswith(("auv-read", "auv-write")) for t in threading.enumerate())
    cases = ResultsFolder(out).cases_dir
    assert sorted(p.name for p in cases.glob("*.json")) == ["case0.json", "case1.json"]  # both written, whole
    assert not [p for p in cases.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    _, lines = _run(cohort, out, read_ahead=True)
    assert [line.split("status=")[1] for line in lines] == ["cached", "cached", "ok", "ok", "ok"]


def test_score_cohort_passes_read_ahead_on(cohort, tmp_path, monkeypatch):
    seen = []
    real = loop_module.ThreadPoolExecutor
    monkeypatch.setattr(loop_module, "ThreadPoolExecutor", lambda *a, **k: seen.append(k) or real(*a, **k))
    settings = ScoreSettings(device="cpu", runtime="torch")
    serial = score_cohort(cohort, tmp_path / "serial", settings, scorer=_scorer(), progress=False, emit=lambda _: None,
                          read_ahead=False)
    assert seen == []
    overlapped = score_cohort(cohort, tmp_path / "overlapped", settings, scorer=_scorer(), progress=False,
                              emit=lambda _: None)
    assert len(seen) == 2
    assert serial.drop(columns=[c for c in serial.columns if "time" in c]).equals(
        overlapped.drop(columns=[c for c in overlapped.columns if "time" in c]))


def test_benchmark_smoke(tmp_path):
    """Testing/benchmarks/cohort_throughput.py --smoke: both arms on two small cases of the real volumes."""
    result = subprocess.run([sys.executable, str(BENCHMARK), "--smoke", "--work", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cases/min" in result.stdout and "(same records)" in result.stdout
