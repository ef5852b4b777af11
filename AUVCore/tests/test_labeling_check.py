"""Smoke run of Testing/benchmarks/labeling_check.py --slabs: every scorer, the cohort ones included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[2] / "Testing" / "benchmarks" / "labeling_check.py"


def test_the_slab_check_pairs_each_structure_with_the_other_labeling_of_its_slab(sample_cohort: Path, tmp_path: Path):
    output = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--slabs", "--limit", "2"],
                            capture_output=True, text=True, check=True).stdout
    summary = {line.split()[0] for line in output.splitlines() if line.strip()}
    assert {"label_check", "mahalanobis", "boundary_distance", "auv"} <= summary  # cohort scorers too
    pairs = pd.read_csv(tmp_path / "labeling_check_slabs.csv")
    assert set(pairs["slab"]) == {"z00", "z04"}
    assert pairs[["z_full", "z_fast"]].notna().all().all()
    assert pairs["dice"].between(0, 1).all() and pairs["dice"].lt(1).any()  # two real labelings differ
    label_check = pairs[pairs["scorer"] == "label_check"]
    assert not label_check.duplicated(["slab", "class"]).any() and len(label_check) > 20
