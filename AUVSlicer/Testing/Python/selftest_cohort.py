"""Write the module's self-test cohort (``AUVSlicer/Resources/SelfTest``) from the real scores of the test fixture.

The self-test inside Slicer must fit the extension dashboard (no PyTorch
install, no scoring), so it opens these precomputed ``auv score`` results of
the sample CT's organs: three label maps of one CT (TotalSegmentator's full
and fast models, and the full one with the liver moved three slices), the
case files and ``results.csv`` with paths made relative to the folder, and a
``manifest.csv`` for the optional full-scoring self-test.

Run ``python selftest_cohort.py`` after a change of the scores' format;
``test_selftest_cohort_is_current`` says when it is due.

Example:
    >>> write_selftest_cohort(scored_folder, sample_folder, target)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

MODULE_FOLDER = Path(__file__).resolve().parents[2]
SELFTEST_FOLDER = MODULE_FOLDER / "Resources" / "SelfTest"
IMAGE = "example_ct_sm.nii.gz"
LABEL_NAMES = "labels_total.json"


def _relative(value: str) -> str:
    return Path(value).name if value else value


def selftest_files(scored: Path, sample: Path) -> dict[str, bytes]:
    """Relative path -> content of every file of the self-test cohort."""
    files: dict[str, bytes] = {IMAGE: (sample / IMAGE).read_bytes(), LABEL_NAMES: (sample / LABEL_NAMES).read_bytes(),
                               "reference.json": (scored / "reference.json").read_bytes()}
    with open(scored / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    manifest = ["case_id,image,label,label_names"]
    for row in rows:
        files[_relative(row["label"])] = Path(row["label"]).read_bytes()
        row["image"], row["label"] = _relative(row["image"]), _relative(row["label"])
        manifest.append(f"{row['case_id']},{row['image']},{row['label']},{LABEL_NAMES}")
        record = json.loads((scored / "cases" / f"{row['case_id']}.json").read_text())
        record["image"], record["label"] = _relative(record["image"]), _relative(record["label"])
        files[f"cases/{row['case_id']}.json"] = (json.dumps(record, indent=1) + "\n").encode()
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files["results.csv"] = table.getvalue().encode()
    files["manifest.csv"] = ("\n".join(manifest) + "\n").encode()
    return files


def write_selftest_cohort(scored: Path, sample: Path, target: Path = SELFTEST_FOLDER) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for relative, content in selftest_files(scored, sample).items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(content)


if __name__ == "__main__":
    data = MODULE_FOLDER.parent / "Testing" / "data"
    write_selftest_cohort(data / "auvslicer_scores" / "scores", data / "sample_cohort")
    sys.exit(0)
