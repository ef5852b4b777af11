"""A scripted review session on real scores: the queue's order, three verdicts, a crash mid-write, ``auv report``.

The cohort is the sample CT's organs scored by the real ``auv score``
(LiteMedSAM): TotalSegmentator's full and fast labels, and the full labels
with the liver moved by three slices (``ct_shifted``), an annotation error the
queue should put first under the per-slice ``agreement`` score.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys

from auvcore.results import REVIEW_JSON, load_review
from auvcore.review.queue_table import review_table_content
from auvcore.scales import rank_value
from AUVSlicerLib.logic import AUVLogic

# Dies the way a killed Slicer would, after the new file is written but before it replaces the old one.
CRASH_MID_WRITE = """
import os, sys
from auvcore.results import record_verdict
os.replace = lambda source, target: os._exit(9)
record_verdict(sys.argv[1], "ct_full", "spleen", "needs_fix", note="written by a process that crashed")
"""


def _slice_node(scene, name: str, orientation: str):
    node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    node.SetName(name)
    node.SetLayoutName(name)
    node.SetOrientation(orientation)
    return node


def test_a_review_session_on_real_scores(scene, scored_cohort, tmp_path):
    scored_cohort = shutil.copytree(scored_cohort, tmp_path / "scores")  # its verdicts stay out of the other tests' copies
    logic = AUVLogic()
    cohort = logic.openCohort(str(scored_cohort))
    queue = logic.openReview(cohort, "agreement")

    # Every (case, structure), most suspect first by the robust z within each structure.
    assert len(queue.entries) == 3 * 4
    assert (queue.current.case_id, queue.current.structure) == ("ct_shifted", "liver")
    z = [rank_value(entry.z) for entry in queue.entries]  # as the queue orders them (ties within 1e-6 by name)
    assert all(a >= b for a, b in itertools.pairwise(z) if not (math.isnan(a) or math.isnan(b)))
    assert queue.current.z > 3, "the shifted liver is far outside the cohort's livers"

    # Showing it: the case is loaded, the structure highlighted, every slice view centred on its worst slice.
    red, yellow = _slice_node(scene, "Red", "Axial"), _slice_node(scene, "Yellow", "Sagittal")
    shown = logic.showQueueEntry(cohort, queue.current, score="agreement")
    assert shown.loaded.case_id == "ct_shifted" and "worst agreement slice" in shown.where
    for node in (red, yellow):
        matrix = node.GetSliceToRAS()
        assert all(math.isclose(matrix.GetElement(i, 3), shown.ras[i], abs_tol=1e-6) for i in range(3))
    display = shown.loaded.segmentation_node.GetDisplayNode()
    others = [s for s in shown.loaded.segmentation_node.GetSegmentation().GetSegmentIDs() if s != shown.segment_id]
    assert display.GetSegmentOpacity2DFill(shown.segment_id) == 1.0
    assert all(display.GetSegmentOpacity2DFill(s) < 0.5 for s in others)

    # Three verdicts, each written at once.
    queue.record("needs_fix", note="liver three slices too high")
    second = queue.next()
    queue.record("correct")
    third = queue.next()
    queue.record("unsure", note="faint boundary")
    assert queue.progress() == "reviewed 3 of 12"
    written = load_review(scored_cohort / REVIEW_JSON)
    assert written.get("ct_shifted", "liver").note == "liver three slices too high"
    assert written.get(second.case_id, second.structure).verdict == "correct"
    assert written.get(third.case_id, third.structure).verdict == "unsure"
    assert [row[-1] for row in review_table_content(queue).rows[:3]] == [
        "needs_fix: liver three slices too high", "correct", "unsure: faint boundary"]

    # A crash mid-write leaves the previous file whole: the three verdicts, valid JSON.
    before = (scored_cohort / REVIEW_JSON).read_bytes()
    crashed = subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(scored_cohort / REVIEW_JSON)], check=False)
    assert crashed.returncode == 9
    assert (scored_cohort / REVIEW_JSON).read_bytes() == before
    assert len(json.loads(before)["verdicts"]) == 3 and load_review(scored_cohort / REVIEW_JSON).counts() == {
        "correct": 1, "needs_fix": 1, "unsure": 1, "fixed": 0}
    # Reopened after the crash, the queue shows where the reviewer left off.
    assert logic.openReview(logic.openCohort(str(scored_cohort)), "agreement").progress() == "reviewed 3 of 12"

    # `auv report` shows the verdicts.
    report = tmp_path / "report.html"
    result = subprocess.run([sys.executable, "-m", "auvcore.cli", "report", str(scored_cohort), "--out", str(report)],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr
    page = report.read_text()
    assert "<h2>Annotation review</h2>" in page and "3 structures reviewed: 1 correct, 1 needs fix, 1 unsure" in page
    assert "liver three slices too high" in page and "crashed" not in page


def test_the_queue_puts_structures_without_enough_lookalikes_after_the_judged_ones_and_says_why(tmp_path):
    from auvcore.review.case_scores import case_result_from_dict
    from auvcore.review.queue_table import UNJUDGED_COLOR
    from auvcore.review.queue import ReviewQueue

    def case(case_id: str, modality: str, u: float):
        return case_result_from_dict({"case_id": case_id, "modality": modality,
                                      "classes": [{"id": 5, "name": "liver", "S": 1 - u, "rows": 9}]}, case_id)

    # One MR liver among three CT livers: against them it looks far out, but it has no MR liver to be judged against.
    cases = [case("ct1", "ct", 0.90), case("ct2", "ct", 0.91), case("ct3", "ct", 0.92), case("mr", "mr", 0.999)]
    queue = ReviewQueue.open(tmp_path, cases, "auv")
    assert [entry.case_id for entry in queue.entries] == ["ct3", "ct2", "ct1", "mr"]
    mr = queue.entries[-1]
    assert mr.z > queue.entries[0].z and not mr.judged and mr.judged_against == "pooled"
    assert mr.why == "judged against the cohort: only 1 mr case holds liver (3 needed); its z is against 4 cases of any modality"
    content = review_table_content(queue)
    assert content.rows[-1][5] == mr.why and content.colors[-1] == UNJUDGED_COLOR and content.rows[0][5] == "its modality"
    assert content.summary == "reviewed 0 of 4; the last 1 are not judged against their own modality (too few cases of it)"
    from auvcore.review.colour_plan import colour_plan

    assert math.isnan(colour_plan(cases[-1], "auv", queue.cohort).values["liver"])  # grey in the module, not bright
    assert colour_plan(cases[2], "auv", queue.cohort).values["liver"] >= 0.0
