"""Atomic writes (auvcore.files) and the writers built on them: a reader sees the old file or the new one, never part of one."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from auvcore.duo.checkpoint import load_checkpoint, save_checkpoint
from auvcore.errors import InputError
from auvcore.files import atomic_write_bytes, atomic_writer, write_json_atomic
from auvcore.imaging import write_image_atomic


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(OSError, match="disk full"):
        with atomic_writer(target) as temporary:
            temporary.write_text("half of the new")
            raise OSError("disk full")
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["table.csv"]


def test_an_interrupt_mid_write_also_cleans_up(tmp_path):
    target = tmp_path / "case.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_writer(target) as temporary:
            temporary.write_text("{")
            raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_readers_never_see_a_partial_file(tmp_path):
    """A reader polling the file while it is rewritten finds one whole version every time."""
    target = tmp_path / "big.bin"
    versions = [bytes([value]) * (1 << 20) for value in (1, 2)]
    atomic_write_bytes(target, versions[0])
    seen: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(target.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(30):
            atomic_write_bytes(target, versions[i % 2])
    finally:
        done.set()
        reader.join()
    assert seen and all(content in versions for content in seen)
    assert _names(tmp_path) == ["big.bin"]


def test_permissions_of_the_old_file_are_kept_and_a_new_file_gets_the_umask(tmp_path):
    fresh = tmp_path / "new.json"
    write_json_atomic(fresh, {"a": 1})
    assert stat.S_IMODE(fresh.stat().st_mode) == _umask_mode()  # not mkstemp's private 0600
    shared = tmp_path / "shared.json"
    shared.write_text("{}")
    shared.chmod(0o640)
    write_json_atomic(shared, {"a": 2})
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    assert json.loads(shared.read_text()) == {"a": 2}


def test_json_that_cannot_be_written_leaves_the_old_file(tmp_path):
    target = tmp_path / "reference.json"
    write_json_atomic(target, {"mean": 1.0})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"mean": float("nan")})
    assert json.loads(target.read_text()) == {"mean": 1.0}
    assert _names(tmp_path) == ["reference.json"]


def test_a_missing_folder_is_created(tmp_path):
    target = tmp_path / "cases" / "case_001.json"
    write_json_atomic(target, {"case_id": "case_001"})
    assert json.loads(target.read_text()) == {"case_id": "case_001"}


def test_a_checkpoint_that_fails_to_pickle_mid_write_keeps_the_previous_one(tmp_path):
    """torch.save writes the tensors it reached before it meets an object it cannot save."""
    path = tmp_path / "checkpoint_latest.pt"
    save_checkpoint({"epoch": 1, "model": {"w": torch.ones(3)}, "plan": {}}, path)
    with pytest.raises(Exception):
        save_checkpoint({"epoch": 2, "model": {"w": torch.zeros(1 << 16)}, "plan": {}, "broken": lambda: None}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert _names(tmp_path) == ["checkpoint_latest.pt"]


def test_write_image_atomic_replaces_whole_and_names_the_file_it_cannot_write(tmp_path):
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    target = tmp_path / "label.nii.gz"
    write_image_atomic(image, target)
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(target))).tolist() == np.arange(24).reshape(2, 3, 4).tolist()
    assert stat.S_IMODE(target.stat().st_mode) == _umask_mode()
    unknown = tmp_path / "label.unknownformat"
    unknown.write_bytes(b"old")
    with pytest.raises(InputError, match="label.unknownformat"):
        write_image_atomic(image, unknown)
    assert unknown.read_bytes() == b"old"
    assert _names(tmp_path) == ["label.nii.gz", "label.unknownformat"]
