"""Reading volumes with SimpleITK, checking them, and normalising intensities.

Every volume is reoriented to LPS so that array axis 0 runs along the
superior-inferior axis: a "slice" is an axial plane whatever the file's
orientation. The file's own geometry is kept and reported with every result.

Example:
    >>> import numpy as np
    >>> ct = np.array([[[-1000.0, -160.0, 40.0, 240.0, 3000.0]]])
    >>> normalise_intensity(ct, "ct").round(2).tolist()
    [[[0.0, 0.0, 0.5, 1.0, 1.0]]]
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .files import atomic_writer

Modality = Literal["ct", "mr"]

#: Soft-tissue window (level 40, width 400 HU), as MedSAM preprocesses CT.
DEFAULT_CT_WINDOW = (-160.0, 240.0)
#: Percentiles that MR intensities are clipped to before scaling.
MR_PERCENTILES = (0.5, 99.5)
#: Below this minimum intensity a volume is taken for CT (air is about -1000 HU).
CT_AIR_THRESHOLD = -500.0
#: Physical tolerance (mm, or direction cosine) for image/label geometry checks.
GEOMETRY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Geometry:
    """A volume's geometry as stored in its file (before reorientation)."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> "Geometry":
        return cls(image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())

    @classmethod
    def of_file(cls, path: Path) -> "Geometry":
        """The geometry in an image file's header, without reading its voxels.

        Raises:
            InputError: naming ``path``, when it cannot be read.
        """
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as error:
            raise InputError(path, f"cannot be read: {str(error).strip().splitlines()[-1]}") from None
        return cls(reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection())

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class LoadedCase:
    """One case in memory: LPS arrays (D, H, W) with slices along axis 0.

    Attributes:
        image: float32 raw intensities.
        labels: int32 label map, or None in label-free use.
        spacing: voxel size (slice, row, column) in mm after reorientation.
        geometry: the image file's original geometry.
        slice_centres: the LPS point (mm) at the centre of each slice of axis 0,
            so a viewer can be sent to a slice named by its index.
        oriented: the geometry of the arrays (after reorientation to LPS).
    """

    image: np.ndarray
    labels: np.ndarray | None
    spacing: tuple[float, float, float]
    geometry: Geometry
    image_path: str
    label_path: str | None
    slice_centres: tuple[tuple[float, float, float], ...] = ()
    oriented: Geometry | None = None


GZIP_MAGIC = b"\x1f\x8b"


def _stored_bytes(path: Path) -> tuple[int, bytes]:
    """(number of stored bytes after decompression, first 548 of them); raises on a broken gzip stream."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    if not compressed:
        with path.open("rb") as handle:
            return path.stat().st_size, handle.read(548)
    total, head = 0, b""
    with gzip.open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            if not head:
                head = block[:548]
            total += len(block)
    return total, head


def _nifti_data_offset(head: bytes) -> int | None:
    """Where a NIfTI-1/2 file's voxels start, from its header (None for other formats)."""
    for order in ("<", ">"):
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348:
            return int(struct.unpack(order + "f", head[108:112])[0])
        if len(head) >= 540 and struct.unpack(order + "i", head[:4])[0] == 540:
            return int(struct.unpack(order + "q", head[168:176])[0])
    return None


def _check_complete(image: sitk.Image, path: Path) -> None:
    """ITK fills a truncated file's missing voxels silently: compare the stored bytes with what the header promises."""
    try:
        stored, head = _stored_bytes(path)
    except (EOFError, OSError, zlib.error) as error:
        raise InputError(path, f"is truncated or corrupt (its compressed stream is broken: {error})") from None
    voxel_bytes = int(np.prod(image.GetSize())) * image.GetNumberOfComponentsPerPixel() * image.GetSizeOfPixelComponent()
    offset = _nifti_data_offset(head)
    if offset is not None:
        expected = offset + voxel_bytes
    elif path.name.endswith((".nhdr", ".mhd")) or _is_compressed_container(head):
        return  # voxels live in another file, or in a stream the reader checks itself
    else:
        expected = voxel_bytes
    if stored < expected:
        raise InputError(path, f"is truncated: {stored} bytes stored, at least {expected} expected")


def _is_compressed_container(head: bytes) -> bool:
    """NRRD/MHA files may compress their voxels inside; their readers check those streams themselves."""
    text = head.decode("latin-1")
    return "encoding: gz" in text or "encoding: gzip" in text or "CompressedData = True" in text


def write_image_atomic(image: sitk.Image, path: str | Path) -> None:
    """Write ``image`` (compressed where the format allows) to a temporary file beside ``path``, then rename it over ``path``.

    Raises:
        InputError: naming ``path``, when SimpleITK cannot write it.
    """
    path = Path(path)
    suffix = "".join(path.suffixes) or ".nii.gz"  # SimpleITK picks the writer by the extension
    try:
        with atomic_writer(path, suffix=suffix) as temporary:
            sitk.WriteImage(image, str(temporary), useCompression=True)
    except RuntimeError as error:
        raise InputError(path, f"cannot be written: {str(error).strip().splitlines()[-1]}") from None


def write_array_like(array: np.ndarray, like: sitk.Image, path: str | Path) -> None:
    """Write ``array`` with the geometry and pixel type of ``like``, atomically (a planted or derived copy of a volume)."""
    image = sitk.GetImageFromArray(array.astype(sitk.GetArrayViewFromImage(like).dtype, copy=False))
    image.CopyInformation(like)
    write_image_atomic(image, path)


def read_image(path: str | Path) -> sitk.Image:
    """Read a volume: a file SimpleITK knows (NIfTI, NRRD, MHA, ...) or a DICOM series folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            series = reader.GetGDCMSeriesIDs(str(path))
            if not series:
                raise InputError(path, "is a folder without a DICOM series")
            if len(series) > 1:
                raise InputError(path, f"holds {len(series)} DICOM series; give one series per folder")
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
            return reader.Execute()
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
        raise InputError(path, f"cannot be read (unreadable or truncated file): {first_line}") from None
    _check_complete(image, path)
    return image


def _check_volume(image: sitk.Image, path: str | Path) -> None:
    if image.GetDimension() != 3:
        raise InputError(path, f"is a {image.GetDimension()}D image; a 3D volume is needed")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel; a scalar volume is needed")
    if min(image.GetSize()) < 1:
        raise InputError(path, f"is empty (size {image.GetSize()})")


def _check_same_grid(image: sitk.Image, labels: sitk.Image, image_path: str | Path, label_path: str | Path) -> None:
    """Both volumes are already oriented to LPS, so a label stored with flipped or permuted axes passes."""
    if image.GetSize() != labels.GetSize():
        raise InputError(label_path, f"has size {labels.GetSize()} but the image {image_path} has {image.GetSize()} "
                         "(both oriented to LPS)")
    for what, a, b in (
        ("spacing", image.GetSpacing(), labels.GetSpacing()),
        ("origin", image.GetOrigin(), labels.GetOrigin()),
        ("direction", image.GetDirection(), labels.GetDirection()),
    ):
        if not np.allclose(a, b, atol=GEOMETRY_TOLERANCE, rtol=GEOMETRY_TOLERANCE):
            raise InputError(label_path, f"{what} {tuple(round(x, 4) for x in b)} differs from the image {image_path} "
                             f"({tuple(round(x, 4) for x in a)}; both oriented to LPS)")


def _label_array(labels: sitk.Image, path: str | Path) -> np.ndarray:
    values = sitk.GetArrayFromImage(labels)
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise InputError(path, "is not a label map: it holds non-integer values")
    if values.min() < 0:
        raise InputError(path, f"is not a label map: it holds negative values (min {values.min()})")
    return values.astype(np.int32, copy=False)


def load_case(image_path: str | Path, label_path: str | Path | None = None) -> LoadedCase:
    """Read, check and reorient an image and its optional label map.

    Raises:
        InputError: naming the file, for a missing, unreadable or truncated file,
            a 2D/4D or multi-component image, NaN/inf voxels, a label map that is
            not integer or non-negative, or image/label geometry that differs
            (a label on the same physical grid with flipped or permuted axes is accepted).
    """
    image = read_image(image_path)
    _check_volume(image, image_path)
    geometry = Geometry.of(image)
    image = sitk.DICOMOrient(image, "LPS")
    labels = None
    if label_path is not None:
        labels = read_image(label_path)
        _check_volume(labels, label_path)
        # Compared after orienting both: a label stored with its axes flipped or permuted
        # (TotalSegmentator's label of a DICOM series) lies on the same physical grid.
        labels = sitk.DICOMOrient(labels, "LPS")
        _check_same_grid(image, labels, image_path, label_path)
    array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise InputError(image_path, f"holds {bad} NaN or infinite voxels")
    label_array = _label_array(labels, label_path) if labels is not None else None
    sx, sy, sz = image.GetSpacing()
    width, height, depth = image.GetSize()
    centres = tuple(image.TransformContinuousIndexToPhysicalPoint(((width - 1) / 2, (height - 1) / 2, d)) for d in range(depth))
    return LoadedCase(
        image=array,
        labels=label_array,
        spacing=(sz, sy, sx),
        geometry=geometry,
        image_path=str(image_path),
        label_path=None if label_path is None else str(label_path),
        slice_centres=centres,
        oriented=Geometry.of(image),
    )


def structure_centres(labels: np.ndarray, class_ids: list[int], oriented: Geometry) -> dict[int, list[list[float]]]:
    """Per class, for each slice (axis 0) that holds it: ``[slice, r, a, s]``, the LPS centre (mm) of its voxels there.

    ``labels`` is the (D, H, W) LPS-oriented label map of :func:`load_case` and ``oriented`` its geometry. Three
    weighted counts over the volume, not a pass per class: a reviewer is sent to the structure on its slice, not
    to the slice's centre.

    Example:
        >>> labels = np.zeros((2, 3, 4), dtype=np.int32)
        >>> labels[1, 0:2, 2] = 7
        >>> grid = Geometry((4, 3, 2), (0.5, 2.0, 3.0), (10.0, 20.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        >>> structure_centres(labels, [7], grid)
        {7: [[1, 11.0, 21.0, 33.0]]}
    """
    depth = labels.shape[0]
    width = int(labels.max()) + 1
    key = (np.arange(depth, dtype=np.int64)[:, None, None] * width + labels).ravel()
    rows, columns = np.indices(labels.shape[1:], dtype=np.float64)
    count = np.bincount(key, minlength=depth * width).reshape(depth, width)
    row_sum = np.bincount(key, np.broadcast_to(rows, labels.shape).ravel(), minlength=depth * width).reshape(depth, width)
    column_sum = np.bincount(key, np.broadcast_to(columns, labels.shape).ravel(), minlength=depth * width).reshape(depth, width)
    spacing, origin = np.asarray(oriented.spacing, dtype=np.float64), np.asarray(oriented.origin, dtype=np.float64)
    direction = np.asarray(oriented.direction, dtype=np.float64).reshape(3, 3)
    centres: dict[int, list[list[float]]] = {}
    for class_id in class_ids:
        slices = np.flatnonzero(count[:, class_id]) if class_id < width else np.zeros(0, dtype=np.int64)
        index = np.stack([column_sum[slices, class_id] / count[slices, class_id],
                          row_sum[slices, class_id] / count[slices, class_id], slices.astype(np.float64)], axis=1)
        points = origin + (index * spacing) @ direction.T
        centres[class_id] = [[int(d), *(round(float(v), 4) for v in point)] for d, point in zip(slices, points)]
    return centres


def detect_modality(image: np.ndarray) -> Modality:
    """CT when the volume holds air-like values below -500 (Hounsfield units), else MR."""
    return "ct" if float(image.min()) < CT_AIR_THRESHOLD else "mr"


def normalise_intensity(
    image: np.ndarray,
    modality: Modality,
    ct_window: tuple[float, float] = DEFAULT_CT_WINDOW,
) -> np.ndarray:
    """Scale intensities to [0, 1]: a CT window, or MR percentile clipping.

    CT: clip to ``ct_window`` (HU) and scale linearly. MR: clip to the 0.5 and
    99.5 percentiles of the non-zero voxels and scale linearly.
    """
    if modality == "ct":
        low, high = ct_window
    elif modality == "mr":
        foreground = image[image != 0]
        sample = foreground if foreground.size else image
        low, high = np.percentile(sample, MR_PERCENTILES)
    else:
        raise ValueError(f"modality must be 'ct' or 'mr', got {modality!r}")
    if high <= low:
        return np.zeros_like(image, dtype=np.float32)
    return ((np.clip(image, low, high) - low) / (high - low)).astype(np.float32)
