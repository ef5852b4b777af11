"""The review's proposal on real MRML (slicer-core) and the real probe of the sample CT (issue 28, the module's part).

``ct_shifted`` (the sample CT's organs, its liver moved three slices) scored with the label-independent probe
(the fixture ``probe_cohort``): the disagreement overlay is checked voxel for voxel against the core's
:func:`~auvcore.results.proposals.disagreement_map` through Slicer's own export, accepting a proposal against
the core's :func:`~auvcore.results.proposals.proposed_label` and ``review.json``. The panel runs on the real
logic with stand-in widgets, as in ``test_fix_step``; the cases of ``scored_cohort`` were scored without the probe.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from auvcore.results import REVIEW_JSON, ResultsFolder, label_for, load_review
from auvcore.results.proposals import LABEL_ONLY, MODEL_ONLY, disagreement_map, proposed_label
from AUVSlicerLib.correction_export import corrected_label_image
from AUVSlicerLib.logic import AUVLogic
from AUVSlicerLib.panel import AUVSlicerPanel
from AUVSlicerLib.proposal_view import OVERLAY_SEGMENTS, PROPOSAL_ATTRIBUTE
from test_fix_step import LIVER, ScriptedDialogs
from test_panel import _parameter_node, _ui

CASE = "ct_shifted"


def _overlays(scene) -> list:
    nodes = [scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
             for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]
    return [node for node in nodes if node.GetAttribute(PROPOSAL_ATTRIBUTE)]


def _overlay_voxels(scene, overlay, source) -> np.ndarray:
    """The overlay's two segments exported by Slicer onto the label's grid, at the map's values."""
    values = dict(zip(overlay.segment_ids, (LABEL_ONLY, MODEL_ONLY)))
    return sitk.GetArrayFromImage(corrected_label_image(scene, overlay.node, source, values))


def _voxels(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _queue_entry(logic, cohort, structure: str):
    queue = logic.openReview(cohort, "agreement")
    while queue.current.structure != structure:
        queue.next()
    return queue


def test_the_overlay_holds_the_disagreement_map_and_goes_with_its_structure(scene, probe_cohort):
    logic = AUVLogic()
    cohort = logic.openCohort(str(probe_cohort))
    folder = ResultsFolder(probe_cohort)
    queue = _queue_entry(logic, cohort, "liver")
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    source = logic.loadedCaseEdits().choice.source
    nodes_before = scene.GetNumberOfNodes()

    overlay = logic.showProposal(cohort, shown, "liver")

    expected = sitk.GetArrayFromImage(disagreement_map(folder, CASE, "liver"))
    assert (expected == LABEL_ONLY).any() and (expected == MODEL_ONLY).any(), "the shifted liver disagrees both ways"
    assert np.array_equal(_overlay_voxels(scene, overlay, source), expected)
    assert (overlay.label_only, overlay.model_only) == (int((expected == LABEL_ONLY).sum()), int((expected == MODEL_ONLY).sum()))
    segmentation = overlay.node.GetSegmentation()
    segments = [segmentation.GetSegment(segment_id) for segment_id in overlay.segment_ids]
    assert [segment.GetName() for segment in segments] == ["liver: label only", "liver: model only"]
    assert [tuple(segment.GetColor()) for segment in segments] == [colour for _value, _name, colour in OVERLAY_SEGMENTS]
    assert overlay.node is not shown.loaded.segmentation_node and _overlays(scene) == [overlay.node]
    assert overlay.node.GetDisplayNode().GetVisibility2D()

    # Another structure's overlay replaces it; hiding it, or loading another case, leaves no node behind.
    spleen = logic.showProposal(cohort, shown, "spleen")
    assert overlay.node.GetScene() is None and _overlays(scene) == [spleen.node]
    assert np.array_equal(_overlay_voxels(scene, spleen, source),
                          sitk.GetArrayFromImage(disagreement_map(folder, CASE, "spleen")))
    logic.hideProposal()
    assert scene.GetNumberOfNodes() == nodes_before and not _overlays(scene)
    logic.showProposal(cohort, shown, "liver")
    logic.discardEdits()  # moving on without the edits
    assert not _overlays(scene)
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    logic.showProposal(cohort, shown, "liver")
    logic.loadCohortCase(cohort, CASE)  # a case loaded (again) from the cohort table
    assert not _overlays(scene)


def test_a_case_scored_without_the_probe_has_no_overlay_and_the_error_says_which_command_makes_one(scene, scored_cohort):
    from auvcore.errors import InputError

    logic = AUVLogic()
    cohort = logic.openCohort(str(scored_cohort))
    queue = _queue_entry(logic, cohort, "liver")
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    nodes_before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match=r"ct_shifted\.json: has no disagreement map for 'liver': .*--scorers all"):
        logic.showProposal(cohort, shown, "liver")
    assert scene.GetNumberOfNodes() == nodes_before


def _review_panel(folder, score: str = "agreement") -> AUVSlicerPanel:
    """The panel on the real logic, its review of ``folder`` started and at the liver of ``ct_shifted``."""
    panel = AUVSlicerPanel(_ui(), AUVLogic(), lambda *args: None, ScriptedDialogs(), lambda *args: None)
    panel.connect()
    panel.setParameterNode(_parameter_node())
    panel.node.resultsFolder, panel.node.colorScore = str(folder), score
    panel.updateFromParameterNode()
    panel.ui.startReviewButton.emit("clicked(bool)", True)
    while (panel.review.queue.current.case_id, panel.review.queue.current.structure) != (CASE, "liver"):
        panel.shortcuts()["N"]()
    return panel


@pytest.fixture
def probe_copy(probe_cohort, tmp_path):
    """A copy of the probe's results of this test only (the session's copy is shared by the other tests)."""
    return shutil.copytree(probe_cohort, tmp_path / "scores")


def _errors(panel) -> list:
    return [entry for entry in panel.dialogs.shown if entry[0] == "error"]


def test_the_proposal_key_shows_each_structures_overlay_while_moving_on_and_hides_it(scene, probe_copy):
    panel = _review_panel(probe_copy)
    keys, label = panel.shortcuts(), panel.ui.proposalStatusLabel
    assert not _overlays(scene) and label.text.startswith("Proposal (D) shows where the label and the model disagree")
    assert panel.ui.proposalButton.enabled and panel.ui.acceptProposalButton.enabled

    panel.ui.proposalButton.emit("clicked(bool)", True)
    [liver] = _overlays(scene)
    assert liver.GetName() == "ct_shifted liver disagreement" and panel.ui.proposalButton.checked
    assert label.text.startswith("ct_shifted / liver: magenta, the label has it and the model does not (")
    keys["N"]()  # the overlay follows the structure shown
    [other] = _overlays(scene)
    assert liver.GetScene() is None and other.GetName() == f"{CASE} {panel.review.queue.current.structure} disagreement"
    keys["D"]()
    assert not _overlays(scene) and not panel.ui.proposalButton.checked and label.text.startswith("Proposal (D)")
    keys["P"]()
    assert not _overlays(scene), "hidden stays hidden"

    keys["D"]()  # shown, then the case is loaded again from the cohort table: the overlay leaves, and the panel says so
    assert _overlays(scene) and label.text.startswith("ct_shifted / ")
    panel._selectedCaseId = lambda: CASE  # the stand-in table has no selection of its own
    panel.onCohortSelectionChanged()
    assert not _overlays(scene) and not panel.ui.proposalButton.checked and label.text.startswith("Proposal (D)")
    assert not _errors(panel), panel.dialogs.shown


def test_accepting_a_proposal_writes_the_correction_and_the_fixed_verdict_marked_as_a_proposal(scene, probe_copy):
    panel = _review_panel(probe_copy)
    folder = ResultsFolder(probe_copy)
    expected = sitk.GetArrayFromImage(proposed_label(folder, CASE, ["liver"]).image)
    source = label_for(folder, CASE).path
    panel.ui.reviewNoteLineEdit.text = "the model's liver"
    asked = []
    panel.dialogs.confirm = lambda message: asked.append(message) or len(asked) > 1  # no, then yes
    panel.ui.acceptProposalButton.emit("clicked(bool)", True)  # unseen: the question says so; answered no
    assert "It is not shown: Proposal (D) shows where it differs from the label." in asked[0]
    assert not (probe_copy / "corrections").exists() and label_for(folder, CASE).path == source

    panel.shortcuts()["D"]()
    panel.ui.acceptProposalButton.emit("clicked(bool)", True)

    assert asked[1] == ("Save the model's outline of liver as the correction of ct_shifted (the verdict fixed, marked as "
                        "an accepted proposal)?")

    choice = label_for(folder, CASE)
    assert choice.corrected and choice.path == probe_copy / "corrections" / "ct_shifted.nii.gz"
    corrected = _voxels(choice.path)
    assert np.array_equal(corrected, expected)
    assert np.array_equal(corrected != _voxels(source), (corrected == LIVER) != (_voxels(source) == LIVER)), \
        "only the liver's voxels changed"
    review = load_review(probe_copy / REVIEW_JSON)
    verdict = review.get(CASE, "liver")
    assert (verdict.verdict, verdict.correction, verdict.note) == ("fixed", "corrections/ct_shifted.nii.gz", "the model's liver")
    [correction] = review.corrections[CASE]
    assert correction.proposal and correction.structures == ("liver",)
    kind, message = panel.dialogs.shown[-1]
    assert kind == "info" and message.startswith("Saved corrections/ct_shifted.nii.gz: liver +") and \
        message.endswith("verdict fixed, an accepted proposal.")
    # The panel shows the accepted label, the queue its verdict; the overlay (against the label as scored) is gone.
    edits = panel.logic.loadedCaseEdits()
    assert edits.choice.corrected and not panel.logic.hasUnsavedEdits()
    assert np.array_equal(sitk.GetArrayFromImage(edits.corrected_image()), expected)
    assert "Verdict: fixed: the model's liver" in panel.ui.reviewStructureLabel.text
    assert panel.ui.reviewNoteLineEdit.text == "the model's liver", "as any structure with a verdict is shown"
    assert not _overlays(scene) and not panel.review.proposalWanted
    assert not _errors(panel), panel.dialogs.shown


def test_edit_proposal_opens_the_fix_step_on_the_models_outline_and_save_keeps_the_edited_one(scene, probe_copy):
    panel = _review_panel(probe_copy)
    folder = ResultsFolder(probe_copy)
    expected = sitk.GetArrayFromImage(proposed_label(folder, CASE, ["liver"]).image)

    panel.ui.editProposalButton.emit("clicked(bool)", True)

    assert panel.review.fixing and panel.logic.hasUnsavedEdits()
    assert np.array_equal(sitk.GetArrayFromImage(panel.logic.loadedCaseEdits().corrected_image()), expected)
    assert panel.ui.proposalStatusLabel.text.startswith("The proposal of liver is in the segmentation (+")
    panel.shortcuts()["S"]()  # saved as the reviewer's own correction: not a proposal accepted as it was
    [correction] = load_review(probe_copy / REVIEW_JSON).corrections[CASE]
    assert not correction.proposal and correction.structures == ("liver",)
    assert np.array_equal(_voxels(probe_copy / correction.file), expected)

    # Accepting the spleen's proposal now: the question says the liver's correction is replaced (and kept).
    panel.shortcuts()["Ctrl+B"]()
    while panel.review.queue.current.structure != "spleen":
        panel.shortcuts()["N"]()
    panel.ui.acceptProposalButton.emit("clicked(bool)", True)
    kind, question = next(entry for entry in reversed(panel.dialogs.shown) if entry[0] == "confirm")
    assert "ct_shifted has a saved correction (corrections/ct_shifted.nii.gz): a proposal is made on the label as it " \
           "was scored" in question
    first, second = load_review(probe_copy / REVIEW_JSON).corrections[CASE]
    assert second.proposal and second.structures == ("spleen",) and (probe_copy / first.file).is_file()
    assert not _errors(panel), panel.dialogs.shown


def test_without_the_probe_the_panel_says_why_there_is_no_proposal_and_accepting_writes_nothing(scene, scored_cohort,
                                                                                                 tmp_path):
    folder = shutil.copytree(scored_cohort, tmp_path / "scores")
    panel = _review_panel(folder)
    panel.shortcuts()["D"]()
    assert panel.ui.proposalStatusLabel.text == (
        "No proposal for ct_shifted / liver: has no disagreement map for 'liver': score the case with the probe "
        "scorers (--scorers all)")
    assert not _overlays(scene) and not _errors(panel)
    panel.ui.acceptProposalButton.emit("clicked(bool)", True)
    [(kind, message)] = _errors(panel)
    assert message.startswith("Failed to accept the proposal.") and "--scorers all" in message
    assert not (folder / "corrections").exists() and CASE not in load_review(folder / REVIEW_JSON).corrections
