"""The catalog entry ``AUVSlicer.json`` against the Extensions Index's checks (issue 26, defect 4).

The rules are those of Slicer/ExtensionsIndex's ``scripts/check_description_files.py``
(read at its commit 07f1d1b, August 2026) and of the catalog entry schema it validates against
(``slicer-extension-catalog-entry-schema-v1.0.1.json``), written out here as
they apply to this repository. The Index clones the repository and downloads
the images; here the clone is this checkout, and an image URL must name a file
of it on the ``scm_revision`` branch. The one rule that needs GitHub itself,
the repository's ``3d-slicer-extension`` topic, is in the release notes of the
documentation site (``docs/development/slicer-extension.md``), which this checks instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from urllib.parse import urlsplit

import pytest
from slicer_python import REPOSITORY

CATALOG = REPOSITORY / "AUVSlicer.json"
#: The Index names an extension after its description file.
EXTENSION_NAME = CATALOG.stem
CMAKE = REPOSITORY / "CMakeLists.txt"

#: The schema v1.0.1: the only keys allowed, and each one's type; these three are required.
SCHEMA_TYPES = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
                "build_dependencies": list, "build_subdirectory": str, "enabled": bool, "tier": int}
SCHEMA_REQUIRED = {"$schema", "category", "scm_url"}
#: The categories the Index accepts (its ACCEPTED_EXTENSION_CATEGORIES).
ACCEPTED_CATEGORIES = {
    "Active Learning", "Analysis", "Auto3dgm", "BigImage", "Cardiac", "Chest Imaging Platform", "Conda", "Converters",
    "DICOM", "DSCI", "Developer Tools", "Diffusion", "Examples", "Exporter", "FTV Segmentation", "Filtering",
    "Filtering.Morphology", "Filtering.Vesselness", "Holographic Display", "Image Synthesis", "IGT", "Informatics",
    "Netstim", "Neuroimaging", "Nuclear Medicine", "Orthodontics", "Osteotomy Planning", "Otolaryngology",
    "Photogrammetry", "Pipelines", "Planning", "Printing", "Quantification", "Radiotherapy", "Registration", "Remote",
    "Rendering", "SPHARM", "Segmentation", "Sequences", "Shape Analysis", "Shape Regression", "Shape Visualization",
    "Simulation", "SlicerCMF", "SlicerMorph", "Spectral Imaging", "Supervisely", "Surface Models", "SurfaceLearner",
    "Tomographic Reconstruction", "Tracking", "Tractography", "Training", "Ultrasound", "Utilities",
    "Vascular Modeling Toolkit", "Virtual Reality", "VisSimTools", "Web System Tools", "Wizards"}
#: How the repository's name may start.
REPOSITORY_PREFIXES = ("Slicer", "Slicer-", "Slicer_", "SlicerExtension-", "SlicerExtension_")
#: The extensions of the Index this one is built against (each has its description file there).
INDEX_EXTENSIONS = {"PyTorch"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
LICENCE_NAMES = ("LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt")
SIZE_LIMIT_MB = 100


@pytest.fixture(scope="module")
def entry() -> dict:
    return json.loads(CATALOG.read_text(encoding="utf-8"))


def test_the_description_file_is_json_with_lf_line_endings():
    raw = CATALOG.read_bytes()
    json.loads(raw)
    assert b"\r" not in raw


def test_the_entry_follows_the_catalog_schema(entry):
    assert SCHEMA_REQUIRED <= set(entry) <= set(SCHEMA_TYPES), set(entry) ^ SCHEMA_REQUIRED
    for key, value in entry.items():
        assert isinstance(value, SCHEMA_TYPES[key]) and not (SCHEMA_TYPES[key] is int and isinstance(value, bool)), key
    assert entry["$schema"].split("#")[0].endswith("/slicer-extension-catalog-entry-schema-v1.0.1.json")
    assert entry.get("scm_type", "git") in ("git", "local")
    assert 1 <= entry.get("tier", 1) <= 5
    assert all(isinstance(name, str) for name in entry.get("build_dependencies", []))


def test_the_extension_name_does_not_start_with_slicer_and_the_repository_name_does(entry):
    assert not EXTENSION_NAME.lower().startswith("slicer")
    path = urlsplit(entry["scm_url"].strip().strip("/")).path
    repository = path.split("/")[-1].removesuffix(".git")
    assert repository.startswith(REPOSITORY_PREFIXES), f"the repository {repository!r} must start with 'Slicer'"


def test_the_category_is_one_the_index_accepts(entry):
    assert entry["category"] in ACCEPTED_CATEGORIES


def test_the_scm_url_is_a_git_or_https_url(entry):
    assert "://" in entry["scm_url"] and urlsplit(entry["scm_url"]).scheme in ("git", "https")


def test_the_top_level_cmake_project_is_the_extension():
    project = re.findall(r"project\s*\(\s*([^\s\)\n\r]+)", CMAKE.read_text(), re.IGNORECASE)
    assert project and project[0].strip("\"'") == EXTENSION_NAME


def _image_urls() -> list[str]:
    """The icon and screenshot URLs as the Index reads them: the text between the quotes, nothing expanded."""
    cmake = CMAKE.read_text()
    icon = re.findall(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', cmake, re.IGNORECASE)
    screenshots = re.findall(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', cmake, re.IGNORECASE)
    assert icon and screenshots, "the Index needs EXTENSION_ICONURL and EXTENSION_SCREENSHOTURLS"
    return [icon[0].strip(), *screenshots[0].split()]


def test_icon_and_screenshots_are_image_urls_of_files_on_the_catalogued_branch(entry):
    owner_and_name = urlsplit(entry["scm_url"]).path.strip("/").removesuffix(".git")
    served = f"https://raw.githubusercontent.com/{owner_and_name}/{entry.get('scm_revision', 'main')}/"
    for url in _image_urls():
        assert url.startswith("http"), f"{url} is not a URL"
        assert url.lower().endswith(IMAGE_SUFFIXES), f"{url} is not an image"
        assert url.startswith(served), f"{url} is not served from {served}"
        assert (REPOSITORY / url.removeprefix(served)).is_file(), f"{url}: the repository lacks the file"


def test_the_repository_has_a_licence_at_its_root():
    assert any((REPOSITORY / name).is_file() for name in LICENCE_NAMES)


def test_the_checked_out_repository_is_under_100_mb():
    listed = subprocess.run(["git", "-C", str(REPOSITORY), "ls-files", "-z"], capture_output=True, check=True)
    files = [REPOSITORY / name for name in listed.stdout.decode().split("\0") if name]
    size_mb = sum(path.stat().st_size for path in files if path.is_file()) / 2**20
    assert size_mb < SIZE_LIMIT_MB, f"{size_mb:.1f} MB"


def test_build_dependencies_are_extensions_of_the_index(entry):
    assert set(entry.get("build_dependencies", [])) <= INDEX_EXTENSIONS


def test_the_release_notes_say_the_repository_needs_the_index_topic():
    """The Index asks GitHub for the repository's topics: it must have ``3d-slicer-extension``."""
    page = (REPOSITORY / "docs" / "development" / "slicer-extension.md").read_text()
    notes = page[page.index("## Releasing the extension"):]
    assert "`3d-slicer-extension`" in notes.split("\n## ")[0]
