"""Fetch the real sample cohort (TotalSegmentator 2.18.0 reference volumes) into Testing/data.

Usage: python Testing/fetch_sample_data.py [FOLDER] [--sdist totalsegmentator-2.18.0.tar.gz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from auvcore.sample_data import fetch_sample_cohort

DEFAULT_FOLDER = Path(__file__).resolve().parent / "data" / "sample_cohort"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--sdist", type=Path, help="an already downloaded sdist to extract from")
    args = parser.parse_args()
    print(fetch_sample_cohort(args.folder, sdist=args.sdist))


if __name__ == "__main__":
    main()
