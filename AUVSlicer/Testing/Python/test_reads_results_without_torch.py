"""The module reads results without PyTorch: a cohort opened, coloured, queued and reviewed in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys

from slicer_python import MODULE_FOLDER

READ_A_COHORT = """
import sys
sys.path.insert(0, sys.argv[2])
from AUVSlicerLib.cohort_model import CohortModel
from AUVSlicerLib.cohort_table import cohort_table_content
from auvcore.review.queue_table import review_table_content
from AUVSlicerLib.reference_cohort import load_reference_cohort
from auvcore.review.queue import ReviewQueue
from auvcore.review.colour_plan import colour_plan
from auvcore.review.structure_scores import CohortScores
from auvcore.review.worst_slices import worst_slices

cohort = CohortModel(sys.argv[1])
cases = [cohort.case_result(case_id) for case_id in cohort.case_ids]
cohort_table_content(cohort, keep=0.9)
case = cases[0]
load_reference_cohort(sys.argv[1] + "/reference.json").place(case.S, case.backbone, case.mode, case.record.settings)
colour_plan(case, "agreement", CohortScores(cases))
worst_slices(case.record, case.classes[0].name, "agreement")
queue = ReviewQueue.open(sys.argv[1], cases, "agreement")
review_table_content(queue)
heavy = sorted(name for name in ("torch", "torchvision", "scipy", "sklearn", "monai") if name in sys.modules)
print("imported:", heavy)
sys.exit(1 if heavy else 0)
"""


def test_a_cohort_is_read_coloured_and_queued_without_importing_torch(scored_cohort):
    result = subprocess.run([sys.executable, "-c", READ_A_COHORT, str(scored_cohort), str(MODULE_FOLDER)],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scores_the_parameter_node_offers_are_the_registry_of_the_core():
    from auvcore.scorers.registry import SCORERS

    tree = ast.parse((MODULE_FOLDER / "AUVSlicer.py").read_text())
    choices = next(ast.literal_eval(n.value) for n in tree.body
                   if isinstance(n, ast.AnnAssign | ast.Assign) and "SCORE_CHOICES" in ast.unparse(n.targets[0] if isinstance(n, ast.Assign) else n.target))
    assert choices == list(SCORERS)
