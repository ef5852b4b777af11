"""The saved cohort reference (``reference.json``): placing a new case on the cohort's scale, and bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from auvcore.errors import InputError
from auvcore.results import load_reference
from auvcore.scales import cohort_auv


def _save_reference(folder: Path, total_scales, **fields) -> list[float]:
    scored = cohort_auv(total_scales)
    document = {**scored.reference.to_dict(), "backbone": "litemedsam", "mode": "classwise",
                "settings": {"key_slices": 8, "scorers": ["auv", "agreement"]}, **fields}
    (folder / "reference.json").write_text(json.dumps(document))
    return scored.values.tolist()


def test_a_new_case_lands_where_the_cohort_put_it(tmp_path):
    totals = [23.9, 22.5, 13.4, 13.2, 0.9, 17.0]
    cohort_values = _save_reference(tmp_path, totals)
    saved = load_reference(tmp_path)  # the results folder or the file itself
    assert saved.path == tmp_path / "reference.json" and saved.scale.n_cases == 6
    other_scorers = {"key_slices": 8, "scorers": ["auv"]}  # other extra scorers: the cohort's scale still applies
    placed = [saved.place(s, "litemedsam", "classwise", other_scorers) for s in totals]
    assert placed == pytest.approx(cohort_values, abs=1e-12)
    assert saved.place(1000.0, "litemedsam", "classwise") == 0.0  # easier than any: clipped
    assert math.isnan(saved.place(math.nan, "litemedsam", "classwise"))


def test_a_case_scored_differently_is_refused(tmp_path):
    _save_reference(tmp_path, [1.0, 2.0])
    saved = load_reference(tmp_path / "reference.json")
    with pytest.raises(InputError, match=r"reference\.json: was made with other scoring settings.*backbone 'medsam2'"):
        saved.place(1.5, "medsam2", "classwise")
    with pytest.raises(InputError, match="setting key_slices=4"):
        saved.place(1.5, "litemedsam", "classwise", {"key_slices": 4})


@pytest.mark.parametrize("content, problem", [
    ("{", "is not valid JSON"),
    ('{"a_min": 0.1, "a_max": 0.5}', "missing or malformed 'n_cases'"),
    ('{"a_min": NaN, "a_max": NaN, "n_cases": 0, "backbone": "b", "mode": "m"}', "holds no usable range"),
])
def test_bad_reference_file_is_an_error(tmp_path, content, problem):
    (tmp_path / "reference.json").write_text(content)
    with pytest.raises(InputError, match=problem):
        load_reference(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_reference(tmp_path / "elsewhere.json")
