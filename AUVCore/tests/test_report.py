"""The HTML cohort report: content, the U overlay, and that a real browser decodes every image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from auvcore.curation import ExclusionList, load_exclusions
from auvcore.imaging import load_case
from auvcore.report import case_thumbnail, uncertainty_layers, write_report
from auvcore.results import read_case_record
from .test_curation import _auv, make_results_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Copied next to the test run for a person to look at (``pytest --basetemp``).
SCREENSHOT_NAME = "report_screenshot.png"

#: Injected into a copy of the page: after the load event every <img> is complete,
#: and one that failed to decode has naturalWidth 0. Writes the result into the DOM.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const report = Array.from(document.images).map(image =>
    ({alt: image.alt, complete: image.complete, width: image.naturalWidth, height: image.naturalHeight}));
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture
def curated(tmp_path: Path) -> Path:
    """A results folder filtered at keep 0.8 (ct_fast_model excluded) plus one manual exclusion."""
    folder = make_results_folder(tmp_path / "results")
    _auv("filter", str(folder), "--keep", "0.8")
    _auv("exclude", "mr/repeat 2", "--results", str(folder), "--reason", "duplicate of mr")
    return folder


def test_report_content(curated: Path):
    out = write_report(curated, curated / "report.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) == 2 + 6  # histogram, per-class S, 6 scored cases with thumbnails
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "0.6200" in page  # F^-1(0.8) of the stored rule, used by default
    excluded_rows = re.findall(r"<tr class='excluded'><td>\d+</td><td class='case'>(?:<a href='[^']+'>)?([^<]+)(?:</a>)?</td>", page)
    assert sorted(excluded_rows) == ["ct_fast_model", "mr/repeat 2"]
    assert "excluded (manual): duplicate of mr" in page and "excluded (auv-quantile)" in page
    assert "unreadable" in page and "cannot be read (truncated file)" in page  # the failed case is listed
    assert "neither keeps nor excludes them" in page


def test_report_survives_a_missing_image(curated: Path):
    record_path = curated / "cases" / "ct_roi_subset.json"
    record = json.loads(record_path.read_text())
    record["image"] = str(curated / "moved_away.nii.gz")
    record_path.write_text(json.dumps(record))
    page = write_report(curated, curated / "report.html", keep=0.5, top=4).read_text()
    assert "thumbnail unavailable" in page and "moved_away.nii.gz: does not exist" in page
    assert len(re.findall(r"<img ", page)) == 2 + 3


def test_thumbnail_overlay_holds_each_class_uncertainty(curated: Path):
    record = read_case_record(curated / "cases" / "ct_full_model.json")
    figure = case_thumbnail(record, curated)
    image_axes, colour_bar = figure.axes
    u_layer = image_axes.images[-1]
    assert u_layer.get_cmap().name == "viridis" and u_layer.get_clim() == (0.0, 1.0)
    shown = np.unique(np.round(u_layer.get_array().compressed(), 9))
    defined = {round(c.U, 9) for c in record.scored_classes}
    assert shown.size >= 2 and set(shown.tolist()) <= defined
    assert colour_bar.get_ylabel() == "U = 1 − S"


def test_classes_without_u_are_marked_not_dropped(curated: Path):
    """ct_full_model's first class has no S in the fixture; where it is labelled, the thumbnail paints it red."""
    record = read_case_record(curated / "cases" / "ct_full_model.json")
    undefined_id = next(c.id for c in record.classes if not c.scored)
    labels = load_case(record.image, record.label).labels
    index = int(np.flatnonzero((labels == undefined_id).any(axis=(1, 2)))[0])
    u_map, undefined = uncertainty_layers(labels[index], record.classes)
    assert undefined.sum() == (labels[index] == undefined_id).sum() > 0
    assert np.isnan(u_map[undefined]).all() and np.isfinite(u_map[(labels[index] > 0) & ~undefined]).all()


def test_report_uses_an_explicit_exclusion_list(curated: Path, tmp_path: Path):
    page = write_report(curated, tmp_path / "r.html", keep=1.0, exclusions=ExclusionList()).read_text()
    assert "class='excluded'" not in page and "No case is excluded." in page
    assert load_exclusions(curated / "exclusions.json").excluded() == {"ct_fast_model", "mr/repeat 2"}


def test_report_command(curated: Path, capsys):
    assert _auv("report", str(curated), "--out", str(curated / "cmd.html"), "--top", "2") == 0
    assert "wrote" in capsys.readouterr().out
    assert len(re.findall(r"<img ", (curated / "cmd.html").read_text())) == 4


def _chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_report_loads_in_headless_chromium_and_every_image_decodes(curated: Path, tmp_path: Path):
    page = write_report(curated, curated / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    broken = "<img alt='deliberately broken' src='data:image/png;base64,iVBORw0KGgoAAAA='>"  # the check must catch it
    probe.write_text(page.replace("</body>", broken + IMAGE_CHECK + "</body>"), encoding="utf-8")
    dom = _chromium("--dump-dom", probe.as_uri(), profile=tmp_path / "profile")
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"no image check in the DOM; chromium said: {dom.stderr[-2000:]}"
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == 8 + 1 and images[-1] == {"alt": "deliberately broken", "complete": True, "width": 0, "height": 0}
    report_images = images[:-1]
    assert all(image["complete"] and image["width"] > 0 and image["height"] > 0 for image in report_images), images

    screenshot = tmp_path / SCREENSHOT_NAME
    _chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", probe.as_uri(), profile=tmp_path / "profile")
    assert screenshot.is_file() and screenshot.read_bytes().startswith(b"\x89PNG")
