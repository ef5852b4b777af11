"""``auv audit``: planted corruptions and the detection figures, on the real small cohort."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from auvcore.audit import KINDS, auroc, plant, precision_at
from auvcore.audit.metrics import precision_at_count, structure_detection
from auvcore.audit.detector import fit_detector, load_detector
from auvcore.cli import main
from auvcore.scales import AGGREGATES

from .test_report import CHROMIUM, IMAGE_CHECK, _chromium


def _organs() -> tuple[np.ndarray, np.ndarray]:
    """Two boxes of labels in a (6, 40, 40) image whose body is brighter than the air around it."""
    labels = np.zeros((6, 40, 40), np.uint8)
    labels[:, 10:20, 10:20] = 1
    labels[:, 22:30, 24:34] = 2
    image = np.full(labels.shape, -1000.0, np.float32)
    image[:, 4:36, 4:38] = 40.0
    image[labels == 1] = 100.0
    return image, labels


@pytest.mark.parametrize("kind", KINDS)
def test_each_corruption_changes_what_it_says(kind: str):
    image, labels = _organs()
    new_image, new_labels, what = plant(kind, image, labels, np.random.default_rng(0))
    assert what.kind == kind and what.changed_voxels > 0
    assert np.array_equal(labels, _organs()[1])  # the inputs are left as they were
    if kind in ("noise", "blur"):
        assert np.array_equal(new_labels, labels) and not np.array_equal(new_image, image)
        return
    assert np.array_equal(new_image, image)
    changed = new_labels != labels
    touched = set(np.unique(labels[changed])) | set(np.unique(new_labels[changed])) - {0}
    assert touched - {0} <= set(what.classes)  # only the corrupted structures changed
    target = what.classes[0]
    before, after = (labels == target).sum(), (new_labels == target).sum()
    if kind in ("dilate", "blob"):
        assert after > before and np.all(labels[changed] == 0)  # grows into background only
    elif kind in ("erode", "dropout"):
        assert after < before and np.all(new_labels[changed] == 0)
    if kind == "dropout":
        slices = (new_labels == target).any(axis=(1, 2))
        assert slices[0] and slices[-1] and not slices.all()  # a gap inside the range, not a shorter structure
    if kind == "swap":
        assert np.array_equal(new_labels == what.classes[1], labels == what.classes[0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=30))
def test_auroc_and_precision_match_their_definitions(pairs):
    scores = np.array([p[0] for p in pairs])
    positive = np.array([p[1] for p in pairs])
    value = auroc(scores, positive)
    if positive.all() or not positive.any():
        assert np.isnan(value)
    else:
        wins = [(s > t) + 0.5 * (s == t) for s, p in zip(scores, positive) if p for t, q in zip(scores, positive) if not q]
        assert value == pytest.approx(np.mean(wins))
    top = precision_at(scores, positive, 0.2)
    count = max(1, int(np.ceil(0.2 * len(scores))))
    assert top == pytest.approx(positive[np.argsort(-scores, kind="stable")[:count]].mean())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.booleans()), min_size=1, max_size=40), st.integers(1, 30))
def test_precision_at_a_count_is_the_share_of_positives_among_the_highest(pairs, count):
    scores = np.array([p[0] for p in pairs])
    positive = np.array([p[1] for p in pairs])
    top = sorted(zip(-scores, range(len(pairs))))[:count]  # highest first, ties by position as the stable sort
    assert precision_at_count(scores, positive, count) == pytest.approx(np.mean([positive[i] for _, i in top]))


def test_precision_at_a_count_ranks_missing_scores_last_and_refuses_no_count():
    scores, positive = np.array([np.nan, 0.2, 0.1]), np.array([True, False, True])
    assert precision_at_count(scores, positive, 2) == 0.5  # the unscored positive gets no credit
    with pytest.raises(ValueError, match="at least 1"):
        precision_at_count(scores, positive, 0)


def test_structure_detection_pools_the_label_kinds_then_splits_them_and_averages_repeats():
    rows = [(0, "dilate", 4.0), (0, "clean", 3.0), (0, "erode", 2.0), (0, "clean", 1.0), (0, "clean", 0.0),
            (1, "clean", 5.0), (1, "dilate", 0.5), (1, "clean", 0.0)]
    scores = pd.DataFrame([{"repeat": r, "kind": k, "scorer": name, "score": z if name == "good" else -z}
                           for name in ("bad", "good") for r, k, z in rows])
    table = structure_detection(scores, ["dilate", "erode"], count=2).set_index(["scorer", "kind"])
    assert table.index.get_level_values("scorer").unique().tolist() == ["good", "bad"]  # best pooled AUROC first
    good = table.loc["good"]
    assert good.loc["label", ["n_corrupted", "n_clean"]].tolist() == [3, 5]
    assert good.loc["label", "auroc"] == pytest.approx(auroc(np.array([4, 2, 0.5, 3, 1, 0, 5, 0]), np.array([1, 1, 1, 0, 0, 0, 0, 0])))
    assert good.loc["label", "precision_top2"] == pytest.approx((1 / 2 + 1 / 2) / 2)  # repeat 0: dilate, clean; repeat 1: clean, dilate
    assert good.loc["erode", "precision_top2"] == pytest.approx(0.5)  # clean 3.0, erode 2.0; repeat 1 planted no erode
    assert good.loc["erode", "best_top2"] == pytest.approx(0.5)  # one eroded structure in a top 2
    assert table.loc[("bad", "label"), "auroc"] == pytest.approx(1 - good.loc["label", "auroc"])


@pytest.fixture(scope="module")
def audited(small_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit")
    assert main(["audit", str(small_cohort / "manifest.csv"), "--out", str(out), "--fraction", "0.34", "--kinds", "dilate",
                 "--magnitude", "dilate=1", "--device", "cpu", "--no-progress", "--scorers", "agreement,boundary_gradient,prototype",
                 "--fit"]) == 0
    return out


def test_audit_plants_in_a_copy_and_reports_every_scorer_and_aggregation(audited: Path, small_cohort: Path, capsys):
    planted = pd.read_csv(audited / "planted.csv")
    assert len(planted) == 1 and planted["kind"].tolist() == ["dilate"] and planted["changed_voxels"].iloc[0] > 0
    source = planted["source"].iloc[0]
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(small_cohort / {"ct_full": "ct_full.nii.gz", "ct_fast": "ct_fast.nii.gz", "mr": "mr_seg.nii.gz"}[source])))
    corrupted = sitk.GetArrayFromImage(sitk.ReadImage(planted["label"].iloc[0]))
    assert (corrupted != original).sum() == planted["changed_voxels"].iloc[0]
    assert Path(planted["label"].iloc[0]).is_relative_to(audited)  # the user's files are only read

    figures = pd.read_csv(audited / "audit.csv")
    cases = figures[figures["level"] == "case"]
    assert set(cases["scorer"]) == {"auv", "agreement", "boundary_gradient", "prototype"}
    assert set(cases["aggregate"]) == set(AGGREGATES) and set(cases["kind"]) == {"dilate", "label", "all"}
    assert (cases["n_corrupted"] == 1).all() and (cases["n_clean"] == 2).all()
    assert cases["auroc"].between(0, 1).all()
    assert set(figures[figures["level"] == "class"]["aggregate"]) == {"z"}
    scores = pd.read_csv(audited / "scores.csv")
    assert set(scores[scores["level"] == "case"]["unit"]) == {"ct_full", "ct_fast", "mr"} - {source} | {f"{source}~dilate~r0"}


def test_the_structure_figures_lead_stdout_and_the_page(audited: Path, small_cohort: Path, capsys):
    structures = pd.read_csv(audited / "audit_structures.csv")
    assert set(structures["scorer"]) == {"auv", "agreement", "boundary_gradient", "prototype"}
    assert structures["kind"].tolist() == ["label", "dilate"] * 4  # pooled, then per kind, per scorer
    assert (structures["n_corrupted"] == 1).all() and structures["auroc"].between(0, 1).all()
    audited_structures = pd.read_csv(audited / "structures.csv")
    clean = audited_structures[audited_structures["kind"] == "clean"]
    ranked = structures["scorer"].map(lambda name: clean[f"{name}_z"].notna().sum())  # structures the scorer gives a z
    assert structures["n_clean"].tolist() == ranked.tolist()
    # One corrupted structure among fewer than 20 ranked: it is in the top 20, whatever its rank.
    assert structures["best_top20"].tolist() == pytest.approx((1 / (ranked + 1)).tolist())
    assert structures["precision_top20"].tolist() == pytest.approx((1 / (ranked + 1)).tolist())
    pooled = structures[structures["kind"] == "label"]["auroc"].tolist()
    assert pooled == sorted(pooled, reverse=True)  # best scorer first

    page = (audited / "audit.html").read_text(encoding="utf-8")
    order = [page.index(text) for text in ("Corrupted structures against structures of clean cases",
                                            "Corrupted against clean cases", "Fitted detector, on held-out structures",
                                            "All figures")]
    assert order == sorted(order)
    assert "leave_one_case_out" in page and "P@20" in page

    assert main(["audit", str(small_cohort / "manifest.csv"), "--out", str(audited), "--fraction", "0.34", "--kinds", "dilate",
                 "--magnitude", "dilate=1", "--device", "cpu", "--no-progress", "--scorers", "agreement,boundary_gradient,prototype",
                 "--fit"]) == 0
    output = capsys.readouterr().out
    assert output.index("Structures: corrupted against") < output.index("AUROC, corrupted against clean cases") < output.index("leave_one_case_out")
    assert "P@20" in output and "audit_structures.csv" in output


def test_audit_rerun_rescores_nothing(audited: Path, small_cohort: Path, capsys):
    assert main(["audit", str(small_cohort / "manifest.csv"), "--out", str(audited), "--fraction", "0.34", "--kinds", "dilate",
                 "--magnitude", "dilate=1", "--device", "cpu", "--no-progress", "--scorers", "agreement,boundary_gradient,prototype"]) == 0
    output = capsys.readouterr().out
    assert output.count("status=cached") == 4 and "status=ok" not in output
    assert "AUROC, corrupted against clean cases" in output


def test_audit_refuses_a_one_case_cohort(small_cohort: Path, tmp_path: Path, capsys):
    manifest = tmp_path / "one.csv"
    manifest.write_text("case_id,image,label\nct,%s,%s\n" % (small_cohort / "ct.nii.gz", small_cohort / "ct_full.nii.gz"))
    assert main(["audit", str(manifest), "--out", str(tmp_path / "out")]) == 2
    assert "at least 2 cases" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_audit_page_loads_and_its_images_decode(audited: Path, tmp_path: Path):
    probe = tmp_path / "probe.html"
    probe.write_text((audited / "audit.html").read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    dom = _chromium("--dump-dom", probe.as_uri(), profile=tmp_path / "profile")
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == 2 and all(i["complete"] and i["width"] > 0 for i in images), images


def test_fit_writes_a_detector_judged_on_held_out_cases(audited: Path):
    structures = pd.read_csv(audited / "structures.csv")
    assert {"agreement_z", "boundary_gradient_z", "prototype_z", "slices", "voxels", "modality", "kind", "source"} <= set(structures.columns)
    assert (structures["kind"] == "dilate").sum() == 1 and (structures["slices"] > 0).all()
    detector = load_detector(audited / "detector.json")
    assert detector.scorers == ("auv", "agreement", "boundary_gradient", "prototype")  # every scorer of the audit
    assert detector.source["corrupted"] == 1 and "leave_one_case_out" in detector.source["held_out_auroc"]
    probabilities = detector.predict(structures)
    assert probabilities.shape == (len(structures),) and ((probabilities > 0) & (probabilities < 1)).all()


def test_score_with_the_detector_adds_its_column_to_structures_and_cases(audited: Path, scored_all: Path, small_cohort: Path, tmp_path: Path):
    out = tmp_path / "scored"
    shutil.copytree(scored_all, out)
    assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress", "--scorers", "all",
                 "--detector", str(audited / "detector.json")]) == 0  # every case cached: only the cohort stage runs
    structures = pd.read_csv(out / "structures.csv")
    results = pd.read_csv(out / "results.csv").set_index("case_id")
    assert structures["detector"].between(0, 1).all()
    assert results["detector"].to_dict() == pytest.approx(structures.groupby("case_id")["detector"].max().to_dict())


def test_a_detector_that_needs_more_scorers_is_refused_before_scoring(audited: Path, small_cohort: Path, tmp_path: Path, capsys):
    assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(tmp_path / "o"), "--detector", str(audited / "detector.json")]) == 2
    assert "detector.json: needs the scorers agreement, boundary_gradient, prototype" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_audit_structures_leave_out_the_per_case_scorers_pseudo_class():
    from auvcore.audit.detector import audit_structures
    from auvcore.results import CaseRecord, ClassRecord

    scores = pd.DataFrame([
        {"repeat": 0, "level": "class", "unit": "a/liver", "kind": "clean", "scorer": "agreement", "aggregate": "z", "score": 0.5},
        {"repeat": 0, "level": "class", "unit": "a/image", "kind": "clean", "scorer": "image_auv", "aggregate": "z", "score": 1.0},
    ])
    records = {"a": CaseRecord("a", "a.nii.gz", "a_seg.nii.gz", classes=(ClassRecord(5, "liver", 0.1, 4, voxels=300),), modality="ct")}
    table = audit_structures(scores, records)
    assert table[["case_id", "class", "slices", "voxels", "modality"]].values.tolist() == [["a", "liver", 4, 300, "ct"]]


def test_the_detector_gives_no_z_a_negative_weight_and_still_flags_a_kind_it_was_not_fitted_on():
    """A scorer that only this audit's few corruptions make *lower* gets weight 0, not a negative one,
    so a structure that scorer finds very unusual is not taken for clean."""
    rng = np.random.default_rng(0)
    clean = pd.DataFrame({"a_z": rng.normal(size=200), "b_z": rng.normal(size=200)})
    # Fitted corruptions: high on scorer a, low on scorer b (a pattern of these few corruptions).
    fitted = pd.DataFrame({"a_z": rng.normal(4, 0.5, size=6), "b_z": rng.normal(-1.5, 0.3, size=6)})
    table = pd.concat([clean, fitted], ignore_index=True).assign(slices=10, voxels=1000, modality="ct")
    detector = fit_detector(table, [False] * 200 + [True] * 6, ("a", "b"))
    weights = dict(zip(detector.features, detector.coefficients))
    assert weights["a_z"] > 0 and weights["b_z"] == 0.0
    # A kind only scorer b sees ranks above the clean structures.
    unseen = pd.DataFrame({"a_z": [0.0], "b_z": [6.0], "slices": [10], "voxels": [1000], "modality": ["ct"]})
    assert detector.predict(unseen)[0] > np.quantile(detector.predict(table.iloc[:200]), 0.9)


def test_the_detector_fits_benchmark_prints_each_fit_held_out(tmp_path: Path):
    """Smoke run of Testing/benchmarks/detector_fits.py on a small structures table with two kinds."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    rows = [{"kind": None, "source": f"case{i % 6}", "agreement_z": rng.normal(), "consistency_z": rng.normal(),
             "boundary_logits_z": rng.normal()} for i in range(60)]
    rows += [{"kind": kind, "source": f"case{i}", "agreement_z": 3.0 + i, "consistency_z": 4.0 - i, "boundary_logits_z": 1.0}
             for i, kind in enumerate(["dilate", "dilate", "dropout", "dropout"])]
    table = pd.DataFrame(rows).assign(slices=8, voxels=500, modality="ct")
    table.to_csv(tmp_path / "structures.csv", index=False)
    script = Path(__file__).resolve().parents[2] / "Testing" / "benchmarks" / "detector_fits.py"
    output = subprocess.run([sys.executable, str(script), str(tmp_path / "structures.csv")], capture_output=True, text=True, check=True).stdout
    lines = output.strip().splitlines()
    assert len(lines) == 8 and all("leave-one-kind-out" in line and "dropout" in line for line in lines)
    assert sum("(product)" in line for line in lines) == 2


def test_the_detector_is_drawn_towards_label_check_and_judged_beside_it():
    """Held hard, the fit is label_check's own ranking (every other weight 0); the held-out figures carry the
    unfitted label_check on the same structures."""
    from auvcore.audit.detector import held_out_figures
    from auvcore.audit.metrics import auroc

    rng = np.random.default_rng(2)
    clean = pd.DataFrame({"a_z": rng.normal(size=200), "label_check_z": np.abs(rng.normal(size=200))})
    bad = pd.DataFrame({"a_z": rng.normal(3, 0.5, size=8), "label_check_z": rng.normal(2.5, 1.0, size=8)})
    table = pd.concat([clean, bad], ignore_index=True).assign(slices=10, voxels=1000, modality="ct")
    corrupted = np.array([False] * 200 + [True] * 8)
    held = fit_detector(table, corrupted, ("a", "label_check"), c=1e-6)
    weights = dict(zip(held.features, held.coefficients))
    assert weights["label_check_z"] > 0.5 and all(abs(w) < 1e-3 for name, w in weights.items() if name != "label_check_z")
    towards_zero = dict(zip(held.features, fit_detector(table, corrupted, ("a", "label_check"), c=1e-6, prior=None).coefficients))
    assert all(abs(w) < 1e-3 for w in towards_zero.values())

    kinds = ["clean"] * 200 + ["dilate"] * 4 + ["swap"] * 4
    figures = held_out_figures(table, kinds, [f"case{i % 10}" for i in range(208)], ("a", "label_check"))
    assert figures["unfitted_label_check"] == pytest.approx(auroc(table["label_check_z"].to_numpy(), corrupted))
    assert 0.5 < figures["unfitted_label_check_kind_mean"] <= 1.0
