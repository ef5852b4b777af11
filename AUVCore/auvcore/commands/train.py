"""``auv train``, ``auv predict`` and ``auv oof``: the bundled DUO trainer, inference, out-of-fold probabilities.

Example (shell):
    auv train Testing/data/sample_cohort/manifest.csv --out run --epochs 50 --patch 32,96,128
    auv train Dataset001_Liver --out run_filtered --exclusions results/exclusions.json --no-duo
    auv train ... --out run --resume                     # continue a killed or stopped run
    torchrun --nproc_per_node=2 -m auvcore.cli train ... # DDP (gloo on CPUs, NCCL on GPUs)
    auv predict run/model.pt case.nii.gz --out case_seg.nii.gz
    auv train --engine nnunet 501 2d 0 -tr nnUNetTrainerDUO  # nnUNetv2_train (auvcore.commands.nnunet)
    auv oof slabs/manifest.csv --out oof --folds 3 --config 2d --epochs 20   # then: auv score ... --scorers cleanlab --oof oof

Heavy imports (MONAI) happen when a command runs, so other ``auv`` commands start fast.
Every default comes from :class:`~auvcore.duo.config.TrainConfig`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from ..cli import ENGINES
from ..duo.config import DUO_FORMS, TrainConfig
from ..errors import InputError
from .curate import add_original_labels_option


def _one_or_each(text: str, kind: Callable[[str], Any], count: int, problem: str) -> list[Any]:
    """Comma-separated values of ``kind``; one value stands for all ``count``."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{problem}, got {text!r}") from None
    return values * count if len(values) == 1 else values


def parse_patch(text: str) -> tuple[int, int, int]:
    """``64``, ``32,96,128`` (slices, rows, columns), or ``1,192,192`` for the 2d configuration.

    Example:
        >>> parse_patch("64"), parse_patch("1,192,160")
        ((64, 64, 64), (1, 192, 160))
    """
    values = _one_or_each(text, int, 3, "--patch must be one or three integers")
    if len(values) != 3 or min(values[1:]) < 8 or not (values[0] == 1 or values[0] >= 8):
        raise argparse.ArgumentTypeError(f"--patch needs one or three sizes of at least 8 (a 2d patch: 1,rows,columns), got {text!r}")
    return values[0], values[1], values[2]


def parse_in_plane_spacing(text: str) -> tuple[float, float]:
    """``6`` or ``6,6``: the (rows, columns) spacing in mm to train at.

    Example:
        >>> parse_in_plane_spacing("6"), parse_in_plane_spacing("1.5,2")
        ((6.0, 6.0), (1.5, 2.0))
    """
    values = _one_or_each(text, float, 2, "--in-plane-spacing takes one or two sizes in mm")
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"--in-plane-spacing takes one or two positive sizes in mm, got {text!r}")
    return values[0], values[1]


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def fraction_argument(option: str) -> Callable[[str], float]:
    """An argparse type for a share in [0, 1) whose error names ``option``."""
    def parse(text: str) -> float:
        value = float(text)
        if not 0.0 <= value < 1.0:
            raise argparse.ArgumentTypeError(f"{option} must be in [0, 1), got {text}")
        return value
    return parse


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's settings from parsed ``auv train`` arguments."""
    return TrainConfig(
        dataset=args.dataset, out=args.out, backbone=args.backbone, config=args.config, duo=args.duo, duo_form=args.duo_form,
        duo_warmup=args.duo_warmup,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, batch=args.batch, patch=args.patch, in_plane_spacing=args.in_plane_spacing, lr=args.lr, device=args.device,
        seed=args.seed, val_every=args.val_every, val_fraction=args.val_fraction, exclusions=getattr(args, "exclusions", None),
        original_labels=getattr(args, "original_labels", False),
        classes=tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None,
        base_filters=args.base_filters, workers=args.workers, amp=args.amp, log_every=args.log_every, resume=getattr(args, "resume", False),
    )


def run_train(args: argparse.Namespace) -> int:
    from ..duo.trainer import train

    try:
        return train(train_config(args))
    except InputError:
        raise
    except (ValueError, RuntimeError) as error:  # a setting that does not fit (e.g. a SwinUNETR patch)
        print(f"auv: error: {error}", file=sys.stderr)
        return 2


def run_oof(args: argparse.Namespace) -> int:
    from ..duo.oof import make_oof

    try:
        manifest = make_oof(train_config(args), args.folds)
    except InputError:
        raise
    except (ValueError, RuntimeError) as error:  # too few cases for the folds, a setting that does not fit
        print(f"auv: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {manifest}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..duo.predict import predict_file

    written = predict_file(args.model, args.image, args.out, device=args.device, threshold=args.threshold)
    print(f"wrote {written}")
    return 0


def add_training_options(parser: argparse.ArgumentParser, val_fraction: float = TrainConfig.val_fraction, duo: bool = TrainConfig.duo) -> None:
    """The options that define a training run (``auv train`` and ``auv oof``, which defaults to no DUO and no validation)."""
    parser.add_argument("--backbone", choices=("dynunet", "swinunetr"), default=TrainConfig.backbone)
    parser.add_argument("--config", choices=("3d", "2d"), default=TrainConfig.config,
                        help="3d patches, or 2d: axial slices, practical on a CPU (default: %(default)s)")
    parser.add_argument("--duo", action=argparse.BooleanOptionalAction, default=duo, help="DUO loss (default: %(default)s)")
    parser.add_argument("--duo-form", choices=DUO_FORMS, default=TrainConfig.duo_form,
                        help="paper (SPEC's literal form), hard_dice, disagree, detached, boundary, or weights (S weights, no noise head); "
                        "default: %(default)s")
    parser.add_argument("--duo-warmup", type=fraction_argument("--duo-warmup"), default=TrainConfig.duo_warmup, metavar="FRACTION",
                        help="share of the epochs trained on the labels as given before DUO's noise head purifies them "
                        "(default: %(default)s)")
    parser.add_argument("--epochs", type=_positive(int), default=TrainConfig.epochs, help="epochs to train (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=_positive(int), default=TrainConfig.steps_per_epoch, help="optimiser steps per epoch (default: %(default)s)")
    parser.add_argument("--in-plane-spacing", type=parse_in_plane_spacing, metavar="MM[,MM]",
                        help="in-plane spacing to train at (default: the cases' median); coarser is faster on a CPU")
    parser.add_argument("--patch", type=parse_patch, help="patch size (default 3d: median resampled shape, multiple of 16, at most 128; "
                        "2d: 1 x the median slice, at most 256)")
    parser.add_argument("--batch", type=_positive(int), default=TrainConfig.batch,
                        help="patches per step, per process under torchrun (default: 2 for 3d; 2d: about a 3d batch's voxels, 2 to 32)")
    parser.add_argument("--lr", type=_positive(float), default=TrainConfig.lr, help="initial learning rate (poly schedule)")
    parser.add_argument("--device", default=TrainConfig.device, help="auto, cpu, cuda or cuda:N (default: %(default)s; under torchrun each process takes its LOCAL_RANK GPU)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--classes", help="comma-separated class names to train (default: every class in the labels)")
    parser.add_argument("--val-every", type=_positive(int), default=TrainConfig.val_every, help="validate every N epochs (and after the last)")
    parser.add_argument("--val-fraction", type=fraction_argument("--val-fraction"), default=val_fraction,
                        help="fraction of the training cases held out for validation (default: %(default)s)")
    parser.add_argument("--base-filters", type=_positive(int), default=TrainConfig.base_filters, help="filters of the first stage")
    parser.add_argument("--workers", type=int, default=TrainConfig.workers, help="data loader worker processes")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=TrainConfig.amp, help="mixed precision, on CUDA only (default: %(default)s)")
    parser.add_argument("--log-every", type=_positive(int), default=TrainConfig.log_every, help="a PROGRESS line every N steps")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a segmentation network (DynUNet/SwinUNETR) with or without DUO",
                                  description="nnU-Net-style training with DUO (SPEC §6). Writes RUN/checkpoint_latest.pt, "
                                              "RUN/model.pt, RUN/metrics.jsonl, RUN/plan.json; prints PROGRESS lines.")
    train.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                       help="bundled (this trainer, default) or nnunet: the arguments after it go to nnUNetv2_train, with the "
                            "AUV trainers (nnUNetTrainerDUO, nnUNetTrainerAUVWeighted, ..._Paper) found through "
                            "nnUNet_extTrainer, e.g. auv train --engine nnunet 501 2d 0 -tr nnUNetTrainerDUO")
    train.add_argument("dataset", help="nnU-Net raw dataset folder, a CSV manifest (case_id,image,label[,label_names]), or a "
                       "results folder of `auv score` (its cases, with their corrected labels and its exclusions.json)")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--exclusions", help="exclusion list JSON (auv filter); train on the retained cases only, with the "
                       "corrected labels of the results folder it lies in")
    add_original_labels_option(train, "train on")
    add_training_options(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.set_defaults(func=run_train)

    oof = subparsers.add_parser("oof", help="K-fold out-of-fold class probabilities of a cohort (for --scorers cleanlab)",
                                description="Train K models, each without one fold of the cases, and write every case's class "
                                            "probabilities from the model that did not see it: OUT/oof.json and OUT/probabilities/. "
                                            "Rerunning resumes. Read by `auv score --scorers cleanlab --oof OUT`.")
    oof.add_argument("dataset", help="nnU-Net raw dataset folder, or a CSV manifest (case_id,image,label[,label_names])")
    oof.add_argument("--out", required=True, help="the out-of-fold folder")
    oof.add_argument("--folds", type=_positive(int), default=5, help="number of folds, at least 2 (default: %(default)s)")
    add_training_options(oof, val_fraction=0.0, duo=False)  # confident learning reads a plain model's probabilities
    oof.set_defaults(func=run_oof)

    predict = subparsers.add_parser("predict", help="segment a volume with a trained model",
                                    description="Writes a label map with the input image's geometry.")
    predict.add_argument("model", help="model.pt, checkpoint_latest.pt or a run folder")
    predict.add_argument("image", help="the volume to segment")
    predict.add_argument("--out", required=True, help="label map to write (e.g. case_seg.nii.gz)")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    predict.add_argument("--threshold", type=float, default=0.5, help="class probability needed to label a voxel")
    predict.set_defaults(func=run_predict)
