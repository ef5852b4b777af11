"""The workstation's session and scene on Slicer's real MRML (slicer-core, through trame-slicer's SlicerApp), no browser.

The small real cohort scored with ``--scorers all``: a label stored in another voxel order comes back on its own
grid, unsaved edits stop a move to another case, another reviewer's correction is not overwritten unasked, and a
read-only session writes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from auvcore.cli import main
from auvcore.imaging import read_image
from auvcore.results import LabelChoice, ResultsFolder, load_review, read_case_record
from auvcore.workstation.session import CorrectionChanged, ReadOnlyError, ReviewSession, UnsavedEdits

SCORE = "agreement"


class StillViews:
    """Views that show nothing: the session's scene and files are what these tests look at."""

    def __init__(self) -> None:
        self.looked_at: list[tuple[float, float, float]] = []

    def show_case(self, volume_node, segmentation_node) -> None:
        pass

    def look_at(self, ras) -> None:
        self.looked_at.append(ras)


@pytest.fixture(scope="module")
def slicer_app():
    from trame_slicer.core import SlicerApp

    return SlicerApp()


def _session(slicer_app, folder: ResultsFolder, read_only: bool = False) -> ReviewSession:
    from auvcore.workstation.scene import CaseScene

    return ReviewSession(folder, CaseScene(slicer_app.scene), StillViews(), SCORE, read_only)


def _copy(scored_all: Path, tmp_path: Path, name: str = "results") -> ResultsFolder:
    shutil.copytree(scored_all, tmp_path / name)
    return ResultsFolder(tmp_path / name)


def _erase_half(session: ReviewSession) -> None:
    """Erase the first half (along the slices) of the structure under review, as an eraser would."""
    import slicer
    from vtkmodules.util import numpy_support

    loaded = session.scene.loaded
    segment_id = loaded.segments[session.current.structure]
    labelmap = slicer.vtkOrientedImageData()
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(loaded.segmentation, segment_id,
                                                                                     labelmap)
    extent = labelmap.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    voxels = numpy_support.vtk_to_numpy(labelmap.GetPointData().GetScalars()).reshape(shape)
    value = loaded.segmentation.GetSegmentation().GetSegment(segment_id).GetLabelValue()
    inside = voxels == value  # the label map's layer may hold other segments at their own values
    inside[: shape[0] // 2] = False
    voxels[...] = inside
    labelmap.Modified()
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        labelmap, loaded.segmentation, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


def test_a_label_stored_in_another_voxel_order_comes_back_on_its_own_grid(scored_all: Path, tmp_path: Path, slicer_app):
    from auvcore.workstation.scene import CaseScene

    folder = ResultsFolder(scored_all)
    record = read_case_record(folder.case_json("ct_fast"))
    source = read_image(folder.recorded_path(record.label))
    # The same voxels stored right to left (as TotalSegmentator stores a DICOM series' label): x flipped, the
    # direction's first column negated and the origin at the other end, so every voxel keeps its place.
    values = sitk.GetArrayFromImage(source)[:, :, ::-1].copy()
    flipped = sitk.GetImageFromArray(values)
    direction = np.asarray(source.GetDirection()).reshape(3, 3)
    flipped.SetOrigin(source.TransformIndexToPhysicalPoint((source.GetWidth() - 1, 0, 0)))
    flipped.SetDirection((direction * [-1, 1, 1]).ravel().tolist())
    flipped.SetSpacing(source.GetSpacing())
    path = tmp_path / "flipped.nii.gz"
    sitk.WriteImage(flipped, str(path))

    scene = CaseScene(slicer_app.scene)
    scene.load("ct_fast", read_image(folder.recorded_path(record.image)), read_image(path),
               LabelChoice("ct_fast", path, None, path), {c.id: c.name for c in record.classes})
    exported = scene.edited_label()
    assert not scene.has_edits()
    assert np.array_equal(sitk.GetArrayFromImage(exported), values)
    assert exported.GetDirection() == flipped.GetDirection() and exported.GetOrigin() == flipped.GetOrigin()
    assert sitk.GetArrayViewFromImage(exported).dtype == values.dtype
    scene.unload()


def test_unsaved_edits_stop_a_move_to_another_case_and_a_later_correction_of_another_reviewer_is_kept(
        scored_all: Path, tmp_path: Path, slicer_app):
    folder = _copy(scored_all, tmp_path)
    ana, ben = _session(slicer_app, folder), _session(slicer_app, folder)
    shown = ana.show()
    ben.show()
    entries = ana.queue.entries
    other_case = next(i for i, e in enumerate(entries) if e.case_id != shown.entry.case_id)
    same_case = next((i for i, e in enumerate(entries) if i and e.case_id == shown.entry.case_id), None)

    _erase_half(ana)
    assert ana.scene.has_edits()
    if same_case is not None:  # the edits stay in the scene: moving within the case is free
        ana.go_to(same_case)
        ana.go_to(0)
    with pytest.raises(UnsavedEdits, match=shown.entry.case_id):
        ana.go_to(other_case)
    saved = ana.save_correction("first half erased")
    assert [c.structure for c in saved.changes] == [shown.entry.structure] and saved.changes[0].removed > 0
    assert not ana.scene.has_edits() and "corrections/" in ana.show().label
    assert ana.go_to(other_case).entry == entries[other_case]

    _erase_half(ben)  # Ben opened the case before Ana saved
    with pytest.raises(CorrectionChanged, match="after you opened the case"):
        ben.save_correction()
    ben.save_correction(force=True)
    history = load_review(folder.review).corrections[shown.entry.case_id]
    assert len(history) == 2 and all((folder.root / c.file).is_file() for c in history)
    for session in (ana, ben):
        session.scene.unload()
        session.close()


def test_a_read_only_session_refuses_to_write(scored_all: Path, tmp_path: Path, slicer_app):
    folder = _copy(scored_all, tmp_path)
    session = _session(slicer_app, folder, read_only=True)
    session.show()
    with pytest.raises(ReadOnlyError, match="read-only"):
        session.record("needs_fix", "no")
    _erase_half(session)
    with pytest.raises(ReadOnlyError, match="read-only"):
        session.save_correction()
    assert not folder.review.exists() and not folder.corrections_dir.exists()
    session.scene.unload()
    session.close()


def test_auv_review_refuses_a_folder_that_holds_no_results(tmp_path: Path, capsys):
    assert main(["review", str(tmp_path)]) == 2
    assert "is not a results folder of `auv score`" in capsys.readouterr().err
