"""LiteMedSAM's box decoder: upstream's against the factored one, in each runtime, side by side in one run.

Usage: python Testing/benchmarks/decoder_speed.py [--slices 4] [--classes N] [--batches 1 4 8 16 32] [--repeat 3]
                                                  [--only TEXT] [--smoke]

The real boxes of ``ct_full_model``'s busiest slices (every class each slice holds,
in the backend's order: slice by slice) on their real embeddings (OpenVINO's
encoder, fp32). Each variant decodes all of them in calls of ``DECODER_BOXES``:

- upstream (:class:`~auvcore.backends.litemedsam_parts.BoxDecoder`) in eager
  PyTorch, OpenVINO and ONNX Runtime: the path every runtime took before
  (OpenVINO is the CPU default, so ``upstream openvino`` is "today");
- factored (:class:`~auvcore.backends.litemedsam_decoder.FactoredBoxDecoder`) in
  the same three, and, in OpenVINO, at each of ``--batches`` boxes per call.

Printed per variant: s/box, GFLOP/s counting upstream's FLOPs a box (so the
column compares speed per box; the factored decoder does fewer), the ratio to
upstream eager and to upstream OpenVINO, the largest logit difference to
upstream eager, and the largest per-class difference in S over the slices'
class-wise features. The encoder's GFLOP/s (OpenVINO, the same slices) is
printed beside. Goal (issue 30): the decoder >= 3x today's per box at
max |dS| <= 1e-6. ``--classes N`` keeps the N classes that most of the slices hold.
``--smoke``: 2 slices, 4 classes, one repeat, for CI.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from auvcore.backends.export_cache import export_onnx
from auvcore.backends.litemedsam import INPUT_SIZE, bundled_weights_file, bundled_weights_sha256, load_litemedsam, prepare_slices
from auvcore.backends.litemedsam_decoder import FactoredBoxDecoder
from auvcore.backends.litemedsam_parts import DECODER_BOXES, BoxDecoder, EagerDecoder, ExportedDecoder, _example_decoder_inputs, build_runners
from auvcore.backends.runtimes import load_compiled
from auvcore.imaging import load_case, normalise_intensity
from auvcore.prompts import slice_boxes
from auvcore.sample_data import fetch_sample_cohort
from auvcore.spectrum import class_spectra

from timing import best_of, gflop

SAMPLE = Path(__file__).resolve().parents[2] / "Testing" / "data" / "sample_cohort"


def exported(module: torch.nn.Module, runtime: str, folder: Path) -> ExportedDecoder:
    """``module`` exported to ONNX in ``folder`` and compiled by ``runtime`` (fp32), outside the product's model cache."""
    path = folder / f"{type(module).__name__}-{runtime}.onnx"
    if not path.is_file():
        with path.open("wb") as file:
            export_onnx(module, _example_decoder_inputs(), ["embeddings", "box_slice", "boxes"], ["masks"],
                        {"embeddings": {0: "slices"}, "box_slice": {0: "boxes"}, "boxes": {0: "boxes"}, "masks": {0: "boxes"}})(file)
    return ExportedDecoder(load_compiled(runtime, path, "fp32", folder / "blobs"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--classes", type=int, help="keep the N classes most of the slices hold (default: all)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="run only the variants whose name contains this text (upstream eager always runs)")
    parser.add_argument("--smoke", action="store_true", help="2 slices, 4 classes, one repeat, batches 16 (seconds, for CI)")
    args = parser.parse_args()
    if args.smoke:
        args.slices, args.classes, args.repeat, args.batches = 2, 4, 1, [DECODER_BOXES]

    folder = fetch_sample_cohort(SAMPLE).parent
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz")
    volume, labels = normalise_intensity(case.image, "ct"), case.labels
    class_ids = [int(v) for v in np.unique(labels) if v]
    prompts = slice_boxes(labels, class_ids)
    depths = sorted(int(d) for d in np.argsort(-prompts.present.sum(axis=0), kind="stable")[: args.slices])
    images, (h, w) = prepare_slices(volume, depths)
    cpu = torch.device("cpu")
    model = load_litemedsam(bundled_weights_file(), cpu)
    encoder, _ = build_runners(model, cpu, "openvino", "fp32", bundled_weights_sha256())
    encoder_seconds, embeddings = best_of(args.repeat, lambda: torch.stack(encoder(images)))
    encoder_gflop = gflop(model.image_encoder, images[:1])

    present = prompts.present[:, depths]
    if args.classes:
        present = present & np.isin(np.arange(len(class_ids)), np.argsort(-present.sum(axis=1), kind="stable")[: args.classes])[:, None]
    box_depth, box_class = np.nonzero(present.T)  # slice by slice, as the backend orders them
    boxes = torch.from_numpy(prompts.boxes[box_class, np.array(depths)[box_depth]] * (INPUT_SIZE / max(volume.shape[1:]))).float()
    box_slice = torch.from_numpy(box_depth).long()
    upstream, factored = BoxDecoder(model).eval(), FactoredBoxDecoder(model).eval()
    upstream_gflop = gflop(upstream, embeddings[:1], box_slice[:1] * 0, boxes[:1])
    factored_gflop = gflop(factored, embeddings[:1], box_slice[:1] * 0, boxes[:1])
    print(f"{len(boxes)} real boxes of ct_full_model on its {len(depths)} busiest slices, {torch.get_num_threads()} threads, "
          f"best of {args.repeat}")
    print(f"encoder (OpenVINO fp32): {encoder_seconds / len(depths):.3f} s/slice, {encoder_gflop * len(depths) / encoder_seconds:.0f} GFLOP/s")
    print(f"decoder FLOPs a box (one slice's per-slice work included): upstream {upstream_gflop:.2f} GFLOP, factored {factored_gflop:.2f} GFLOP")

    def decode(decoder, batch: int) -> torch.Tensor:
        parts = []
        for start in range(0, len(boxes), batch):
            chosen = box_slice[start : start + batch]
            slices, inverse = torch.unique(chosen, return_inverse=True)  # only the call's slices, as the backend passes them
            parts.append(decoder(embeddings[slices], inverse, boxes[start : start + batch]))
        return torch.cat(parts)

    with tempfile.TemporaryDirectory() as scratch:
        variants = {
            "upstream eager": (EagerDecoder(upstream, "fp32", cpu), DECODER_BOXES),
            "upstream openvino": (exported(upstream, "openvino", Path(scratch)), DECODER_BOXES),
            "upstream onnxruntime": (exported(upstream, "onnxruntime", Path(scratch)), DECODER_BOXES),
            "factored eager": (EagerDecoder(factored, "fp32", cpu), DECODER_BOXES),
            "factored onnxruntime": (exported(factored, "onnxruntime", Path(scratch)), DECODER_BOXES),
        }
        factored_openvino = exported(factored, "openvino", Path(scratch))
        for batch in args.batches:
            variants[f"factored openvino, {batch} a call"] = (factored_openvino, batch)
        if args.only:
            variants = {n: v for n, v in variants.items() if args.only in n or n in ("upstream eager", "upstream openvino")}
        seconds, logits = {}, {}
        for name, (decoder, batch) in variants.items():
            seconds[name], logits[name] = best_of(args.repeat, lambda d=decoder, b=batch: decode(d, b))

    def class_s(masks: torch.Tensor) -> np.ndarray:
        z = torch.zeros(len(class_ids), len(depths), h * w)
        z[torch.from_numpy(box_class), box_slice] = masks[:, :h, :w].reshape(len(masks), -1)
        return class_spectra(z, torch.from_numpy(present)).values.numpy()

    reference = class_s(logits["upstream eager"])
    print("| decoder | s/box | GFLOP/s (upstream's FLOPs) | vs upstream eager | vs upstream openvino (today) | max abs Δ logit | max per-class abs ΔS |")
    print("|---|---|---|---|---|---|---|")
    for name in variants:
        per_box = seconds[name] / len(boxes)
        dlogit = (logits[name] - logits["upstream eager"]).abs().max().item()
        ds = np.nanmax(np.abs(class_s(logits[name]) - reference))
        print(f"| {name} | {per_box:.4f} | {upstream_gflop / per_box:.0f} | {seconds['upstream eager'] / seconds[name]:.2f}x "
              f"| {seconds['upstream openvino'] / seconds[name]:.2f}x | {dlogit:.1e} | {ds:.1e} |")


if __name__ == "__main__":
    main()
