"""The Fix step of the module in Slicer's hands (issue 27): ``AUVSlicer.py`` on Slicer's own Python of v5.10.0 and
v5.12.3, on real MRML, with the Segment Editor module played as ``SegmentEditor.py`` and ``qMRMLSegmentEditorWidget``
do (``module_host``): the keys pressed are the main window's shortcuts, the edits go through the real
``vtkSlicerSegmentEditorLogic``, the save through Slicer's export and the core.
"""

from __future__ import annotations

import io
import math
import shutil
import unittest

import numpy as np
import pytest
import slicer
from auvcore.results import REVIEW_JSON, ResultsFolder, label_for, load_review
from headless import paint_voxels
from module_host import SEGMENT_EDITOR, SEGMENT_EDITOR_KEYS
from PyQt5.QtWidgets import QMessageBox
from selftest_cohort import SELFTEST_FOLDER
from slicer_python import MISSING_REASON, available_tags
from test_fix_step import _liver_edit, _voxels
from test_module_widget import make_host, python  # noqa: F401 (the fixtures: each tag's Slicer Python, the host)
from test_review_session import _slice_node

pytestmark = pytest.mark.skipif(not available_tags(), reason=MISSING_REASON)


@pytest.fixture
def reviewing(make_host, tmp_path):  # noqa: F811 (the fixture imported above)
    """The module shown, the shipped self-test cohort open, its review by ``agreement`` started, a Red slice view."""
    folder = shutil.copytree(SELFTEST_FOLDER, tmp_path / "cohort")
    host = make_host()
    widget = host.select()
    red = _slice_node(slicer.mrmlScene, "Red", "Axial")
    widget._parameterNode.resultsFolder = str(folder)
    widget._parameterNode.colorScore = "agreement"
    widget.ui.startReviewButton.emit("clicked(bool)", True)
    assert not widget.ui.startReviewButton.uncaught and not host.uncaught
    queue = widget.panel.review.queue
    assert (queue.current.case_id, queue.current.structure) == ("ct_shifted", "liver")
    return host, widget, folder, red


def _live(host, key: str) -> list:
    return host.main_window.live_shortcuts(key)


def test_fix_save_and_back_to_review_with_the_keys_a_reviewer_can_reach(reviewing):
    host, widget, folder, red = reviewing
    review = widget.panel.review
    red.JumpSliceByCentering(0.0, 0.0, 0.0)

    assert host.main_window.press("F")
    assert host.shown == SEGMENT_EDITOR and not widget.parent.isEntered
    editor, shown = host.segment_editor.editor, review.shown
    assert editor.segmentationNodeID() == shown.loaded.segmentation_node.GetID()
    assert editor.sourceVolumeNodeID() == shown.loaded.volume_node.GetID()
    assert editor.selected_segment == shown.segment_id
    assert all(math.isclose(red.GetSliceToRAS().GetElement(i, 3), shown.ras[i], abs_tol=1e-6) for i in range(3))
    # In the Segment Editor: its keys work (ours for verdicts and moves are off), and Save and Back stay ours.
    for key in SEGMENT_EDITOR_KEYS:
        assert _live(host, key) and _live(host, key)[0] in editor.keyboard_shortcuts, key
    assert not _live(host, "N") and not _live(host, "F")
    assert [_live(host, key)[0] in widget.fixShortcuts for key in ("S", "Ctrl+B")] == [True, True]
    button = widget.backToReviewButton
    assert button.visible and button in host.main_window.statusBar().permanent

    source = _voxels(label_for(ResultsFolder(folder), "ct_shifted").path)
    erased, painted = _liver_edit(source)
    paint_voxels(slicer.mrmlScene, editor.logic.GetSegmentEditorNode(), erased, add=False)
    paint_voxels(slicer.mrmlScene, editor.logic.GetSegmentEditorNode(), painted, add=True)
    assert host.main_window.press("S")
    assert host.shown == SEGMENT_EDITOR, "saving does not leave the Segment Editor"
    assert host.main_window.statusBar().message.startswith("Saved corrections/ct_shifted.nii.gz: liver +12/-")
    corrected = label_for(ResultsFolder(folder), "ct_shifted")
    assert corrected.corrected and np.array_equal(_voxels(corrected.path) != source, erased | painted)
    assert load_review(folder / REVIEW_JSON).get("ct_shifted", "liver").verdict == "fixed"

    button.emit("clicked(bool)", True)  # the status bar's Back to review (Ctrl+B does the same)
    assert host.shown == "AUVSlicer" and widget.parent.isEntered and review.queue.position == 0
    assert not button.visible and not review.fixing and not host.uncaught
    assert len(_live(host, "1")) == 1 and _live(host, "1")[0] in widget.shortcuts, "the editor's keys are gone"
    assert "Verdict: fixed" in widget.ui.reviewStructureLabel.text
    assert "the corrected label corrections/ct_shifted.nii.gz" in widget.ui.correctionStatusLabel.text
    table = host.tables["cohortTableWidget"]
    corrections = {row[0]: row[table.columns.index("correction")] for row in table.rows}
    assert corrections == {"ct_shifted": "corrections/ct_shifted.nii.gz", "ct_full": "", "ct_fast": ""}


def test_moving_on_with_unsaved_edits_asks_in_a_message_box_and_cancel_stays(reviewing):
    host, widget, folder, _red = reviewing
    assert host.main_window.press("F")
    editor = host.segment_editor.editor
    erased, _painted = _liver_edit(_voxels(label_for(ResultsFolder(folder), "ct_shifted").path))
    paint_voxels(slicer.mrmlScene, editor.logic.GetSegmentEditorNode(), erased, add=False)
    assert host.main_window.press("Ctrl+B") and host.shown == "AUVSlicer"
    host.answers = [QMessageBox.Cancel]
    assert host.main_window.press("N")
    assert host.questions == [("Unsaved changes", "ct_shifted: the segmentation has edits that are not saved as a "
                                                  "correction. Save them before moving on?")]
    assert widget.panel.review.queue.position == 0 and widget.panel.logic.hasUnsavedEdits()
    host.answers = [QMessageBox.Discard]
    assert host.main_window.press("N")
    assert widget.panel.review.queue.position == 1 and not widget.panel.logic.hasUnsavedEdits()
    assert not (folder / "corrections").exists() and not host.uncaught


def test_the_dashboard_self_test_runs_fix_and_back_where_the_core_is_installed(make_host):  # noqa: F811
    """``AUVSlicerTest.test_ReviewPrecomputedCohort`` as Slicer's dashboard runs it, with AUVCore installed."""
    host = make_host()
    suite = unittest.TestLoader().loadTestsFromName("AUVSlicer.AUVSlicerTest.test_ReviewPrecomputedCohort")
    result = unittest.TextTestRunner(verbosity=0, stream=io.StringIO()).run(suite)
    assert result.wasSuccessful() and not result.skipped, [text for _, text in result.errors + result.failures]
    assert host.shown == "AUVSlicer" and not host.uncaught
