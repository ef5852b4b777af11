"""The bundled nnU-Net-style trainer, with DUO on or off, that survives faults.

nnU-Net's recipe on MONAI parts: SGD (momentum 0.99, Nesterov, weight decay
3e-5), initial lr 0.01 with the poly schedule ``lr * (1 - epoch / epochs)^0.9``,
``steps_per_epoch`` batches of patches per epoch, gradient clipping at 12, mixed
precision on CUDA only, and sliding-window validation with Dice per class every
``val_every`` epochs on a held-out part of the cases. Deep supervision is not
used (the DUO loss is applied to the full-resolution output).

Files in the run folder (all written by rank 0):

* ``plan.json`` — classes, spacing, CT statistics, patch (see :mod:`.plan`);
* ``checkpoint_latest.pt`` — full training state, written atomically at the
  end of every epoch and on a clean stop (SIGTERM / SIGINT);
* ``model.pt`` — weights, plan and backbone config for ``auv predict``;
* ``metrics.jsonl`` — one JSON line per finished epoch.

Stdout carries lines for the Slicer module to parse, e.g.::

    PROGRESS epoch=3/100 step=17/250 loss=0.812345 dice=0.4312

and a last line with ``status=done`` or ``status=stopped``.

A resumed run (``resume=True``) continues from the checkpoint, mid-epoch if it
was stopped mid-epoch, and draws the same patches an uninterrupted run would:
every patch is a function of (seed, epoch, index) only.

Example (tiny, on the CPU):
    >>> config = TrainConfig(dataset="Testing/data/sample_cohort/manifest.csv", out="/tmp/run", epochs=1, steps_per_epoch=2)  # doctest: +SKIP
    >>> train(config)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import InputError
from ..files import write_json_atomic
from ..imaging import load_case
from . import checkpoint as ckpt
from .backbones import backbone_config, build_backbone
from .case_split import select_cases, split_cases
from .config import NOISE_FORMS, RESUMABLE_OVERRIDES, TrainConfig
from .data import PatchDataset, PatchKey, load_training_cases, one_hot_channels, prepare_case
from .distributed import DistributedContext, start, stop
from .inference import class_dice, predict_probabilities
from .loss import SegmentationLoss
from .model import DUONet
from .plan import Plan, make_plan
from .run_log import METRICS, append_metrics, print_progress, truncate_metrics
from .stop_signal import StopFlag

MOMENTUM = 0.99
WEIGHT_DECAY = 3e-5
POLY_EXPONENT = 0.9
GRADIENT_CLIP = 12.0
CHECKPOINT_FORMAT = 1


def poly_lr(initial: float, epoch: int, epochs: int) -> float:
    """nnU-Net's poly schedule.

    Example:
        >>> poly_lr(0.01, 0, 100), round(poly_lr(0.01, 50, 100), 6)
        (0.01, 0.005359)
    """
    return initial * (1 - epoch / epochs) ** POLY_EXPONENT


@dataclass
class _RunState:
    epoch: int = 0  # epochs finished, or the epoch in progress when stopped mid-epoch
    step: int = 0  # steps done in that epoch
    loss_sum: float = 0.0
    loss_count: int = 0
    last_dice: float | None = None
    last_loss: float = math.nan  # mean loss of the last finished epoch


class Trainer:
    """One training run; use :func:`train`."""

    def __init__(self, config: TrainConfig, context: DistributedContext) -> None:
        self.context = context
        self.out = Path(config.out)
        self.state = _RunState()
        stored = self._stored_checkpoint(config)
        if stored is not None:
            overrides = {k: getattr(config, k) for k in RESUMABLE_OVERRIDES}
            config = replace(TrainConfig.from_dict(stored["config"]), **overrides, resume=True)
        self.config = config
        selection = select_cases(config)
        train_specs, val_specs, excluded = selection.train, selection.validation, selection.excluded
        loaded = [load_case(s.image, s.label) for s in train_specs]
        self.plan = Plan.from_dict(stored["plan"]) if stored else make_plan(
            train_specs, loaded, config.classes, config.patch, config.seed, config.config, config.batch,
            config.in_plane_spacing)
        # A run made before the plan held the batch has it in its config.
        self.batch = config.batch if config.batch is not None else self.plan.batch
        self.backbone = stored["backbone"] if stored else backbone_config(
            config.backbone, len(self.plan.classes), self.plan.patch, self.plan.spacing, config.base_filters)
        self.train_cases = load_training_cases(train_specs, self.plan, loaded)
        self.val_cases = [prepare_case(load_case(s.image, s.label), s, self.plan) for s in val_specs]
        if context.is_main:
            print(f"auv train: {len(train_specs)} training and {len(val_specs)} validation cases, "
                  f"{len(excluded)} excluded, {len(self.plan.classes)} classes, {self.plan.config} patch {self.plan.patch} "
                  f"x {self.batch}, "
                  f"spacing {tuple(round(s, 3) for s in self.plan.spacing)}, DUO {'on' if config.duo else 'off'}\n"
                  f"auv train: {selection.labels}", flush=True)

        torch.manual_seed(config.seed)
        self.noise_head = config.duo and config.duo_form in NOISE_FORMS
        self.model = DUONet(build_backbone(self.backbone), len(self.plan.classes), noise=self.noise_head).to(context.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY)
        self.amp = config.amp and context.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.loss = SegmentationLoss(duo=config.duo, form=config.duo_form)
        #: Epochs before DUO's noise head purifies the labels.
        self.warmup_epochs = round(config.duo_warmup * config.epochs)
        if stored:
            self._restore(stored)
        self.network = DistributedDataParallel(self.model) if context.active else self.model
        self.dataset = PatchDataset(self.train_cases, self.plan.patch, config.seed)

    # -- checkpoints -------------------------------------------------------
    def _stored_checkpoint(self, config: TrainConfig) -> dict[str, Any] | None:
        latest = self.out / ckpt.LATEST
        if not config.resume:
            if latest.exists():
                raise InputError(self.out, "already holds a training run; pass --resume to continue it, or choose a new folder")
            return None
        if not latest.exists():
            raise InputError(latest, "does not exist, so there is no run to resume")
        stored = ckpt.load_checkpoint(latest, map_location=self.context.device)
        if stored.get("format") != CHECKPOINT_FORMAT:
            raise InputError(latest, f"has checkpoint format {stored.get('format')!r}; this auvcore writes {CHECKPOINT_FORMAT}")
        return stored

    def _restore(self, stored: dict[str, Any]) -> None:
        self.model.load_state_dict(stored["model"])
        self.optimizer.load_state_dict(stored["optimizer"])
        self.scaler.load_state_dict(stored["scaler"])
        self.state = _RunState(int(stored["epoch"]), int(stored["step"]), float(stored["loss_sum"]), int(stored["loss_count"]),
                               stored["last_dice"], float(stored["last_loss"]))

    def _model_record(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "plan": self.plan.to_dict(),
                "backbone": self.backbone, "duo": self.noise_head}  # "duo": whether the network has a noise head

    def _save(self) -> None:
        if not self.context.is_main:
            return
        record = self._model_record()
        record.update(config=self.config.to_dict(), optimizer=self.optimizer.state_dict(), scaler=self.scaler.state_dict(),
                      epoch=self.state.epoch, step=self.state.step, loss_sum=self.state.loss_sum,
                      loss_count=self.state.loss_count, last_dice=self.state.last_dice, last_loss=self.state.last_loss)
        ckpt.save_checkpoint(record, self.out / ckpt.LATEST)
        ckpt.save_checkpoint(self._model_record(), self.out / ckpt.MODEL)

    # -- data --------------------------------------------------------------
    def batches(self, epoch: int, first_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's (image, label) batches of ``epoch`` from step ``first_step`` on."""
        config, context = self.config, self.context
        samples = config.steps_per_epoch * self.batch * context.world_size
        sampler = DistributedSampler(range(samples), num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=config.seed)
        sampler.set_epoch(epoch)
        keys = [PatchKey(epoch, i) for i in sampler][first_step * self.batch :]
        loader = DataLoader(self.dataset, batch_size=self.batch, sampler=keys, num_workers=config.workers, drop_last=True)
        yield from loader

    # -- steps -------------------------------------------------------------
    def train_step(self, image: torch.Tensor, label: torch.Tensor) -> float:
        """One optimiser step on a batch; returns its loss."""
        device = self.context.device
        image = image.to(device, non_blocking=True)
        target = one_hot_channels(label.to(device, non_blocking=True), len(self.plan.classes))
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=self.amp):
            out = self.network(image)
        parts = self.loss(out.logits, target, out.noise, out.scale, purifying=self.state.epoch >= self.warmup_epochs)
        self.scaler.scale(parts.total).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRADIENT_CLIP)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(parts.total.detach())

    def _validate(self) -> dict[str, float | None]:
        per_case = []
        for case in self.val_cases:
            image = torch.as_tensor(case["image"])[None].to(self.context.device)
            probabilities = predict_probabilities(self.model, image, self.plan.patch, amp=self.amp)
            reference = one_hot_channels(torch.as_tensor(case["label"])[None], len(self.plan.classes)).to(probabilities.device)
            per_case.append(class_dice((probabilities >= 0.5).float(), reference))
        with warnings.catch_warnings():  # a class absent from every validation case has no Dice
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(np.asarray(per_case, dtype=np.float64), axis=0) if per_case else []
        return {name: (None if math.isnan(v) else float(v)) for name, v in zip(self.plan.classes, means)}

    def _mean_loss(self) -> float:
        totals = torch.tensor([self.state.loss_sum, float(self.state.loss_count)], dtype=torch.float64, device=self.context.device)
        if self.context.active:
            torch.distributed.all_reduce(totals)
        return float(totals[0] / totals[1]) if totals[1] > 0 else math.nan

    # -- the loop ----------------------------------------------------------
    def run(self) -> int:
        config, context, state = self.config, self.context, self.state
        metrics = self.out / METRICS
        if context.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.out / "plan.json", self.plan.to_dict())
            truncate_metrics(metrics, state.epoch)
        steps = config.steps_per_epoch
        with StopFlag() as stop_flag:
            while state.epoch < config.epochs:
                started = time.monotonic()
                lr = poly_lr(config.lr, state.epoch, config.epochs)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.network.train()
                for image, label in self.batches(state.epoch, state.step):
                    loss = self.train_step(image, label)
                    state.step += 1
                    state.loss_sum += loss
                    state.loss_count += 1
                    if context.is_main and (state.step % config.log_every == 0 or state.step == steps):
                        print_progress(state.epoch + 1, config.epochs, state.step, steps, loss, state.last_dice)
                    if context.any_rank(stop_flag.requested):
                        self._save()
                        if context.is_main:
                            print_progress(state.epoch + 1, config.epochs, state.step, steps, loss, state.last_dice, "stopped")
                        return stop_flag.exit_status
                dice: dict[str, float | None] | None = None
                finished = state.epoch + 1
                if self.val_cases and (finished % config.val_every == 0 or finished == config.epochs):
                    if context.is_main:
                        dice = self._validate()
                        values = [v for v in dice.values() if v is not None]
                        state.last_dice = float(np.mean(values)) if values else None
                    context.barrier()
                state.last_loss = self._mean_loss()
                state.epoch, state.step, state.loss_sum, state.loss_count = finished, 0, 0.0, 0
                self._save()
                if context.is_main:
                    record = {"epoch": finished, "loss": state.last_loss, "lr": lr, "steps": steps, "seconds": round(time.monotonic() - started, 3),
                              "dice_mean": state.last_dice if dice is not None else None, "dice": dice}
                    if self.model.noise_head is not None:
                        record["eps_hat"] = float(self.model.noise_head.scale().detach())
                    append_metrics(metrics, record)
        if context.is_main:
            print_progress(config.epochs, config.epochs, steps, steps, state.last_loss, state.last_dice, "done")
        return 0


def train(config: TrainConfig) -> int:
    """Run (or resume) one training run; returns the exit status: 0 when it finished, 128 + the signal's number
    after a clean stop on SIGTERM / SIGINT (the checkpoint is saved; ``--resume`` goes on)."""
    context = start(config.device)
    try:
        return Trainer(config, context).run()
    finally:
        stop(context)


__all__ = ["RESUMABLE_OVERRIDES", "TrainConfig", "Trainer", "poly_lr", "select_cases", "split_cases", "train"]
