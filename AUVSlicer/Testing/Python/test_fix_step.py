"""The review's Fix step on real MRML (slicer-core) and the real scores of the sample CT (issue 27, part 3).

A real structure, the liver of ``ct_shifted``, is opened in the Segment Editor's parameter node, edited
voxel-wise in its segmentation node as the Segment Editor's Paint and Erase effects edit
(``vtkSlicerSegmentEditorLogic::ModifySegmentByLabelmap``), saved through Slicer's own export
(``vtkSlicerSegmentationsModuleLogic``) and ``auvcore.results.save_correction``, and read back through
the core (``label_for``). The panel runs on the real logic with stand-in widgets and scripted answers.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import types

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from auvcore.results import REVIEW_JSON, ResultsFolder, label_for, load_review, save_correction
from AUVSlicerLib.case_edits import label_fingerprint
from AUVSlicerLib.case_export import export_for_scoring
from AUVSlicerLib.logic import AUVLogic
from AUVSlicerLib.panel import AUVSlicerPanel
from AUVSlicerLib.segment_editor import SEGMENT_EDITOR_SINGLETON_TAG
from headless import paint_voxels
from test_panel import RecordingDialogs, _parameter_node, _ui
from test_review_session import _slice_node

LIVER = 5


@pytest.fixture
def cohort_copy(scored_cohort, tmp_path):
    """A copy of the scored cohort of this test only (the session's copy is shared by the other tests)."""
    return shutil.copytree(scored_cohort, tmp_path / "scores")


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _voxels(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _liver_edit(source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The voxels a reviewer erases (half the liver on its largest slice) and paints (a background block)."""
    liver = source == LIVER
    k = int(np.argmax(liver.sum(axis=(1, 2))))
    erased = np.zeros_like(liver)
    erased[k] = liver[k]
    erased[k, : int(np.median(np.nonzero(liver[k])[0]))] = False
    painted = np.zeros_like(liver)
    painted[2, 2:5, 2:6] = True
    assert erased.any() and (source[painted] == 0).all()
    return erased, painted


def _edit(scene, editor_node, erased, painted) -> None:
    paint_voxels(scene, editor_node, erased, add=False)
    paint_voxels(scene, editor_node, painted, add=True)


def _first_structure(cohort_copy):
    logic = AUVLogic()
    cohort = logic.openCohort(str(cohort_copy))
    queue = logic.openReview(cohort, "agreement")
    assert (queue.current.case_id, queue.current.structure) == ("ct_shifted", "liver")
    return logic, cohort, queue


def test_a_case_with_a_saved_correction_is_loaded_with_it(scene, cohort_copy, tmp_path):
    """Before issue 27 the module loaded the source label whatever the results folder held."""
    logic = AUVLogic()
    cohort = logic.openCohort(str(cohort_copy))
    _image, source = cohort.case_files("ct_full")
    fixed = _voxels(source)
    spleen = np.argwhere(fixed == 1)
    fixed[tuple(spleen[: len(spleen) // 2].T)] = 0  # the spleen's first half erased
    corrected = sitk.GetImageFromArray(fixed)
    corrected.CopyInformation(sitk.ReadImage(str(source)))
    save_correction(ResultsFolder(cohort_copy), "ct_full", corrected, source=source)
    loaded, shown = logic.loadCohortCase(cohort, "ct_full")
    assert shown is not None, "coloured by its scores as before"
    exported = export_for_scoring(scene, loaded.volume_node, loaded.segmentation_node, tmp_path / "export")
    assert np.array_equal(_voxels(exported.label), fixed)


def test_fix_opens_the_structure_in_the_segment_editors_parameter_node_at_its_worst_slice(scene, cohort_copy):
    logic, cohort, queue = _first_structure(cohort_copy)
    red, green = _slice_node(scene, "Red", "Axial"), _slice_node(scene, "Green", "Coronal")
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    for node in (red, green):  # the user scrolls away before pressing F
        node.JumpSliceByCentering(0.0, 0.0, 0.0)
    editor = logic.editInSegmentEditor(shown)
    assert editor is scene.GetSingletonNode(SEGMENT_EDITOR_SINGLETON_TAG, "vtkMRMLSegmentEditorNode")
    assert editor.GetSegmentationNode() is shown.loaded.segmentation_node
    assert editor.GetSourceVolumeNode() is shown.loaded.volume_node
    assert editor.GetSelectedSegmentID() == shown.segment_id
    assert shown.loaded.segmentation_node.GetSegmentation().GetSegment(shown.segment_id).GetName() == "liver"
    assert "worst agreement slice" in shown.where
    for node in (red, green):
        matrix = node.GetSliceToRAS()
        assert all(math.isclose(matrix.GetElement(i, 3), shown.ras[i], abs_tol=1e-6) for i in range(3))
    # A second fix reuses the module's singleton, as the Segment Editor module itself does.
    assert logic.editInSegmentEditor(shown) is editor
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentEditorNode") == 1


def test_a_structure_edited_voxel_wise_is_saved_on_its_source_grid_and_read_back_through_the_core(scene, cohort_copy):
    logic, cohort, queue = _first_structure(cohort_copy)
    folder = ResultsFolder(cohort_copy)
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    source_path = logic.loadedCaseEdits().choice.source
    source_sha = _sha256(source_path)
    source = _voxels(source_path)
    assert not logic.hasUnsavedEdits() and logic.loadedCaseEdits().choice.describe() == "the source label"
    editor = logic.editInSegmentEditor(shown)
    erased, painted = _liver_edit(source)
    _edit(scene, editor, erased, painted)
    assert logic.hasUnsavedEdits()
    nodes_before = scene.GetNumberOfNodes()

    saved = logic.saveCorrection(cohort, note="liver three slices too high: erased the top")

    assert scene.GetNumberOfNodes() == nodes_before, "the export leaves no node behind"
    assert not logic.hasUnsavedEdits()
    assert _sha256(source_path) == source_sha, "the source label is never written"
    choice = label_for(folder, "ct_shifted", source_path)
    assert choice.corrected and choice.path == cohort_copy / "corrections" / "ct_shifted.nii.gz"
    corrected = _voxels(choice.path)
    assert np.array_equal(corrected != source, erased | painted), "only the edited voxels differ"
    assert (corrected[erased] == 0).all() and (corrected[painted] == LIVER).all()
    others = set(np.unique(source).tolist()) - {0, LIVER}
    assert others == {1, 2, 6}
    for value in others:
        assert np.array_equal(corrected == value, source == value), f"label {value} changed"
    written, original = sitk.ReadImage(str(choice.path)), sitk.ReadImage(str(source_path))
    assert written.GetSize() == original.GetSize() and written.GetOrigin() == original.GetOrigin()
    assert written.GetSpacing() == original.GetSpacing() and written.GetDirection() == original.GetDirection()
    assert written.GetPixelID() == original.GetPixelID()

    [change] = saved.changes
    assert (change.structure, change.value, change.added, change.removed) == (
        "liver", LIVER, int(painted.sum()), int(erased.sum()))
    verdict = load_review(cohort_copy / REVIEW_JSON).get("ct_shifted", "liver")
    assert (verdict.verdict, verdict.correction) == ("fixed", "corrections/ct_shifted.nii.gz")
    assert verdict.note == "liver three slices too high: erased the top"

    # The module loads the label in use from now on, and says so.
    logic.discardEdits()
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    reloaded = logic.loadedCaseEdits()
    assert reloaded.choice.corrected and "corrections/ct_shifted.nii.gz" in reloaded.choice.describe()
    assert not logic.hasUnsavedEdits()
    assert np.array_equal(sitk.GetArrayFromImage(reloaded.corrected_image()), corrected)
    table = cohort.table().set_index("case_id")
    assert table.loc["ct_shifted", "correction"] == "corrections/ct_shifted.nii.gz"
    assert table.loc["ct_full", "correction"] == ""


def test_edits_are_told_from_what_was_loaded_by_content_not_by_any_change(scene, cohort_copy):
    logic, cohort, queue = _first_structure(cohort_copy)
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    segmentation = shown.loaded.segmentation_node
    editor = logic.editInSegmentEditor(shown)
    erased, painted = _liver_edit(_voxels(logic.loadedCaseEdits().choice.path))
    before = label_fingerprint(segmentation)
    logic.setUncertaintyShown(segmentation, False, "viridis")  # colours, visibility: not an edit
    segmentation.GetDisplayNode().SetSegmentOpacity2DFill(shown.segment_id, 0.3)
    assert label_fingerprint(segmentation) == before and not logic.hasUnsavedEdits()
    _edit(scene, editor, erased, painted)
    assert logic.hasUnsavedEdits()
    paint_voxels(scene, editor, painted, add=False)  # undone by hand: every voxel as loaded again
    paint_voxels(scene, editor, erased, add=True)
    loaded = _voxels(logic.loadedCaseEdits().choice.path)
    assert label_fingerprint(segmentation) != before
    now = sitk.GetArrayFromImage(logic.loadedCaseEdits().corrected_image())
    assert np.array_equal(now, loaded), f"{int((now != loaded).sum())} voxels differ from the loaded label"
    assert not logic.hasUnsavedEdits(), "the voxels are the loaded ones"
    assert logic.saveCorrection(cohort) is None and not (cohort_copy / "corrections").exists()
    paint_voxels(scene, editor, painted, add=True)
    assert logic.hasUnsavedEdits()
    logic.loadedCaseEdits().case.segmentation_node.GetSegmentation().RemoveSegment(shown.segment_id)
    assert logic.hasUnsavedEdits(), "a removed segment is an edit"


def test_a_segment_added_in_the_segment_editor_is_saved_as_the_class_it_is_named_after(scene, cohort_copy):
    logic, cohort, queue = _first_structure(cohort_copy)
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    segmentation = shown.loaded.segmentation_node
    source = _voxels(logic.loadedCaseEdits().choice.path)
    segmentation.GetSegmentation().RemoveSegment(shown.segment_id)
    segmentation.GetSegmentation().AddEmptySegment("", "unnamed structure")
    with pytest.raises(ValueError, match="'unnamed structure'.*stands for no class"):
        logic.saveCorrection(cohort)
    assert not (cohort_copy / "corrections").exists() and load_review(cohort_copy / REVIEW_JSON).counts()["fixed"] == 0
    added = segmentation.GetSegmentation().GetSegmentIdBySegmentName("unnamed structure")
    segmentation.GetSegmentation().GetSegment(added).SetName("liver")  # the liver drawn anew, here as one block
    editor = logic.editInSegmentEditor(types.SimpleNamespace(loaded=shown.loaded, segment_id=added, ras=shown.ras))
    block = np.zeros_like(source, bool)
    block[10:12, 40:50, 40:60] = True
    paint_voxels(scene, editor, block)
    saved = logic.saveCorrection(cohort)
    corrected = _voxels(cohort_copy / saved.file)
    assert np.array_equal(corrected == LIVER, block) and np.array_equal(corrected[~block & (source != LIVER)],
                                                                        source[~block & (source != LIVER)])


class ScriptedDialogs(RecordingDialogs):
    """The reviewer's answers to "save / discard / cancel", in order."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[str] = []

    def ask_save(self, message: str) -> str:
        self.shown.append(("ask_save", message))
        return self.answers.pop(0)


@pytest.fixture
def review_panel(scene, cohort_copy):
    """The panel on the real logic, its review of the scored cohort started (``ct_shifted`` / liver first)."""
    panel = AUVSlicerPanel(_ui(), AUVLogic(), lambda *args: None, ScriptedDialogs(), lambda *args: None)
    panel.connect()
    panel.setParameterNode(_parameter_node())
    panel.node.resultsFolder, panel.node.colorScore = str(cohort_copy), "agreement"
    panel.updateFromParameterNode()
    panel.ui.startReviewButton.emit("clicked(bool)", True)
    assert panel.review.queue.position == 0 and "ct_shifted / liver" in panel.ui.reviewStructureLabel.text
    return panel


def _asked(panel) -> list[str]:
    return [message for kind, message in panel.dialogs.shown if kind == "ask_save"]


def _edit_current(panel, scene):
    """Press F and erase half the current structure's largest slice, as a reviewer would in the Segment Editor."""
    panel.shortcuts()["F"]()
    assert panel.review.fixing
    editor = scene.GetSingletonNode(SEGMENT_EDITOR_SINGLETON_TAG, "vtkMRMLSegmentEditorNode")
    edits = panel.logic.loadedCaseEdits()
    erased, painted = _liver_edit(_voxels(edits.choice.path))
    _edit(scene, editor, erased, painted)
    return edits, erased | painted


def test_moving_on_with_unsaved_edits_asks_and_each_answer_does_what_it_says(review_panel, scene, cohort_copy):
    panel, keys = review_panel, review_panel.shortcuts()
    folder = cohort_copy
    edits, _changed = _edit_current(panel, scene)
    segmentation = edits.case.segmentation_node
    assert "Fixing ct_shifted / liver in the Segment Editor" in panel.ui.correctionStatusLabel.text

    panel.dialogs.answers = ["cancel"]
    keys["N"]()
    assert _asked(panel) == ["ct_shifted: the segmentation has edits that are not saved as a correction. "
                             "Save them before moving on?"]
    assert panel.review.queue.position == 0 and panel.review.fixing and panel.logic.hasUnsavedEdits()
    assert not (folder / "corrections").exists()

    panel.dialogs.answers = ["discard"]
    keys["U"]()
    assert len(_asked(panel)) == 2 and panel.review.queue.position == 1 and not panel.review.fixing
    assert not (folder / "corrections").exists() and segmentation.GetScene() is None, "the edits are gone"
    keys["P"]()  # back to the liver: read from its file again, as loaded
    assert len(_asked(panel)) == 2 and panel.review.queue.position == 0
    assert not panel.logic.hasUnsavedEdits() and panel.logic.loadedCaseEdits().case.segmentation_node is not segmentation

    _edits, changed = _edit_current(panel, scene)
    panel.dialogs.answers = ["save"]
    panel.ui.reviewNoteLineEdit.text = "top three slices erased"
    keys["2"]()  # a verdict moves on too: asks, saves, and the structure keeps the verdict the save gave it
    assert len(_asked(panel)) == 3 and panel.review.queue.position == 1
    verdict = load_review(folder / REVIEW_JSON).get("ct_shifted", "liver")
    assert (verdict.verdict, verdict.note) == ("fixed", "top three slices erased")
    corrected = label_for(ResultsFolder(folder), "ct_shifted")
    assert corrected.corrected and (_voxels(corrected.path) != _voxels(corrected.source)).sum() == changed.sum()
    assert ("info", "Nothing to save: the segmentation is as it was loaded.") not in panel.dialogs.shown

    # Closing the folder with edits: cancel keeps it open, with the edits.
    keys["P"]()
    assert "the corrected label corrections/ct_shifted.nii.gz" in panel.ui.correctionStatusLabel.text
    keys["F"]()
    paint_voxels(scene, scene.GetSingletonNode(SEGMENT_EDITOR_SINGLETON_TAG, "vtkMRMLSegmentEditorNode"),
                 _voxels(corrected.path) == LIVER, add=False)
    panel.dialogs.answers = ["cancel"]
    panel.node.resultsFolder = ""
    panel.updateFromParameterNode()
    assert panel.node.resultsFolder == str(folder) and panel.cohort is not None and panel.logic.hasUnsavedEdits()
    assert len(_asked(panel)) == 4
    assert not [entry for entry in panel.dialogs.shown if entry[0] == "error"], panel.dialogs.shown


def test_save_and_back_to_review_keep_the_queue_where_it_was(review_panel, scene, cohort_copy):
    panel, keys = review_panel, review_panel.shortcuts()
    keys["N"]()
    keys["P"]()
    position, label = panel.review.queue.position, panel.ui.reviewStructureLabel.text
    _edit_current(panel, scene)
    assert panel.ui.backToReviewButton.enabled
    keys["S"]()
    assert panel.review.fixing and panel.review.queue.position == position, "saving does not end the fix"
    assert panel.dialogs.shown[-1][0] == "info" and panel.dialogs.shown[-1][1].startswith(
        "Saved corrections/ct_shifted.nii.gz: liver +12/-")
    assert "Verdict: fixed" in panel.ui.reviewStructureLabel.text
    keys["Ctrl+B"]()
    assert not panel.review.fixing and panel.review.queue.position == position
    assert panel.ui.reviewStructureLabel.text.split(". Verdict")[0] == label.split(". Verdict")[0]
    assert not panel.ui.backToReviewButton.enabled
    assert not _asked(panel)
