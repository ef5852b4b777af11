"""LiteMedSAM on the CPU in each runtime, side by side in one run: encoder, decoder, whole cases, peak RSS.

Usage: python Testing/benchmarks/runtime_speed.py [--slices 4] [--boxes 48] [--cases ct_full_model dicom_ct]
                                                  [--case-runtimes torch openvino] [--no-cases]

1. Encoder: real CT slices through eager PyTorch and each exported runtime
   (fp32, and OpenVINO bf16): s/slice, GFLOP/s (FLOPs counted by torch on one
   slice), the ratio to eager, the largest embedding difference, and |ΔS| of
   the image-mode S of those slices.
2. Decoder: real boxes of ct_full_model on the same eager embeddings, through
   the eager per-slice loop (one call per slice, as before the runtimes),
   the batched eager BoxDecoder and each runtime: s/box, GFLOP/s, ratio, and
   the largest per-class |ΔS| of the slices' class-wise S.
3. Whole cases, each runtime in a fresh process (its peak RSS is its own;
   exported models already in the cache): ct_full_model of the sample cohort
   and the sdist's real 512 x 512 x 20 DICOM CT, split into model load, I/O,
   encoder, decoder and spectrum, with the largest per-class |ΔS| to torch.

Threads: torch's default (all cores); every runtime is given the same count.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from auvcore.backends.litemedsam import INPUT_SIZE, bundled_weights_file, bundled_weights_sha256, load_litemedsam, prepare_slices
from auvcore.backends.litemedsam_parts import DECODER_BOXES, BoxDecoder, build_runners
from auvcore.cohort import CaseScorer, ScoreSettings
from auvcore.datasets import CaseSpec, discover_cases, read_label_names
from auvcore.imaging import load_case, normalise_intensity
from auvcore.prompts import slice_boxes
from auvcore.sample_data import fetch_dicom_case, fetch_sample_cohort
from auvcore.spectrum import class_spectra, semantic_scale

from timing import best_of, gflop

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "Testing" / "data" / "sample_cohort"
DICOM = ROOT / "Testing" / "data" / "dicom_ct"
#: (label, runtime, precision) of the component comparisons; the first is the reference.
VARIANTS = (("eager", "torch", "fp32"), ("onnxruntime", "onnxruntime", "fp32"), ("openvino", "openvino", "fp32"), ("openvino bf16", "openvino", "bf16"))


def ct_full_model() -> tuple[np.ndarray, np.ndarray]:
    folder = fetch_sample_cohort(SAMPLE).parent
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz")
    return normalise_intensity(case.image, "ct"), case.labels


def components(slices: int, boxes_wanted: int, repeat: int) -> None:
    volume, labels = ct_full_model()
    class_ids = [int(v) for v in np.unique(labels) if v]
    prompts = slice_boxes(labels, class_ids)
    busiest = np.argsort(-prompts.present.sum(axis=0), kind="stable")[:slices]
    depths = sorted(int(d) for d in busiest)
    images, (h, w) = prepare_slices(volume, depths)
    cpu = torch.device("cpu")
    model = load_litemedsam(bundled_weights_file(), cpu)  # exported as loaded; eager gets its own copy (channels_last)
    runners = {
        label: build_runners(load_litemedsam(bundled_weights_file(), cpu) if runtime == "torch" else model, cpu, runtime, precision,
                             bundled_weights_sha256())
        for label, runtime, precision in VARIANTS
    }
    encoder_gflop = gflop(model.image_encoder, images[:1])
    print(f"\nEncoder: {len(depths)} real CT slices (ct_full_model's busiest), {encoder_gflop:.1f} GFLOP a slice, "
          f"{torch.get_num_threads()} threads, best of {repeat}")
    print("| runtime | s/slice | GFLOP/s | vs eager | max abs Δ embedding | image-mode abs ΔS |")
    print("|---|---|---|---|---|---|")
    embeddings: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    for label, _, _ in VARIANTS:
        seconds[label], embeddings[label] = best_of(repeat, lambda encoder=runners[label][0]: torch.stack(encoder(images)))
    reference_s = semantic_scale(embeddings["eager"].reshape(1, len(depths), -1)).item()
    for label, _, _ in VARIANTS:
        per_slice = seconds[label] / len(depths)
        diff = (embeddings[label] - embeddings["eager"]).abs().max().item()
        ds = abs(semantic_scale(embeddings[label].reshape(1, len(depths), -1)).item() - reference_s)
        print(f"| {label} | {per_slice:.3f} | {encoder_gflop / per_slice:.0f} | {seconds['eager'] / seconds[label]:.2f}x | {diff:.1e} | {ds:.1e} |")

    # Decoder: the boxes of the encoded slices (at most boxes_wanted), on the eager embeddings.
    on = {d: i for i, d in enumerate(depths)}
    box_class, box_depth = np.nonzero(prompts.present[:, depths])
    box_depth = np.array(depths)[box_depth]
    keep = np.arange(min(len(box_class), boxes_wanted))
    box_class, box_depth = box_class[keep], box_depth[keep]
    scale = INPUT_SIZE / max(volume.shape[1:])
    boxes = torch.from_numpy(prompts.boxes[box_class, box_depth] * scale).float()
    box_slice = torch.tensor([on[int(d)] for d in box_depth])
    stacked = embeddings["eager"]
    decoder_gflop = gflop(BoxDecoder(model), stacked[:1], box_slice[:1] * 0, boxes[:1])
    print(f"\nDecoder: {len(boxes)} real boxes on those slices, {decoder_gflop:.1f} GFLOP a box, calls of {DECODER_BOXES} boxes")
    print("| runtime | s/box | GFLOP/s | vs eager per slice | max per-class abs ΔS |")
    print("|---|---|---|---|---|")
    def eager_per_slice() -> torch.Tensor:
        """The decoder as it ran before: one call per slice with that slice's boxes."""
        out = torch.zeros(len(boxes), INPUT_SIZE, INPUT_SIZE)
        dense_pe = model.prompt_encoder.get_dense_pe()
        with torch.inference_mode():
            for index in range(len(depths)):
                chosen = (box_slice == index).nonzero()[:, 0]
                if len(chosen):
                    sparse, dense = model.prompt_encoder(points=None, boxes=boxes[chosen][:, None], masks=None)
                    logits, _ = model.mask_decoder(image_embeddings=stacked[index : index + 1], image_pe=dense_pe,
                                                              sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                                              multimask_output=False)
                    out[chosen] = logits[:, 0]
        return out

    def batched(decoder) -> torch.Tensor:
        return torch.cat([decoder(stacked, box_slice[i : i + DECODER_BOXES], boxes[i : i + DECODER_BOXES])
                          for i in range(0, len(boxes), DECODER_BOXES)])

    rows = {"eager per slice": eager_per_slice}
    rows.update({("eager batched" if label == "eager" else label): (lambda d=runners[label][1]: batched(d)) for label, _, _ in VARIANTS})
    logits, timings = {}, {}
    for label, run in rows.items():
        timings[label], logits[label] = best_of(repeat, run)

    def class_s(masks: torch.Tensor) -> np.ndarray:
        z = torch.zeros(len(class_ids), len(depths), h * w)
        z[torch.from_numpy(box_class), box_slice] = masks[:, :h, :w].reshape(len(masks), -1)
        present = z.abs().amax(dim=2) > 0
        return class_spectra(z, present).values.numpy()

    reference = class_s(logits["eager per slice"])
    for label in rows:
        per_box = timings[label] / len(boxes)
        ds = np.nanmax(np.abs(class_s(logits[label]) - reference))
        print(f"| {label} | {per_box:.4f} | {decoder_gflop / per_box:.0f} | {timings['eager per slice'] / timings[label]:.2f}x | {ds:.1e} |")


def one_case(case: str, runtime: str, precision: str) -> dict:
    """Score one case in this process (fresh image: the encoder runs); its figures as a dict."""
    spec = case_spec(case)
    started = time.perf_counter()
    scorer = CaseScorer(ScoreSettings(device="cpu", runtime=runtime, precision=precision))
    _ = scorer.backend
    load = time.perf_counter() - started
    key, image_hash = scorer.case_key(spec)
    record, _, _ = scorer.score(spec, key, image_hash)
    return {
        "load": load,
        "timings": record.timings,
        "boxes": sum(c.rows for c in record.classes),
        "slices": record.slices_encoded,
        "S": {c.name: c.S for c in record.classes},
        "runtime": record.runtime,
        "peak_rss_gib": own_peak_rss_gib(),
    }


def own_peak_rss_gib() -> float:
    """This process's peak RSS (VmHWM): unlike ru_maxrss, Linux does not carry it over from the parent across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def case_spec(case: str) -> CaseSpec:
    if case == "dicom_ct":
        series, label = fetch_dicom_case(DICOM)  # its label is stored with the y axis flipped: load_case orients both
        names = read_label_names(SAMPLE / "labels_total.json")
        return CaseSpec("dicom_ct", series, label, names)
    return {s.case_id: s for s in discover_cases(fetch_sample_cohort(SAMPLE))}[case]


def cases(names: list[str], runtimes: list[str]) -> None:
    print(f"\nWhole cases, one fresh process each ({torch.get_num_threads()} threads; exported models cached), fp32")
    print("| case | runtime | model load s | io s | encoder s (s/slice) | decoder s (s/box) | spectrum s | total s | vs torch | max per-class abs ΔS | peak RSS GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in names:
        figures = {}
        for runtime in runtimes:
            command = [sys.executable, __file__, "--one-case", case, runtime, "fp32", "--dicom-folder", str(DICOM)]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                print(f"| {case} | {runtime} | failed: {result.stderr.strip().splitlines()[-1]} |")
                continue
            figures[runtime] = json.loads(result.stdout.strip().splitlines()[-1])
        base = figures.get("torch")
        for runtime, f in figures.items():
            t = f["timings"]
            ratio = f"{base['timings']['total'] / t['total']:.2f}x" if base else "-"
            ds = max((abs(s - base["S"][name]) for name, s in f["S"].items() if s is not None and base["S"].get(name) is not None), default=float("nan")) if base else float("nan")
            print(f"| {case} ({f['slices']} slices, {f['boxes']} boxes) | {f['runtime']['name']} {f['runtime']['version']} | {f['load']:.1f} | {t['io']:.1f} | "
                  f"{t['encoder']:.1f} ({t['encoder'] / max(f['slices'], 1):.2f}) | {t['decoder']:.1f} ({t['decoder'] / max(f['boxes'], 1):.3f}) | "
                  f"{t['spectrum']:.2f} | {t['total']:.1f} | {ratio} | {ds:.1e} | {f['peak_rss_gib']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=4, help="encoder slices (default: 4)")
    parser.add_argument("--boxes", type=int, default=48, help="decoder boxes at most (default: 48)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repeats after a warm-up; the best counts (default: 1)")
    parser.add_argument("--cases", nargs="+", default=["ct_full_model", "dicom_ct"], help="whole cases (sample case ids or dicom_ct)")
    parser.add_argument("--case-runtimes", nargs="+", default=["torch", "openvino", "onnxruntime"])
    parser.add_argument("--dicom-folder", type=Path, help="where the DICOM case is fetched to (default: Testing/data/dicom_ct)")
    parser.add_argument("--no-cases", action="store_true", help="only the encoder and decoder tables")
    parser.add_argument("--one-case", nargs=3, metavar=("CASE", "RUNTIME", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DICOM
    DICOM = args.dicom_folder or DICOM
    if args.one_case:
        print(json.dumps(one_case(*args.one_case)))
        return
    components(args.slices, args.boxes, args.repeat)
    if not args.no_cases:
        cases(args.cases, args.case_runtimes)
    print(f"\npeak RSS of this process (component tables): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
