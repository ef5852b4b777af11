"""Pointing at a structure's worst slices from the per-slice values ``auv score --scorers`` writes."""

from __future__ import annotations

import pytest
from auvcore.errors import InputError
from auvcore.results import CaseRecord
from auvcore.review.worst_slices import worst_slices

DATA = {
    "case_id": "c1",
    "classes": [],
    "scores": {"agreement": {"classes": {"liver": 0.7}, "slices": {"liver": [0.1, None, 0.7, 0.3, float("nan")]}},
               "variance": {"classes": {"liver": 2.0}}},
    "slice_centres_lps": [[10.0, -20.0, z] for z in (0.0, 3.0, 6.0, 9.0, 12.0)],
}
RECORD = CaseRecord.from_dict(DATA)


def test_the_most_suspect_slices_come_first_as_ras_points():
    flags = worst_slices(RECORD, "liver", "agreement", count=5)
    assert [f.index for f in flags] == [2, 3, 0]  # slices without a value are skipped
    assert flags[0].value == 0.7 and flags[0].ras == (-10.0, 20.0, 6.0)  # LPS -> RAS flips x and y


@pytest.mark.parametrize(("class_name", "scorer"), [("liver", "variance"), ("spleen", "agreement"), ("liver", "contrast")])
def test_missing_per_slice_values_say_how_to_get_them(class_name, scorer):
    with pytest.raises(InputError, match=f"--scorers {scorer}"):
        worst_slices(RECORD, class_name, scorer)


def test_values_and_centres_must_agree():
    broken = CaseRecord.from_dict({**DATA, "slice_centres_lps": DATA["slice_centres_lps"][:3]})
    with pytest.raises(InputError, match="5 per-slice values but 3 slice centres"):
        worst_slices(broken, "liver")
