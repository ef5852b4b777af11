"""DICOM RT Structure Sets (RTSTRUCT) rasterised onto their image series: one ROI as a label map.

An RTSTRUCT holds each ROI as closed planar polygons in patient coordinates
(mm), one or more per image plane. A voxel belongs to the ROI when its centre
lies inside the polygons of its plane by the even-odd rule: a contour drawn
inside another is a hole, as RT planning systems write them. Each polygon's
vertices are mapped to the image's continuous voxel indices with the series'
own geometry (SimpleITK), so any in-plane orientation and spacing is handled;
a contour that does not lie on one image plane (within :data:`PLANE_TOLERANCE`
of a slice) is refused rather than guessed.

pydicom reads the RTSTRUCT (the ``lesions`` extra: ``pip install auvcore[lesions]``);
it is imported only here, when a structure set is read.

Example:
    >>> image = read_image("pat_1")                                   # doctest: +SKIP
    >>> mask = rtstruct_mask(image, "pat_1/DCM_RS_00060.dcm", "GTV-1")  # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from matplotlib.path import Path as Polygon

from .errors import InputError

#: How far (in slices) a contour may lie from the nearest image plane.
PLANE_TOLERANCE = 0.1


def _read_dataset(path: Path):
    try:
        import pydicom
    except ImportError:
        raise InputError(path, "is an RTSTRUCT; reading it needs pydicom (pip install 'auvcore[lesions]')") from None
    try:
        return pydicom.dcmread(str(path))
    except Exception as error:  # pydicom raises several types for unreadable files
        raise InputError(path, f"cannot be read as DICOM: {error}") from None


def roi_names(rtstruct: str | Path) -> list[str]:
    """The ROI names an RTSTRUCT holds, in its order."""
    dataset = _read_dataset(Path(rtstruct))
    return [str(roi.ROIName) for roi in getattr(dataset, "StructureSetROISequence", [])]


def _roi_contours(dataset, roi_name: str, where: Path) -> list[np.ndarray]:
    """Every contour of ``roi_name`` as an (n, 3) array of LPS points in mm."""
    numbers = {int(roi.ROINumber): str(roi.ROIName) for roi in getattr(dataset, "StructureSetROISequence", [])}
    if dataset.get("Modality") != "RTSTRUCT":
        raise InputError(where, f"is not an RTSTRUCT (Modality {dataset.get('Modality')!r})")
    wanted = [number for number, name in numbers.items() if name == roi_name]
    if not wanted:
        raise InputError(where, f"has no ROI named {roi_name!r}; it holds: {', '.join(numbers.values()) or 'none'}")
    contours = []
    for roi in getattr(dataset, "ROIContourSequence", []):
        if int(roi.ReferencedROINumber) != wanted[0]:
            continue
        for contour in getattr(roi, "ContourSequence", []):
            points = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
            if contour.get("ContourGeometricType", "CLOSED_PLANAR") == "CLOSED_PLANAR" and len(points) >= 3:
                contours.append(points)
    if not contours:
        raise InputError(where, f"ROI {roi_name!r} has no closed planar contour")
    return contours


def fill_polygons(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(rows, columns) bool: the pixels whose centre lies inside an odd number of ``polygons``.

    Each polygon is (n, 2) of (column, row) continuous indices; pixel (r, c) has its centre at (c, r).

    Example:
        >>> square = np.array([[0.5, 0.5], [3.5, 0.5], [3.5, 3.5], [0.5, 3.5]])
        >>> hole = np.array([[1.5, 1.5], [2.5, 1.5], [2.5, 2.5], [1.5, 2.5]])
        >>> fill_polygons([square, hole], (5, 5)).astype(int).tolist()
        [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 0, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]
    """
    filled = np.zeros(shape, dtype=bool)
    for polygon in polygons:
        low = np.maximum(np.floor(polygon.min(axis=0)).astype(int), 0)
        high = np.minimum(np.ceil(polygon.max(axis=0)).astype(int), (shape[1] - 1, shape[0] - 1))
        if np.any(high < low):
            continue
        columns, rows = np.meshgrid(np.arange(low[0], high[0] + 1), np.arange(low[1], high[1] + 1))
        inside = Polygon(polygon, closed=False).contains_points(np.column_stack([columns.ravel(), rows.ravel()]))
        filled[low[1] : high[1] + 1, low[0] : high[0] + 1] ^= inside.reshape(columns.shape)
    return filled


def rtstruct_mask(image: sitk.Image, rtstruct: str | Path, roi_name: str) -> sitk.Image:
    """The ROI ``roi_name`` of ``rtstruct`` as a uint8 label map (1 inside) on the grid of ``image``.

    Raises:
        InputError: naming the RTSTRUCT, for a file that is not one, an ROI it lacks, or a contour
            that does not lie on a plane of the image.
    """
    where = Path(rtstruct)
    contours = _roi_contours(_read_dataset(where), roi_name, where)
    width, height, depth = image.GetSize()
    by_plane: dict[int, list[np.ndarray]] = defaultdict(list)
    for points in contours:
        index = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in points])
        plane = float(np.median(index[:, 2]))
        if np.abs(index[:, 2] - round(plane)).max() > PLANE_TOLERANCE or not 0 <= round(plane) < depth:
            raise InputError(where, f"ROI {roi_name!r} has a contour off the image planes (slice index {plane:.2f} of "
                             f"{depth}); is it drawn on another series?")
        by_plane[int(round(plane))].append(index[:, :2])
    mask = np.zeros((depth, height, width), dtype=np.uint8)
    for plane, polygons in by_plane.items():
        mask[plane] = fill_polygons(polygons, (height, width))
    result = sitk.GetImageFromArray(mask)
    result.CopyInformation(image)
    return result
