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

#: The real 512 x 512 x 20 DICOM CT series of the same sdist and its label map, with their SHA-256.
DICOM_FOLDER = "example_ct_dicom"
DICOM_LABEL = "example_seg_dicom.nii.gz"
DICOM_FILES = {
    f"{DICOM_FOLDER}/CT.1.3.12.2.1107.5.1.4.60064.300000221208081134280000{number}": sha
    for number, sha in {
        16573: "4c5633409fa4d3edf6871e5684e9e1b10325b4d0949997582f43b23a684d0dc4",
        16574: "9148f91127145497f4d6c6f0780f9452504cd7fe5088ec8f2bf2b21800c731ff",
        16575: "3edaccec892e0821440cbefe3d5465923bb5146c316cbaf58f578d962f120484",
        16576: "9b68685f0c5f9bfcfc2c397f4fadf431da288d7422ca72e7d9031d4e039418cd",
        16577: "c8d2c0dc05e414d47d3652c658d8fecc20c3cf7ce106c10d84ad033d39700bcc",
        16578: "0ee2c1d58e06cedd91483ca35c04da3c26fea0dbe88aaf1eaa950b57f38357d6",
        16579: "c76cf0818d4215b92883d109b8a0b62ae0a4d81637eed98738f9c62b6f49bb72",
        16580: "106e20514fd3ca66895e14dbfba96c01c1195e4ed890c035d4368dd71f3ee116",
        16581: "5804e6c4a50f4d5b20040ac82a1c6d79cba5f7267d71f10b0a1b49eda1bc13ff",
        16582: "bef219a16b22949224de4581a2d288863b2585d29556ac24021f03307378cb39",
        16583: "9de5a49e880417d5330fe299115fdb95831a98234216a31c5c0e9a0be9a6dcd3",
        16584: "fa00c8d81ec8aa0d0cfc4e05343782c3a75a4c60df8cccf9ff5db42ac454e61d",
        16585: "ebba0900b0f728db0c94c769db3e5ca38a0cd916386a727541eb3e56350770e5",
        16586: "f084ec95cfba25efb7cbe86e8b4966b051904037e8385f58fe398c5475693b89",
        16587: "20a9b88a30ea8a824ac65cb19c1ebf80964b41ff476497706ff2a286e5f27a25",
        16588: "2a515d3b60f3ff733aac1fc5414206c331e3ed2ccef8c2e0c30b844c538e3ed8",
        16589: "5880669f1bc36b09cad4bdf487992ec415da0afa014e927efc282e612f467574",
        16590: "7af4dd5b5766a87368939116b91f90d989820e7b2237fb9bcd10d47db0960875",
        16591: "671306f4462ae881976c18c6a2d8a1567279fb0166ef0e9e8a41271fac9c1cbb",
        16592: "fdb76ad5272f074e07cc81509604fd163f2f8a9903d34b16ba6f078250373c51",
    }.items()
}
DICOM_FILES[DICOM_LABEL] = "98af7f6536c316ff9084054f20956cd3e28af376b81d582d269fbea2744878fc"

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


def _check_existing(folder: Path, files: dict[str, str]) -> None:
    for name, expected in files.items():
        if file_sha256(folder / name) != expected:
            raise RuntimeError(f"{folder / name}: SHA-256 differs from the expected sample file; delete it to refetch")


def _open_sdist(scratch: Path, sdist: str | Path | None) -> tarfile.TarFile:
    archive = Path(sdist) if sdist else _download_sdist(scratch)
    if file_sha256(archive) != SDIST_SHA256:
        raise RuntimeError(f"{archive}: SHA-256 differs from the TotalSegmentator 2.18.0 sdist")
    return tarfile.open(archive, "r:gz")


def _extract_checked(tar: tarfile.TarFile, folder: Path, files: dict[str, str]) -> None:
    """Write each of ``files`` (path under the sdist's reference folder -> SHA-256) into ``folder``, checked."""
    for name, expected in files.items():
        member = tar.extractfile(SDIST_PREFIX + REFERENCE_DIR + name)
        if member is None:
            raise RuntimeError(f"{tar.name}: has no {REFERENCE_DIR + name}")
        data = member.read()
        if hashlib.sha256(data).hexdigest() != expected:
            raise RuntimeError(f"{tar.name}: {name} does not match its expected SHA-256")
        atomic_write_bytes(folder / name, data)


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
        _check_existing(folder, FILES)
        return folder / MANIFEST_NAME
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, _open_sdist(Path(scratch), sdist) as tar:
        _extract_checked(tar, folder, FILES)
        class_map_member = tar.extractfile(SDIST_PREFIX + CLASS_MAP_FILE)
        if class_map_member is None:
            raise RuntimeError(f"{tar.name}: has no {CLASS_MAP_FILE}")
        class_maps = _class_maps(class_map_member.read().decode())
    for task, names in class_maps.items():
        labels = {"background": 0, **{name: value for value, name in sorted(names.items())}}
        atomic_write_bytes(folder / f"labels_{task}.json", json.dumps({"labels": labels}, indent=1).encode())
    rows = ["case_id,image,label,label_names"]
    rows += [f"{case},{image},{label},labels_{task}.json" for case, image, label, task in CASES]
    atomic_write_bytes(folder / MANIFEST_NAME, ("\n".join(rows) + "\n").encode())
    return folder / MANIFEST_NAME


def fetch_dicom_case(folder: str | Path, sdist: str | Path | None = None) -> tuple[Path, Path]:
    """Fetch (once) the sdist's real DICOM CT series (512 x 512 x 20) and its label map into ``folder``.

    Returns (the DICOM series folder, the label map). Every file is checked
    against its SHA-256, as in :func:`fetch_sample_cohort`.

    Example:
        >>> series, label = fetch_dicom_case("Testing/data/dicom_ct")  # doctest: +SKIP
    """
    folder = Path(folder)
    if all((folder / name).exists() for name in DICOM_FILES):
        _check_existing(folder, DICOM_FILES)
    else:
        (folder / DICOM_FOLDER).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch, _open_sdist(Path(scratch), sdist) as tar:
            _extract_checked(tar, folder, DICOM_FILES)
    return folder / DICOM_FOLDER, folder / DICOM_LABEL


#: The sdist's 191-slice CT of the aorta report (233 x 167 x 191, 1.5 mm) and the vessel and vertebra masks its
#: models made (on a crop of the same grid), with their SHA-256; :func:`fetch_aorta_case` makes them one label map.
AORTA_FOLDER = "aorta_report/"
AORTA_IMAGE = "example_ct.nii.gz"
AORTA_LABEL = "example_ct_structures.nii.gz"
AORTA_LABEL_NAMES = "labels_aorta.json"
AORTA_FILES = {
    AORTA_FOLDER + AORTA_IMAGE: "372d98723e3283a8d4a0ae2f0ef1e581c0ad17b673b30b2e8d3e215180cc2a12",
    **{f"{AORTA_FOLDER}test_result/models/{name}.nii.gz": sha for name, sha in {
        "aorta": "7fa1b813c63abcbe455b62a510c5e7a00fe0998f30541d5a8af46b20a88dd7f7",
        "brachiocephalic_trunk": "76ce8a3b3e9aeea03c88a358d9c6ceeb66e2fd6fbae33398a4ae4a8596e99661",
        "common_carotid_artery_left": "d878d1bb6dd9fe999c6523e4b705f99a1e99b6f77f910edcc9d5d06384a4da9b",
        "subclavian_artery_left": "993695ad2e9833fd3346bedc8e31635d4084c6b8e853620870fb52e41958be9a",
        "celiac_trunk": "b7a962f0bac6f7dc6229ce5fd87be53741a4527a8b53df64a0f7b49f96370bcf",
        "superior_mesenteric_artery": "ef688fff60982fdf97f6d558a6acb140fd0d7f30ca5333f72edb86e955954d28",
        "vertebrae_T12": "7baada974082529dc6c1f39bee3ef0b4e384ad020c0b7c1d3971d69e9576e0af",
    }.items()},
}


def fetch_aorta_case(folder: str | Path, sdist: str | Path | None = None) -> tuple[Path, Path, Path]:
    """Fetch (once) the sdist's 191-slice aorta CT and make its masks one label map on the CT's grid.

    Returns (the CT, the label map, its label names file). Every file is checked against its SHA-256, as in
    :func:`fetch_sample_cohort`; the masks, made on a crop of the CT's grid, are placed back at their offset.

    Example:
        >>> image, label, names = fetch_aorta_case("Testing/data/aorta_ct")  # doctest: +SKIP
    """
    import numpy as np

    folder = Path(folder)
    image, label, names = folder / AORTA_FOLDER / AORTA_IMAGE, folder / AORTA_LABEL, folder / AORTA_LABEL_NAMES
    if all((folder / name).exists() for name in AORTA_FILES):
        _check_existing(folder, AORTA_FILES)
    else:
        (folder / AORTA_FOLDER / "test_result" / "models").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch, _open_sdist(Path(scratch), sdist) as tar:
            _extract_checked(tar, folder, AORTA_FILES)
    if not (label.exists() and names.exists()):
        ct = sitk.ReadImage(str(image))
        values = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
        classes = {}
        for value, mask_name in enumerate(sorted(n for n in AORTA_FILES if "/models/" in n), start=1):
            mask = sitk.ReadImage(str(folder / mask_name))
            x, y, z = (int(round(i)) for i in ct.TransformPhysicalPointToContinuousIndex(mask.GetOrigin()))
            depth, height, width = sitk.GetArrayViewFromImage(mask).shape
            values[z:z + depth, y:y + height, x:x + width][sitk.GetArrayViewFromImage(mask) > 0] = value
            classes[Path(mask_name).name.removesuffix(".nii.gz")] = value
        structures = sitk.GetImageFromArray(values)
        structures.CopyInformation(ct)
        write_image_atomic(structures, label)
        atomic_write_bytes(names, json.dumps({"labels": {"background": 0, **classes}}, indent=1).encode())
    return image, label, names


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
