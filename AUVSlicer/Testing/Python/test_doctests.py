"""The examples in the AUVSlicerLib docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["job_commands", "job_runner", "case_result", "colormap", "reference_cohort", "dependencies",
           "worst_slices", "process_tree", "structure_scores", "score_colors", "segment_editor"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"AUVSlicerLib.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
