"""``auv explain`` and the report's case pages on the real sample data with the real LiteMedSAM."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from auvcore.cli import main
from auvcore.explain.cache import cache_bytes, features_path
from auvcore.explain.figures import class_panel, cohort_placement, crop_window, energy_spectrum, slice_strip, spectrum_text
from auvcore.explain.view import stored_class_view
from auvcore.report import write_report
from .test_report import CHROMIUM, IMAGE_CHECK, _chromium

pytestmark = pytest.mark.slow
#: The per-class scorers of one model pass, as ``auv score --scorers`` names them.
CASE_SCORERS = "agreement,fisher,variance,boundary_gradient,boundary_logits,boundary_distance,contrast,homogeneity,consistency,stray_voxels,edge_offset"


def _explain(*arguments: str) -> int:
    return main(["explain", *map(str, arguments), "--device", "cpu"])


def _printed_s(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"S = H / log min\(n_c, N\) = ([0-9.]+)", output)]


def _stored(results: Path, case_id: str, class_name: str) -> dict:
    record = json.loads((results / "cases" / f"{case_id}.json").read_text())
    entry = next(c for c in record["classes"] if c["name"] == class_name)
    scores = {name: values["classes"][class_name] for name, values in record.get("scores", {}).items() if name != "image_auv"}
    return {"S": entry["S"], **scores}


def _decoded_images(page: Path, profile: Path) -> list[dict]:
    """Every <img> of the page as headless Chromium decoded it (width 0: failed)."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    dom = _chromium("--dump-dom", probe.as_uri(), profile=profile)
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"no image check in the DOM; chromium said: {dom.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


WIDTH_CHECK = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "width-check";
  out.textContent = String(document.documentElement.scrollWidth);
  document.body.appendChild(out);
});
</script>"""


def _page_width(page: Path, window: int, profile: Path) -> int:
    """How wide the page lays out in a ``window`` pixels wide headless Chromium (more: something sticks out)."""
    probe = page.with_name("width_probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", WIDTH_CHECK + "</body>"), encoding="utf-8")
    dom = _chromium(f"--window-size={window},1000", "--dump-dom", probe.as_uri(), profile=profile)
    found = re.search(r'<pre id="width-check">(\d+)</pre>', dom.stdout)
    assert found, f"no width check in the DOM; chromium said: {dom.stderr[-2000:]}"
    return int(found.group(1))


def test_explain_prints_and_pages_the_s_that_auv_score_stores(small_cohort: Path, scored: Path, tmp_path: Path, capsys):
    out = tmp_path / "explain"
    assert _explain(small_cohort / "ct.nii.gz", "--label", small_cohort / "ct_full.nii.gz", "--label-names",
                    small_cohort / "labels.json", "--case", "ct_full", "--class", "liver", "--out", out, "--reference", scored) == 0
    printed = _printed_s(capsys.readouterr().out)
    summary = json.loads((out / "ct_full_liver.json").read_text())
    stored = _stored(scored, "ct_full", "liver")["S"]
    assert math.isclose(summary["view"]["S"], stored, rel_tol=1e-6) and printed == [round(stored, 4)]
    assert math.isclose(summary["view"]["entropy"] / summary["view"]["normaliser"], stored, rel_tol=1e-6)
    assert summary["view"]["normaliser"] == pytest.approx(math.log(6))  # min(6 slices, H·W)
    assert len(summary["cohort"]["S"]) == 3  # every case of the reference holds a liver
    page = (out / "ct_full_liver.html").read_text(encoding="utf-8")
    assert page.count("src='data:image/png;base64,") == 3 and "http://" not in page and "https://" not in page
    assert {p.name for p in out.glob("*.png")} == {"ct_full_liver_strip.png", "ct_full_liver_spectrum.png", "ct_full_liver_cohort.png"}


def test_a_results_folder_case_reuses_its_stored_scores_and_cache(scored: Path, tmp_path: Path, capsys):
    assert 0 < cache_bytes(scored / "cases" / "ct_full.json")
    out = tmp_path / "explain"
    assert _explain(scored, "--case", "ct_full", "--class", "spleen", "--out", out) == 0
    summary = json.loads((out / "ct_full_spleen.json").read_text())
    assert summary["view"]["S"] == _stored(scored, "ct_full", "spleen")["S"]  # the stored number, not a recomputation
    assert summary["view"]["source"] == f"stored in {scored / 'cases' / 'ct_full.json'}"
    assert _printed_s(capsys.readouterr().out) == [round(summary["view"]["S"], 4)]


def test_the_spectrum_picture_shows_a_distribution_that_sums_to_one(scored: Path, tmp_path: Path):
    view = stored_class_view(scored, "mr", "liver", run_model=False)
    figure = energy_spectrum(view)
    bars = figure.axes[0].patches
    assert len(bars) == view.rows == 5 and math.isclose(sum(bar.get_height() for bar in bars), 1.0, rel_tol=1e-9)
    entropy = -sum(b.get_height() * math.log(b.get_height()) for b in bars)
    assert math.isclose(entropy / math.log(view.rows), view.S, rel_tol=1e-6)  # S is the entropy of what is drawn
    figure.savefig(tmp_path / "spectrum.png")
    pixels = imread(tmp_path / "spectrum.png")
    assert pixels.shape[0] > 200 and pixels[..., :3].std() > 0.05  # a picture, not a blank


@pytest.mark.parametrize(("image", "label", "names", "class_name", "slices"), [
    ("example_ct_sm.nii.gz", "example_seg.nii.gz", "labels_total.json", "vertebrae_T11", 3),
    ("example_mr_sm.nii.gz", "example_seg_mr.nii.gz", "labels_total_mr.json", "small_bowel", 5),
])
def test_explain_the_whole_sample_ct_and_mr(sample_cohort: Path, tmp_path: Path, image, label, names, class_name, slices):
    assert _explain(sample_cohort / image, "--label", sample_cohort / label, "--label-names", sample_cohort / names,
                    "--class", class_name, "--out", tmp_path) == 0
    summary = json.loads(next(tmp_path.glob("*.json")).read_text())["view"]
    assert summary["rows"] == slices and 0.0 <= summary["S"] <= 1.0
    assert summary["U"] == pytest.approx(1.0 - summary["S"])
    strip = imread(next(tmp_path.glob("*_strip.png")))
    assert strip[..., :3].std() > 0.05


@pytest.mark.parametrize("kind", ["blur", "dilate"])
def test_compare_changes_match_a_separate_score_of_the_planted_copy(small_cohort: Path, scored: Path, tmp_path: Path, kind):
    out = tmp_path / "explain"
    assert _explain(small_cohort / "ct.nii.gz", "--label", small_cohort / "ct_full.nii.gz", "--label-names",
                    small_cohort / "labels.json", "--case", "ct_full", "--class", "liver", "--out", out, "--compare", kind) == 0
    summary = json.loads((out / "ct_full_liver.json").read_text())
    planted = summary["planted"]
    assert main(["score", planted["image"], "--label", planted["label_map"], "--label-names", str(small_cohort / "labels.json"),
                 "--case-id", "planted", "--out", str(tmp_path / "scored"), "--scorers", CASE_SCORERS,
                 "--device", "cpu", "--no-progress"]) == 0
    separate = _stored(tmp_path / "scored", "planted", "liver")
    assert set(separate) == set(summary["changes"]) - {"U", "mask fit (Dice)"}
    assert summary["changes"]["mask fit (Dice)"]["planted"] == pytest.approx(1.0 - separate["agreement"], rel=1e-5)
    for name, value in separate.items():
        change = summary["changes"][name]
        assert change["planted"] == pytest.approx(value, rel=1e-5, abs=1e-7), name
        assert change["change"] == pytest.approx(value - change["clean"], rel=1e-5, abs=1e-7), name
    assert summary["changes"]["S"]["clean"] == pytest.approx(_stored(scored, "ct_full", "liver")["S"], rel=1e-6)
    assert abs(summary["changes"]["S"]["change"]) > 1e-4  # the corruption shows in S
    written = sorted(p.name for p in (out / "planted").iterdir())
    assert written == (["ct_full~blur1_image.nii.gz"] if kind == "blur" else ["ct_full~dilate2_label.nii.gz"])
    assert len(list(out.glob(f"*_{kind}_*.png"))) == 2


@pytest.mark.parametrize(("class_name", "message"), [
    ("lung_middle_lobe_right", "class 'lung_middle_lobe_right' is on 1 slice; S needs at least 2"),
    ("gallbladder_x", "has no class named 'gallbladder_x'; the classes it holds are: .*liver.*spleen"),
])
def test_classes_that_cannot_be_explained_are_named(sample_cohort: Path, tmp_path: Path, capsys, class_name, message):
    assert _explain(sample_cohort / "example_ct_sm.nii.gz", "--label", sample_cohort / "example_seg.nii.gz", "--label-names",
                    sample_cohort / "labels_total.json", "--class", class_name, "--out", tmp_path) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"auv: error: {sample_cohort / 'example_seg.nii.gz'}: ") and re.search(message, error)


def test_a_class_absent_from_the_label_is_named(small_cohort: Path, sample_cohort: Path, tmp_path: Path, capsys):
    assert _explain(small_cohort / "ct.nii.gz", "--label", small_cohort / "ct_full.nii.gz", "--label-names",
                    sample_cohort / "labels_total.json", "--class", "gallbladder", "--out", tmp_path) == 2
    assert "class 'gallbladder' (label 4) is absent from the label map" in capsys.readouterr().err


@pytest.mark.parametrize(("class_name", "why"), [("kidney_right", "is absent from its label map"), ("kidney", "is not a class it holds")])
def test_a_results_case_without_the_class_lists_the_classes(scored: Path, tmp_path: Path, capsys, class_name, why):
    assert _explain(scored, "--case", "mr", "--class", class_name, "--out", tmp_path) == 2
    assert f"mr.json: class '{class_name}' {why}; the classes it holds are: liver, spleen" in capsys.readouterr().err


def test_report_links_a_page_per_case_with_its_spectra_and_worst_structures(scored: Path, tmp_path: Path):
    results = tmp_path / "results"
    shutil.copytree(scored, results)
    report = write_report(results, results / "report.html")
    cohort_page = report.read_text(encoding="utf-8")
    links = [link.split("#")[0] for link in re.findall(r"<a href='(report_cases/[^']+)'>", cohort_page)]
    assert sorted(set(links)) == ["report_cases/ct_fast.html", "report_cases/ct_full.html", "report_cases/mr.html"]  # the top table and the structure list link them
    page = (results / "report_cases" / "ct_full.html").read_text(encoding="utf-8")
    assert "href='../report.html'" in page and "Energy spectra of every class" in page
    # all spectra, and the 4 structures: the report lists them (apart: 2 CT cases are too few to judge them), first
    assert page.count("src='data:image/png;base64,") == 1 + 4 and "<h2>Listed in the cohort report (4)</h2>" in page
    if CHROMIUM is not None:
        images = _decoded_images(results / "report_cases" / "ct_full.html", tmp_path / "profile")
        assert len(images) == 5 and all(image["width"] > 0 for image in images), images



@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_the_explain_page_decodes_in_headless_chromium(scored: Path, tmp_path: Path):
    assert _explain(scored, "--case", "ct_fast", "--class", "liver", "--out", tmp_path / "page") == 0
    images = _decoded_images(tmp_path / "page" / "ct_fast_liver.html", tmp_path / "profile")
    assert len(images) == 3 and all(image["complete"] and image["width"] > 0 and image["height"] > 0 for image in images), images


def test_the_feature_cache_is_compressed_and_measured(scored: Path):
    for case_id in ("ct_full", "ct_fast", "mr"):
        path = features_path(scored / "cases" / f"{case_id}.json")
        with np.load(path) as data:
            raw = sum(data[key].nbytes for key in data.files)
            assert {"grid", "origin", "spacing", "direction"} <= set(data.files)
        assert 0 < cache_bytes(scored / "cases" / f"{case_id}.json") < raw  # compressed


@pytest.mark.parametrize("module", ["auvcore.report", "auvcore.explain.view", "auvcore.explain.cache"])
def test_reading_stored_explanations_needs_no_pytorch(module: str):
    code = f"import sys, {module}\nprint('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_page_says_what_s_measures_and_shows_the_mask_fit_beside_it(scored: Path, scored_all: Path, tmp_path: Path):
    import dataclasses

    assert _explain(scored, "--case", "ct_full", "--class", "liver", "--out", tmp_path) == 0
    page = (tmp_path / "ct_full_liver.html").read_text(encoding="utf-8")
    assert "S measures how the energy of the class's logit maps" in page and "spreads across its slices" in page
    assert "S does not say how well the model's mask fits the label" in page
    assert "the model cannot resolve the structure" not in page and "distinct, well-fitting answer" not in page
    summary = json.loads((tmp_path / "ct_full_liver.json").read_text())["view"]
    assert 0.0 < summary["mask_dice"] <= 1.0 and f"{summary['mask_dice']:.2f} (the cached mask logits against the label)" in page
    # From the cached int8 logits, the Dice the agreement scorer measured on the full logits, within the rounding.
    stored = stored_class_view(scored_all, "ct_full", "liver", run_model=False)
    assert stored.mask_fit() == (pytest.approx(1.0 - stored.scores["agreement"]), "1 − agreement, as scored")
    assert dataclasses.replace(stored, scores={}).mask_fit()[0] == pytest.approx(1.0 - stored.scores["agreement"], abs=0.02)


def test_a_small_cohort_is_drawn_as_points_with_its_count(scored: Path):
    from auvcore.explain.cohort_values import class_values, cohort_source

    values = class_values(scored, "liver")
    figure = cohort_placement(values, {"this case": {"S": float(values["S"][0])}}, "liver")
    axes = figure.axes[0]
    assert len(axes.lines) == 2  # the 3 cases' points and this case's mark: no box of 3 values
    assert "S, n = 3" in axes.get_yticklabels()[0].get_text()
    low, high = axes.get_xlim()
    assert high - low >= 0.25 * max(abs(low), abs(high))  # not fitted to a tiny range
    assert cohort_source(scored, "liver", values) == (f"The reference cohort: the scored cases of the results folder {scored}, "
                                                      "of which 3 hold liver (each a point below).")


def test_the_strip_is_cropped_to_the_structure_and_the_numbers_name_their_symbols(sample_cohort: Path, scored_all: Path, tmp_path: Path):
    view = stored_class_view(scored_all, "ct_full", "kidney_right", run_model=False)
    x0, x1, y0, y1 = crop_window(view)
    width, height = np.nanmax(view.boxes[:, 2]) - np.nanmin(view.boxes[:, 0]) + 1, np.nanmax(view.boxes[:, 3]) - np.nanmin(view.boxes[:, 1]) + 1
    assert x1 - x0 <= max(1.6 * width, 24) and y1 - y0 <= max(1.6 * height, 24)  # the label's extent, not the whole slice
    image = slice_strip(view).axes[0].images[0]
    assert image.get_interpolation() == "bilinear"  # an enlarged crop is not drawn as blocks
    assert "N = h·w" in spectrum_text(view) and "H·W" not in spectrum_text(view)
    panel = class_panel(view, int(view.slices[1]))
    assert panel.axes[0].get_title() == f"volume slice {int(view.slices[1])}: 2 of the {view.rows} slices of kidney_right"
    panel.canvas.draw()
    logit_title, colour_bar = panel.axes[1].title.get_window_extent(), panel.axes[-1].get_window_extent()
    assert not logit_title.overlaps(colour_bar)  # the caption is not hidden under the colour bar
    assert _explain(scored_all, "--case", "ct_full", "--class", "kidney_right", "--out", tmp_path) == 0
    page = (tmp_path / "ct_full_kidney_right.html").read_text(encoding="utf-8")
    assert "a sum of robust z-scores across the cohort (0: typical for this structure; 3 or more: unusual)" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_a_case_page_with_every_scorer_fits_a_1400_pixel_window(scored_all: Path, tmp_path: Path):
    results = tmp_path / "results"
    shutil.copytree(scored_all, results)
    write_report(results, results / "report.html")
    assert _page_width(results / "report_cases" / "ct_full.html", 1400, tmp_path / "profile") <= 1400  # the table scrolls in its box
