"""What the module's dashboard self-test does, headless: the panel on the real logic and the shipped precomputed cohort.

Inside Slicer ``AUVSlicerTest.test_ReviewPrecomputedCohort`` runs this flow on the real widget; here the
widgets are stand-ins (``test_panel``), the scene, the logic, the colours, the queue and ``review.json`` are real.
"""

from __future__ import annotations

import shutil
import time

import slicer
from auvcore.results import REVIEW_JSON, load_review
from AUVSlicerLib.logic import AUVLogic
from AUVSlicerLib.panel import AUVSlicerPanel
from AUVSlicerLib.uncertainty_colors import UncertaintyColoring
from selftest_cohort import SELFTEST_FOLDER
from test_panel import RecordingDialogs, _parameter_node, _ui


def test_the_self_test_flow_runs_on_the_shipped_cohort_in_well_under_a_minute(scene, tmp_path):
    started = time.monotonic()
    folder = tmp_path / "cohort"
    shutil.copytree(SELFTEST_FOLDER, folder)
    tables = {}
    panel = AUVSlicerPanel(_ui(), AUVLogic(), lambda *args: None, RecordingDialogs(),
                           lambda table, content, selected: tables.__setitem__(table.name, content))
    panel.connect()
    panel.setParameterNode(_parameter_node())
    panel.node.resultsFolder = str(folder)
    panel.updateFromParameterNode()
    assert panel.cohort is not None and len(tables["cohortTableWidget"].rows) == 3

    panel.node.colorScore = "agreement"
    panel.ui.startReviewButton.emit("clicked(bool)", True)
    queue = panel.review.queue
    assert (queue.current.case_id, queue.current.structure) == ("ct_shifted", "liver")
    assert len(tables["reviewQueueTableWidget"].rows) == len(queue.entries) == 12
    segmentation = panel.node.inputSegmentation
    assert UncertaintyColoring.is_showing_uncertainty(segmentation)
    legend = slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(segmentation.GetDisplayNode())
    assert "robust z" in legend.GetTitleText()

    panel.shortcuts()["2"]()
    panel.shortcuts()["1"]()
    assert load_review(folder / REVIEW_JSON).counts() == {"correct": 1, "needs_fix": 1, "unsure": 0, "fixed": 0}
    assert panel.ui.reviewProgressLabel.text == "reviewed 2 of 12"
    assert not [entry for entry in panel.dialogs.shown if entry[0] == "error"], panel.dialogs.shown
    assert time.monotonic() - started < 60

