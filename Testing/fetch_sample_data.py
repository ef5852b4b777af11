"""Fetch the real sample cohort (TotalSegmentator 2.18.0 reference volumes) into Testing/data.

Usage: python Testing/fetch_sample_data.py [FOLDER] [--sdist totalsegmentator-2.18.0.tar.gz] [--dicom [DICOM_FOLDER]]
       [--aorta [AORTA_FOLDER]] [--lesions [LESION_FOLDER]] [--lesion-archives pyradiomics,pycerr,radiomicsj]

With --dicom, also the sdist's 512 x 512 x 20 DICOM CT series and its label
map (for Testing/benchmarks/runtime_speed.py), into Testing/data/dicom_ct; with
--aorta, its 191-slice CT of the aorta report with its vessel and vertebra masks
as one label map (for Testing/benchmarks/review_latency.py), into Testing/data/aorta_ct.
With --lesions, also the real lesion cohort (:mod:`auvcore.sample_lesions`:
39 slab cases of 15 CT and MR scans of 12 patients, tumours of lung, brain,
breast and limb) into Testing/data/lesion_cohort; --lesion-archives takes its
scans from some of its three archives only (pyradiomics: the CI smoke audit's).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auvcore.sample_data import fetch_aorta_case, fetch_dicom_case, fetch_sample_cohort
from auvcore.sample_lesions import ARCHIVES, fetch_lesion_cohort

DEFAULT_FOLDER = Path(__file__).resolve().parent / "data" / "sample_cohort"
DEFAULT_DICOM_FOLDER = Path(__file__).resolve().parent / "data" / "dicom_ct"
DEFAULT_AORTA_FOLDER = Path(__file__).resolve().parent / "data" / "aorta_ct"
DEFAULT_LESION_FOLDER = Path(__file__).resolve().parent / "data" / "lesion_cohort"


def _archives(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(names) - set(ARCHIVES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown lesion archives {unknown}; choose from {', '.join(ARCHIVES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--sdist", type=Path, help="an already downloaded sdist to extract from")
    parser.add_argument("--dicom", nargs="?", type=Path, const=DEFAULT_DICOM_FOLDER, metavar="DICOM_FOLDER",
                        help=f"also fetch the DICOM CT case (default folder: {DEFAULT_DICOM_FOLDER})")
    parser.add_argument("--aorta", nargs="?", type=Path, const=DEFAULT_AORTA_FOLDER, metavar="AORTA_FOLDER",
                        help=f"also fetch the 191-slice aorta CT and its structures (default folder: {DEFAULT_AORTA_FOLDER})")
    parser.add_argument("--lesions", nargs="?", type=Path, const=DEFAULT_LESION_FOLDER, metavar="LESION_FOLDER",
                        help=f"also fetch the lesion cohort (default folder: {DEFAULT_LESION_FOLDER})")
    parser.add_argument("--lesion-archives", type=_archives, default=tuple(ARCHIVES), metavar="NAMES",
                        help=f"the lesion cohort's archives to take scans from (default: all: {','.join(ARCHIVES)})")
    args = parser.parse_args()
    print(fetch_sample_cohort(args.folder, sdist=args.sdist))
    if args.dicom:
        for path in fetch_dicom_case(args.dicom, sdist=args.sdist):
            print(path)
    if args.aorta:
        for path in fetch_aorta_case(args.aorta, sdist=args.sdist):
            print(path)
    if args.lesions:
        print(fetch_lesion_cohort(args.lesions, packages=args.lesion_archives))


if __name__ == "__main__":
    main()
