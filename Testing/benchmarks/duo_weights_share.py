"""The share of a training step that DUO's S-based class weights take (goal: under 10%).

Usage: python Testing/benchmarks/duo_weights_share.py [--device cpu|cuda] [--steps 3] [--threads N] [--smoke]

For the 3d and the 2d configuration with the defaults ``auv train`` plans for
the real sample cohort (DynUNet, 32 base filters, all its classes), one run:
builds the trainer, runs one warm-up step, then times ``--steps`` whole DUO
steps and, on the same batches' logits and labels, ``class_weights`` alone.
Prints per configuration: seconds per step, seconds per class-weight call, and
their ratio. ``--smoke`` runs seconds-long (4 base filters, liver and spleen,
16 x 32 x 32 and 1 x 32 x 32 patches of 2): it checks the script, its figures
mean nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from auvcore.duo.data import one_hot_channels
from auvcore.duo.distributed import start
from auvcore.duo.trainer import TrainConfig, Trainer
from auvcore.duo.weights import class_weights
from auvcore.sample_data import fetch_sample_cohort

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample_cohort"


#: What ``--smoke`` changes in the run: a network and patches small enough for a seconds-long check.
SMOKE = {"base_filters": 4, "classes": ("liver", "spleen"), "batch": 2}
SMOKE_PATCH = {"3d": (16, 32, 32), "2d": (1, 32, 32)}


def measure(config_name: str, device: str, steps: int, smoke: bool = False) -> tuple[float, float, tuple, int]:
    manifest = fetch_sample_cohort(SAMPLE_DIR)
    with tempfile.TemporaryDirectory() as out:
        small = {**SMOKE, "patch": SMOKE_PATCH[config_name]} if smoke else {}
        config = TrainConfig(dataset=str(manifest), out=out, config=config_name, device=device, val_fraction=0.0,
                             steps_per_epoch=steps + 1, log_every=10**6, **small)
        trainer = Trainer(config, start(config.device))
        device = trainer.context.device
        batches = trainer.batches(0)
        trainer.train_step(*next(batches))  # warm-up
        step_seconds, weight_seconds = 0.0, 0.0
        for _ in range(steps):
            image, label = next(batches)
            started = time.perf_counter()
            trainer.train_step(image, label)
            if device.type == "cuda":
                torch.cuda.synchronize()
            step_seconds += time.perf_counter() - started
            with torch.no_grad():
                logits = trainer.model(image.to(device)).logits
            target = one_hot_channels(label.to(device), len(trainer.plan.classes))
            started = time.perf_counter()
            class_weights(logits, target)
            if device.type == "cuda":
                torch.cuda.synchronize()
            weight_seconds += time.perf_counter() - started
        return step_seconds / steps, weight_seconds / steps, trainer.plan.patch, trainer.batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run that checks the script (its figures mean nothing)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("3d", "2d"):
        step, weights, patch, batch = measure(name, args.device, args.steps, args.smoke)
        print(f"{name}: patch {patch} x {batch}: {step:.3f} s/step, class weights {weights * 1000:.1f} ms/call, "
              f"share {weights / step:.1%}", flush=True)


if __name__ == "__main__":
    main()
