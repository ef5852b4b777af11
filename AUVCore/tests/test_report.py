"""The HTML cohort report: content, the structure colours and list on really scored data, and that a real browser decodes every image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from auvcore.audit import plant
from auvcore.cli import main
from auvcore.curation import ExclusionList, load_exclusions
from auvcore.imaging import write_array_like
from auvcore.report import StructureScale, case_thumbnail, class_distributions, default_by, write_report
from auvcore.results import read_case_record, read_structures
from auvcore.results.colours import UNDEFINED_COLOUR, Z_RANGE, z_colour
from .conftest import CT_CLASSES
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


#: The planted annotation error: ct_full's liver moved in-plane by this many voxels (the audit's ``shift``).
SHIFT_VOXELS = 6
PLANTED_CASE = "ct_full_shifted"


@pytest.fixture(scope="module")
def planted(scored_all: Path, small_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small cohort scored with every scorer, plus a copy of ct_full whose liver is shifted (only that case is scored here)."""
    folder = tmp_path_factory.mktemp("planted") / "results"
    shutil.copytree(scored_all, folder)
    source = sitk.ReadImage(str(small_cohort / "ct_full.nii.gz"))
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(small_cohort / "ct.nii.gz")))
    _, labels, what = plant("shift", image, sitk.GetArrayFromImage(source), np.random.default_rng(0), SHIFT_VOXELS,
                            target=CT_CLASSES["liver"])
    assert what.changed_voxels > 0
    write_array_like(labels, source, folder.parent / "ct_full_shifted.nii.gz")
    manifest = pd.read_csv(small_cohort / "manifest.csv")
    for column in ("image", "label", "label_names"):
        manifest[column] = [str(small_cohort / name) for name in manifest[column]]
    manifest.loc[len(manifest)] = [PLANTED_CASE, str(small_cohort / "ct.nii.gz"), str(folder.parent / "ct_full_shifted.nii.gz"),
                                   str(small_cohort / "labels.json")]
    manifest.to_csv(folder.parent / "manifest.csv", index=False)
    assert main(["score", str(folder.parent / "manifest.csv"), "--out", str(folder), "--device", "cpu", "--no-progress",
                 "--scorers", "all", "--runtime", "torch"]) == 0
    return folder


def _suspects(page: str) -> list[tuple[str, str, str]]:
    """(case, class, the row's HTML) of the page's most-suspect-structures table, in order."""
    table = page[page.index("<h2>Most suspect structures"):]
    table = table[: table.index("</table>")]
    return re.findall(r"<tr><td>\d+</td><td class='case'>(?:<a href='[^']+'>)?([^<]+)(?:</a>)?</td>"
                      r"<td><span class='swatch'[^>]*></span>([^<]+)</td>(.*?)</tr>", table)


@pytest.fixture(scope="module")
def planted_page(planted: Path) -> str:
    """The report of the planted cohort, structures judged by agreement, five listed."""
    return write_report(planted, planted / "report.html", by="agreement", suspects=5).read_text(encoding="utf-8")


def test_the_planted_structure_leads_the_suspect_list_with_where_to_look(planted: Path, planted_page: str):
    listed = _suspects(planted_page)
    assert len(listed) == 5
    assert listed[0][:2] == (PLANTED_CASE, "liver"), listed
    structures = read_structures(planted).set_index(["case_id", "class"])
    liver = structures.loc[(PLANTED_CASE, "liver")]
    assert liver["agreement_z"] == structures["agreement_z"].max()
    # The page ranks by agreement, so the worst slice is agreement's, and the centre is the liver's on it.
    from auvcore.results.structures import worst_slice

    record = read_case_record(planted / "cases" / f"{PLANTED_CASE}.json")
    _, index = worst_slice(record, "liver", ["agreement"])
    centre = ", ".join(f"{v:.1f}" for v in record.structure_centre("liver", index))
    row = listed[0][2]
    assert f"{liver['agreement_z']:.2f}" in row and f">{index} (agreement)<" in row and centre in row
    assert "The worst slice is the slice of the structure's highest per-slice agreement" in planted_page


def test_structures_say_what_they_were_judged_against_and_the_unjudged_are_listed_apart(planted: Path, planted_page: str):
    structures = read_structures(planted)
    ct, mr = structures[structures["modality"] == "ct"], structures[structures["modality"] == "mr"]
    assert set(ct["judged_against"]) == {"modality"} and set(ct["modality_cases"]) == {3}  # 3 CT cases hold each organ
    assert set(mr["judged_against"]) == {"pooled"} and set(mr["modality_cases"]) == {1}  # 1 MR case: against the CTs
    assert all(case != "mr" for case, _, _ in _suspects(planted_page))
    apart = planted_page[planted_page.index("<h2>Structures not judged against their own modality (2;"):]
    assert "only 1 mr case holds spleen (3 needed); its z is against 4 cases of any modality" in apart
    assert "structures judged</dt><dd>12 of 14 against at least 3 cases of their class and modality" in planted_page


def test_a_structures_csv_written_before_judged_against_still_reads(planted: Path, tmp_path: Path):
    old = tmp_path / "old"
    shutil.copytree(planted, old)
    read_structures(old).drop(columns=["judged_against", "modality_cases"]).to_csv(old / "structures.csv", index=False)
    page = write_report(old, old / "report.html", by="agreement", suspects=14).read_text(encoding="utf-8")
    assert "mr" in {case for case, _, _ in _suspects(page)}  # ranked as before: nothing says it was not judged
    assert "Structures not judged" not in page


def test_a_listed_structure_links_to_its_place_on_its_case_page_at_its_worst_slice(planted: Path, planted_page: str):
    table = planted_page[planted_page.index("<h2>Most suspect structures"):]
    href = re.search(r"<td class='case'><a href='([^']+)'>" + PLANTED_CASE + "</a>", table).group(1)
    page_path, anchor = href.split("#")
    assert anchor == "structure-liver"
    case_page = (planted / page_path).read_text(encoding="utf-8")
    from auvcore.results.structures import worst_slice

    flagged = case_page[case_page.index("<h2>Listed in the cohort report"):case_page.index("<h2>Energy spectra")]
    record = read_case_record(planted / "cases" / f"{PLANTED_CASE}.json")
    _, index = worst_slice(record, "liver", ["agreement"])
    assert "id='structure-liver'" in flagged and "#1 of the cohort report, ranked by agreement: agreement_z" in flagged
    assert f"shown at that slice, {index}" in flagged


def test_the_structures_centres_are_theirs_not_the_slices(planted: Path):
    structures = read_structures(planted)
    mine = structures[(structures["case_id"] == PLANTED_CASE) & structures["worst_slice"].notna()]
    assert mine["worst_lps_r"].nunique() == len(mine) and mine["worst_lps_a"].notna().all()
    record = read_case_record(planted / "cases" / f"{PLANTED_CASE}.json")
    for _, row in mine.iterrows():
        assert [row["worst_lps_r"], row["worst_lps_a"], row["worst_lps_s"]] == pytest.approx(
            record.structure_centre(row["class"], int(row["worst_slice"])))


def test_every_listed_structure_links_to_its_case_page_even_outside_the_top_cases(planted: Path):
    page = write_report(planted, planted / "top1.html", by="agreement", suspects=5, top=1).read_text(encoding="utf-8")
    table = page[page.index("<h2>Most suspect structures"):]
    table = table[: table.index("</table>")]
    links = dict(re.findall(r"<td class='case'><a href='([^']+)'>([^<]+)</a></td>", table))
    listed = {case for case, _, _ in _suspects(page)}
    assert len(listed) > 1 and set(links.values()) == listed  # more cases than the one top case, each linked
    assert all((planted / link.split("#")[0]).is_file() for link in links)


def test_thumbnail_colours_each_structure_by_its_z_on_the_fixed_scale(planted: Path):
    structures = read_structures(planted)
    scale = StructureScale.of(structures, "agreement")
    record = read_case_record(planted / "cases" / f"{PLANTED_CASE}.json")
    mine = structures[structures["case_id"] == PLANTED_CASE]
    figure = case_thumbnail(record, planted, mine, scale)
    image_axes, colour_bar = figure.axes
    overlay = image_axes.images[-1].get_array()
    painted = overlay[..., 3] > 0
    colours = {tuple(np.round(c, 4)) for c in overlay[painted][:, :3]}
    expected = {tuple(np.round(z_colour(z), 4)) for z in mine["agreement_z"]} | {tuple(UNDEFINED_COLOUR)}
    assert len(colours) >= 2 and colours <= expected  # not all one colour, and each the z's colour
    assert tuple(np.round(z_colour(mine.set_index("class").at["liver", "agreement_z"]), 4)) in colours
    assert colour_bar.get_ylim() == Z_RANGE and "agreement_z" in colour_bar.get_ylabel()
    assert "worst of liver" in image_axes.get_title()  # the shifted liver is the case's most suspect structure


def test_the_page_carries_the_scale_legend_and_the_per_class_axis_follows_the_data(planted: Path, planted_page: str):
    assert "agreement: robust z within its class (0 typical, 3 = 3 or more)" in planted_page
    assert "<h2>Per-class agreement_z</h2>" in planted_page
    structures = read_structures(planted)
    values = structures["agreement_z"].dropna()
    low, high = class_distributions(structures, StructureScale.of(structures, "agreement")).axes[0].get_xlim()
    assert low < values.min() and high > values.max()
    assert (high - low) < 1.2 * (values.max() - values.min())  # fitted, not a fixed 0-1 or 0-3


def test_the_default_and_an_unknown_by(planted: Path, capsys):
    structures = read_structures(planted)
    assert default_by(structures, ExclusionList()) == "label_check"  # the review score, where it was scored
    assert default_by(structures.drop(columns=["label_check", "label_check_z"]), ExclusionList()) == "auv"
    page = write_report(planted, planted / "default.html").read_text(encoding="utf-8")
    assert "structures ranked by</dt><dd>label_check (the default: the review score" in page
    assert "<h2>Most suspect structures (top 12 of 12, ranked by label_check_z)</h2>" in page
    assert default_by(structures.assign(detector=0.5), ExclusionList()) == "detector"
    assert StructureScale.of(structures.assign(detector=0.5), "detector").high == 1.0
    assert main(["report", str(planted), "--out", str(planted / "r.html"), "--by", "nothing"]) == 2
    error = capsys.readouterr().err
    assert "structures.csv: has no column for --by 'nothing'" in error and "agreement" in error
    assert not (planted / "r.html").exists()


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
