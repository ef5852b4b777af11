"""Training speed of the bundled trainer: steps/s and peak memory for the default patch.

Usage: python Testing/benchmarks/train_speed.py [--device cpu|cuda] [--steps 5] [--no-duo]
       [--backbone dynunet] [--patch 32,112,128] [--batch 2] [--threads N]

Builds the trainer on the real sample cohort (the default patch is the one
``auv train`` plans for it), runs one warm-up step and then ``--steps`` timed
steps, and prints one line: steps/s, seconds/step, and the peak memory (the
process's peak resident set on the CPU; peak allocated device memory on CUDA).
Run it once with and once without ``--no-duo`` to see DUO's overhead.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from auvcore.commands.train import parse_patch
from auvcore.duo.distributed import start
from auvcore.duo.trainer import TrainConfig, Trainer
from auvcore.sample_data import fetch_sample_cohort

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--duo", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--backbone", choices=("dynunet", "swinunetr"), default="dynunet")
    parser.add_argument("--patch", type=parse_patch, help="default: the patch auv train plans for the sample cohort")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = fetch_sample_cohort(SAMPLE_DIR)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(dataset=str(manifest), out=out, backbone=args.backbone, duo=args.duo, epochs=1,
                             steps_per_epoch=args.steps + 1, batch=args.batch, patch=args.patch, device=args.device,
                             val_fraction=0.0, base_filters=args.base_filters)
        trainer = Trainer(config, start(args.device))
        device = trainer.context.device
        batches = list(trainer.batches(epoch=0))
        trainer.train_step(*batches[0])  # warm-up: allocator, cuDNN autotuning
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        for image, label in batches[1:]:
            trainer.train_step(image, label)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / args.steps
        if device.type == "cuda":
            memory = f"peak device memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB ({torch.cuda.get_device_name()})"
        else:
            rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            memory = f"peak RSS {rss_kib / 2**20:.2f} GiB ({torch.get_num_threads()} threads)"
    print(f"{args.backbone} DUO {'on' if args.duo else 'off'} patch {trainer.plan.patch} batch {args.batch} "
          f"{len(trainer.plan.classes)} classes on {device}: {1 / seconds:.3f} steps/s ({seconds:.2f} s/step), {memory}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
