"""LiteMedSAM on a CUDA GPU with torch, fp32 and bf16 autocast, against the CPU: speed and S agreement.

Usage (on a machine with a GPU): python Testing/benchmarks/scoring_gpu.py [--slices 16] [--repeat 3]

1. Encoder: ``--slices`` real CT slices at batch 1 and 16, s/slice and GFLOP/s.
2. Decoder: every box of those slices through upstream's decoder and the factored one, s/box and GFLOP/s.
3. Whole case: ``ct_full_model`` scored on the GPU (fp32, bf16) and on the CPU (the default runtime, fp32),
   seconds split by stage, and the largest per-class |ΔS| of each GPU run to the CPU's.

Exits with a message, and status 2, where torch sees no CUDA device.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from auvcore.backends.encoding import EncoderRunner
from auvcore.backends.litemedsam import INPUT_SIZE, bundled_weights_file, load_litemedsam, prepare_slices
from auvcore.backends.litemedsam_decoder import FactoredBoxDecoder
from auvcore.backends.litemedsam_parts import DECODER_BOXES, BoxDecoder, EagerDecoder
from auvcore.cohort import CaseScorer, ScoreSettings
from auvcore.datasets import discover_cases
from auvcore.imaging import load_case, normalise_intensity
from auvcore.prompts import slice_boxes
from auvcore.sample_data import fetch_sample_cohort

from timing import best_of, gflop

SAMPLE = Path(__file__).resolve().parents[2] / "Testing" / "data" / "sample_cohort"


def components(slices: int, repeat: int, device: torch.device) -> None:
    folder = fetch_sample_cohort(SAMPLE).parent
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz")
    volume, labels = normalise_intensity(case.image, "ct"), case.labels
    class_ids = [int(v) for v in np.unique(labels) if v]
    prompts = slice_boxes(labels, class_ids)
    depths = sorted(int(d) for d in np.argsort(-prompts.present.sum(axis=0), kind="stable")[:slices])
    images, _ = prepare_slices(volume, depths)
    model = load_litemedsam(bundled_weights_file(), device)
    sync = lambda: torch.cuda.synchronize(device)  # noqa: E731
    encoder_gflop = gflop(model.image_encoder, images[:1].to(device))
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}; {len(depths)} real CT slices of ct_full_model")
    print("| part | precision | batch | s/item | GFLOP/s |")
    print("|---|---|---|---|---|")
    embeddings = None
    for precision in ("fp32", "bf16"):
        for batch in (1, 16):
            runner = EncoderRunner(model.image_encoder, device, batch_size=batch, precision=precision)
            seconds, encoded = best_of(repeat, lambda r=runner: torch.stack(r(images)), sync)
            embeddings = encoded if (precision, batch) == ("fp32", 16) else embeddings
            print(f"| encoder | {precision} | {batch} | {seconds / len(depths):.4f} | {encoder_gflop * len(depths) / seconds:.0f} |")
    box_depth, box_class = np.nonzero(prompts.present[:, depths].T)
    boxes = torch.from_numpy(prompts.boxes[box_class, np.array(depths)[box_depth]] * (INPUT_SIZE / max(volume.shape[1:]))).float().to(device)
    box_slice = torch.from_numpy(box_depth).long().to(device)
    upstream_gflop = gflop(BoxDecoder(model), embeddings[:1], box_slice[:1] * 0, boxes[:1])
    for name, module in (("upstream decoder", BoxDecoder(model)), ("factored decoder", FactoredBoxDecoder(model))):
        for precision in ("fp32", "bf16"):
            decoder = EagerDecoder(module.to(device).eval(), precision, device)
            seconds, _ = best_of(repeat, lambda d=decoder: [d(embeddings, box_slice[i : i + DECODER_BOXES], boxes[i : i + DECODER_BOXES])
                                                             for i in range(0, len(boxes), DECODER_BOXES)], sync)
            print(f"| {name} ({len(boxes)} boxes; upstream's FLOPs) | {precision} | {DECODER_BOXES} | {seconds / len(boxes):.5f} "
                  f"| {upstream_gflop * len(boxes) / seconds:.0f} |")


def whole_case(device: torch.device) -> None:
    spec = {s.case_id: s for s in discover_cases(fetch_sample_cohort(SAMPLE))}["ct_full_model"]
    runs = {"cpu fp32": ScoreSettings(device="cpu"), "gpu fp32": ScoreSettings(device=str(device), runtime="torch"),
            "gpu bf16": ScoreSettings(device=str(device), runtime="torch", precision="bf16")}
    s = {}
    print("\n| ct_full_model | encoder s | decoder s | spectrum s | total s | max per-class abs ΔS to the CPU |")
    print("|---|---|---|---|---|---|")
    for name, settings in runs.items():
        scorer = CaseScorer(settings)
        key, image_hash = scorer.case_key(spec)
        start = time.perf_counter()
        record, _, _ = scorer.score(spec, key, image_hash)
        total = time.perf_counter() - start
        s[name] = np.array([c.S if c.S is not None else np.nan for c in record.classes], dtype=float)
        ds = np.nanmax(np.abs(s[name] - s["cpu fp32"]))
        timings = record.timings
        print(f"| {name} | {timings.get('encoder', 0):.2f} | {timings.get('decoder', 0):.2f} | {timings.get('spectrum', 0):.2f} "
              f"| {total:.1f} | {ds:.1e} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    components(args.slices, args.repeat, device)
    whole_case(device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
