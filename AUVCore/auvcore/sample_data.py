"""The real sample cohort: TotalSegmentator 2.18.0's reference CT/MR volumes and labels.

The files come from the TotalSegmentator source distribution on the package
registry (``pip download --no-deps --no-binary :all: totalsegmentator==2.18.0``);
only the volumes below are extracted, each checked by SHA-256. Class names come
from the same sdist's ``totalsegmentator/map_to_binary.py``.

The cohort (a CSV manifest, see :mod:`auvcore.cohort`):

======================  ===================  ========================  =========
case_id                 image                label                     classes
======================  ===================  ========================  =========
ct_full_model           example_ct_sm        example_seg               ``total``
ct_fast_model           example_ct_sm        example_seg_fast          ``total``
ct_roi_subset           example_ct_sm        example_seg_roi_subset    ``total``
mr                      example_mr_sm        example_seg_mr            ``total_mr``
======================  ===================  ========================  =========

``ct_full_model`` and ``ct_fast_model`` are two models' labelings of the same CT
(the fast model is the worse one), a real, unplanted annotation-quality contrast.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import SimpleITK as sitk

from .files import atomic_write_bytes, file_sha256
from .imaging import write_image_atomic

SDIST_NAME = "totalsegmentator-2.18.0.tar.gz"
SDIST_SHA256 = "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03"
SDIST_PREFIX = "totalsegmentator-2.18.0/"
REFERENCE_DIR = "tests/reference_files/"
CLASS_MAP_FILE = "totalsegmentator/map_to_binary.py"

#: The volumes the cohort uses, with their SHA-256.
FILES = {
    "example_ct_sm.nii.gz": "e50c00b2914e2cac0aaee8e7f3b5f57d44d9f21bfd5c0577271c54c0cb49e9fb",
    "example_seg.nii.gz": "8be652475a4aaae83103a66bfb3345314b1fc06742807a06cf5005f7a7913a2d",
    "example_seg_fast.nii.gz": "353a7c65c9ff5d5b9b331f811130f0ebbaedb509df74587d3bd0d1ad5ebc3910",
    "example_seg_roi_subset.nii.gz": "974faefc5c7821be5b8a02795009e9761aa1b37350057a9c39aeded48cb74cd3",
    "example_mr_sm.nii.gz": "209b46efaff595dd54a9332872e17a722b62654bbb68dbd89acd5090701bbd4f",
    "example_seg_mr.nii.gz": "e73a5ee12962aa2bb2f3e43ab58dfc67990c5a7ef2dcb426a1bf5e5982b9587f",
}

#: (case_id, image, label, class map) of the sample cohort.
CASES = (
    ("ct_full_model", "example_ct_sm.nii.gz", "example_seg.nii.gz", "total"),
    ("ct_fast_model", "example_ct_sm.nii.gz", "example_seg_fast.nii.gz", "total"),
    ("ct_roi_subset", "example_ct_sm.nii.gz", "example_seg_roi_subset.nii.gz", "total"),
    ("mr", "example_mr_sm.nii.gz", "example_seg_mr.nii.gz", "total_mr"),
)

MANIFEST_NAME = "manifest.csv"


def _download_sdist(into: Path) -> Path:
    """pip download the sdist (no build, no dependencies) into ``into``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", str(into), "totalsegmentator==2.18.0"]
    result = subprocess.run(command, capture_output=True, text=True)
    sdist = into / SDIST_NAME
    if result.returncode != 0 or not sdist.exists():
        raise RuntimeError(f"could not download the TotalSegmentator 2.18.0 sdist with pip: {result.stderr.strip()[-500:]}")
    return sdist


def _class_maps(source: str) -> dict[str, dict[int, str]]:
    """``class_map['total']`` and ``['total_mr']`` from map_to_binary.py, read without running it."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "class_map" for t in node.targets):
            class_map = ast.literal_eval(node.value)
            return {task: {int(k): str(v) for k, v in class_map[task].items()} for task in ("total", "total_mr")}
    raise RuntimeError(f"{CLASS_MAP_FILE} in the sdist has no class_map")


def _complete(folder: Path) -> bool:
    return (folder / MANIFEST_NAME).exists() and all((folder / name).exists() for name in FILES)


def fetch_sample_cohort(folder: str | Path, sdist: str | Path | None = None) -> Path:
    """Fetch (once) and build the sample cohort in ``folder``; returns its manifest.

    Args:
        folder: where the volumes, label-name files and ``manifest.csv`` go.
        sdist: an already downloaded ``totalsegmentator-2.18.0.tar.gz`` to use
            instead of downloading it.

    Every extracted file is checked against its SHA-256; a mismatch is an error.
    """
    folder = Path(folder)
    if _complete(folder):
        for name, expected in FILES.items():
            if file_sha256(folder / name) != expected:
                raise RuntimeError(f"{folder / name}: SHA-256 differs from the expected sample file; delete it to refetch")
        return folder / MANIFEST_NAME
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(sdist) if sdist else _download_sdist(Path(scratch))
        if file_sha256(archive) != SDIST_SHA256:
            raise RuntimeError(f"{archive}: SHA-256 differs from the TotalSegmentator 2.18.0 sdist")
        with tarfile.open(archive, "r:gz") as tar:
            for name, expected in FILES.items():
                member = tar.extractfile(SDIST_PREFIX + REFERENCE_DIR + name)
                if member is None:
                    raise RuntimeError(f"{archive}: has no {REFERENCE_DIR + name}")
                data = member.read()
                if hashlib.sha256(data).hexdigest() != expected:
                    raise RuntimeError(f"{archive}: {name} does not match its expected SHA-256")
                atomic_write_bytes(folder / name, data)
            class_map_member = tar.extractfile(SDIST_PREFIX + CLASS_MAP_FILE)
            if class_map_member is None:
                raise RuntimeError(f"{archive}: has no {CLASS_MAP_FILE}")
            class_maps = _class_maps(class_map_member.read().decode())
    for task, names in class_maps.items():
        labels = {"background": 0, **{name: value for value, name in sorted(names.items())}}
        atomic_write_bytes(folder / f"labels_{task}.json", json.dumps({"labels": labels}, indent=1).encode())
    rows = ["case_id,image,label,label_names"]
    rows += [f"{case},{image},{label},labels_{task}.json" for case, image, label, task in CASES]
    atomic_write_bytes(folder / MANIFEST_NAME, ("\n".join(rows) + "\n").encode())
    return folder / MANIFEST_NAME


#: (case prefix, image, label, class map) of the volumes cut into slabs by :func:`build_slab_cohort`.
SLAB_SOURCES = (
    ("ct_full", "example_ct_sm.nii.gz", "example_seg.nii.gz", "total"),
    ("ct_fast", "example_ct_sm.nii.gz", "example_seg_fast.nii.gz", "total"),
    ("mr", "example_mr_sm.nii.gz", "example_seg_mr.nii.gz", "total_mr"),
)


def build_slab_cohort(sample: str | Path, out: str | Path, slices: int = 6, stride: int = 4, limit: int | None = None) -> Path:
    """Cut the sample volumes into slabs of ``slices`` axial slices: a cohort of many real cases.

    Two cases and their labels are rarely enough to audit a score, so the
    audit's figures on the sample data use this cohort: slabs every ``stride``
    slices of the CT (once with the full model's labels, once with the fast
    model's, adjacent so they share image embeddings) and of the MR.
    ``limit`` keeps the first slabs of each source only. Returns the manifest.

    Example:
        >>> manifest = build_slab_cohort("Testing/data/sample_cohort", "slabs")  # doctest: +SKIP
    """
    sample, out = Path(sample), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[int, list[str]] = {}
    for prefix, image_name, label_name, task in SLAB_SOURCES:
        image, labels = sitk.ReadImage(str(sample / image_name)), sitk.ReadImage(str(sample / label_name))
        depth = image.GetSize()[2]
        starts = list(range(0, depth - slices + 1, stride))[:limit]
        for number, start in enumerate(starts):
            case_id = f"{prefix}_z{start:02d}"
            image_file = f"{prefix.split('_')[0]}_z{start:02d}_image.nii.gz"
            label_file = f"{case_id}_label.nii.gz"
            for volume, name in ((image, image_file), (labels, label_file)):
                if not (out / name).exists():
                    write_image_atomic(volume[:, :, start : start + slices], out / name)  # slicing keeps the slab's origin
            names = os.path.relpath(sample / f"labels_{task}.json", out)
            rows.setdefault(number + (1000 if prefix == "mr" else 0), []).append(f"{case_id},{image_file},{label_file},{names}")
    manifest = out / MANIFEST_NAME
    lines = ["case_id,image,label,label_names", *(row for key in sorted(rows) for row in rows[key])]
    atomic_write_bytes(manifest, ("\n".join(lines) + "\n").encode())
    return manifest
