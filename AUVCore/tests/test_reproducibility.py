"""The same verdicts on every runtime and thread count, and the factored decoder computes upstream's function.

The promise (README, docs/performance.md "Reproducibility"): S per class agrees within
:data:`S_PROMISE` across the CPU runtimes and thread counts, and what a user acts on (each
score's ranking of the cases, the review queue's order, the filter's decisions) is identical.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from auvcore.backends.litemedsam import INPUT_SIZE, prepare_slices
from auvcore.backends.litemedsam_decoder import FactoredBoxDecoder
from auvcore.backends.litemedsam_parts import BoxDecoder
from auvcore.cli import main
from auvcore.imaging import load_case, normalise_intensity
from auvcore.prompts import slice_boxes
from auvcore.review.decisions import decisions
from auvcore.spectrum import class_spectra

#: S per class, across runtimes, thread counts and the two decoders (measured: below 1e-7).
S_PROMISE = 1e-6
BENCHMARK = Path(__file__).resolve().parents[2] / "Testing" / "benchmarks" / "decoder_speed.py"


def test_the_factored_decoder_gives_upstreams_logits_and_s_on_real_boxes(litemedsam, small_cohort):
    """Every box of the real CT crop, on its real embeddings: the logits (about +-30) and S per class."""
    case = load_case(small_cohort / "ct.nii.gz", small_cohort / "ct_full.nii.gz")
    volume, labels = normalise_intensity(case.image, "ct"), case.labels
    class_ids = [int(v) for v in np.unique(labels) if v]
    prompts = slice_boxes(labels, class_ids)
    depth, box_class = np.nonzero(prompts.present.T)
    images, (h, w) = prepare_slices(volume, range(volume.shape[0]))
    with torch.inference_mode():
        embeddings = litemedsam.model.image_encoder(images)
        boxes = torch.from_numpy(prompts.boxes[box_class, depth] * (INPUT_SIZE / max(volume.shape[1:]))).float()
        box_slice = torch.from_numpy(depth).long()
        upstream = BoxDecoder(litemedsam.model)(embeddings, box_slice, boxes)
        factored = FactoredBoxDecoder(litemedsam.model)(embeddings, box_slice, boxes)
    assert (factored - upstream).abs().max() < 1e-3
    spectra = []
    for logits in (upstream, factored):
        z = torch.zeros(len(class_ids), volume.shape[0], h * w)
        z[torch.from_numpy(box_class), box_slice] = logits[:, :h, :w].reshape(len(logits), -1)
        spectra.append(class_spectra(z, torch.from_numpy(prompts.present)).values)
    assert torch.isfinite(spectra[0]).sum() >= 3
    torch.testing.assert_close(spectra[1], spectra[0], atol=S_PROMISE, rtol=0, equal_nan=True)


def _s_per_class(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "results.csv").set_index("case_id")
    return table[[c for c in table.columns if c.startswith("S")]]


@pytest.mark.parametrize("runtime,threads", [("openvino", 1), ("onnxruntime", None)])
def test_runtimes_and_thread_counts_give_the_same_verdicts(scored_all, small_cohort, tmp_path, runtime, threads):
    """``scored_all`` is torch eager at the default thread count; the others score the same cohort afresh."""
    default = torch.get_num_threads()
    out = tmp_path / runtime
    try:
        torch.set_num_threads(threads or default)
        assert main(["score", str(small_cohort / "manifest.csv"), "--out", str(out), "--device", "cpu", "--no-progress",
                     "--scorers", "all", "--runtime", runtime]) == 0
    finally:
        torch.set_num_threads(default)
    np.testing.assert_allclose(_s_per_class(out).to_numpy(), _s_per_class(scored_all).to_numpy(), atol=S_PROMISE, rtol=0,
                               equal_nan=True)
    assert decisions(out) == decisions(scored_all)


def test_decoder_benchmark_smoke_prints_both_decoders_in_every_runtime(model_cache):
    result = subprocess.run([sys.executable, str(BENCHMARK), "--smoke"], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for row in ("| upstream eager |", "| upstream openvino |", "| factored eager |", "| factored onnxruntime |",
                "| factored openvino, 16 a call |"):
        assert row in result.stdout
    assert "GFLOP/s" in result.stdout
