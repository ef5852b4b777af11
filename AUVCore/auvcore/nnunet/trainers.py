"""nnU-Net v2 trainers with DUO and with AUV class weights: nnU-Net's pipeline, our loss.

Everything but the loss is nnU-Net's: its plans, network, data loading, augmentation,
deep supervision, SGD with the poly schedule, checkpoints, validation, DDP. nnU-Net finds
these trainers through its ``nnUNet_extTrainer`` variable (:mod:`auvcore.nnunet.discovery`);
``nnUNetv2_predict`` then loads their checkpoints, whose ``network_weights`` are nnU-Net's
own network (the noise heads are kept apart, in ``<checkpoint>.duo.pth`` beside it, for
``--c`` to resume).

* :class:`nnUNetTrainerDUO`: DUO as ``auv train`` runs it (form ``disagree``, warm-up 0.4 of
  the epochs: :class:`~auvcore.duo.config.TrainConfig`), on each deep-supervision output
  with nnU-Net's output weights, a noise head per output (:mod:`.heads`), the
  background logit held at 0 (:mod:`.losses`).
* :class:`nnUNetTrainerAUVWeighted`: nnU-Net's Dice + CE with class weights from the
  foundation model's S of the batch's cases (``auv_scales.json``, written by
  ``auv nnunet export``), mapped as DUO maps S (:func:`auvcore.duo.weights.weights_from_scales`).
* ``..._Paper``: the paper's schedule (SGD, initial lr 0.01, poly, 100 epochs); nnU-Net's
  defaults otherwise (1000 epochs).

Subclass to change a setting, as nnU-Net's own variants do (``duo_form``,
``duo_warmup``, ``num_epochs`` ...).

Example (shell):
    export nnUNet_extTrainer=$(auv nnunet trainer-path)
    nnUNetv2_train 501 2d 0 -tr nnUNetTrainerDUO
    nnUNetv2_predict -i imagesTs -o seg -d 501 -c 2d -f 0 -tr nnUNetTrainerDUO
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from nnunetv2.paths import nnUNet_raw
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..duo.config import NOISE_FORMS, TrainConfig
from ..duo.weights import DEFAULT_TEMPERATURE, weights_from_scales
from ..results.progress import format_nnunet_plan
from .heads import FeatureTap, NoiseHeads, seg_layers
from .losses import ForegroundDUOLoss, WeightedDiceCELoss
from .scales import SCALES_FILE, CaseScales

#: The paper's schedule (Table 2): SGD, initial lr 0.01, poly, 100 epochs.
PAPER_EPOCHS = 100
PAPER_LR = 1e-2
#: Suffix of the file beside an nnU-Net checkpoint that holds DUO's noise heads.
HEADS_SUFFIX = ".duo.pth"


class _AUVTrainer(nnUNetTrainer):
    """What both trainers share: one class per label (no regions, no ignore label) and the plan line for progress."""

    def initialize(self) -> None:
        manager = self.label_manager
        if manager.has_regions or manager.has_ignore_label:
            raise ValueError(f"{type(self).__name__} trains one output per class; dataset "
                             f"{self.plans_manager.dataset_name} declares {'regions' if manager.has_regions else 'an ignore label'}")
        super().initialize()

    @property
    def num_classes(self) -> int:
        return len(self.label_manager.foreground_labels)

    def _deep_supervision(self, level_loss: nn.Module) -> nn.Module:
        """``level_loss`` on every output with nnU-Net's weights, as nnU-Net's own ``_build_loss`` wraps its loss."""
        nnunet_loss = super()._build_loss()
        if isinstance(nnunet_loss, DeepSupervisionWrapper):
            return DeepSupervisionWrapper(level_loss, nnunet_loss.weight_factors)
        return level_loss

    def on_train_start(self) -> None:
        super().on_train_start()
        self.print_to_log_file(format_nnunet_plan(self.num_epochs, self.num_iterations_per_epoch))


class nnUNetTrainerDUO(_AUVTrainer):
    """nnU-Net with DUO's loss (S weights from its own logits, the label purified by a noise head per output)."""

    duo_form: str = TrainConfig.duo_form
    duo_warmup: float = TrainConfig.duo_warmup

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.noise_heads: NoiseHeads | None = None
        self.heads: nn.Module | None = None  # the noise heads, wrapped for DDP when training on several GPUs
        self.tap: FeatureTap | None = None
        self.level_loss: ForegroundDUOLoss | None = None

    def _do_i_compile(self) -> bool:
        return False  # the feature taps are Python hooks, which torch.compile would break the graph on

    def configure_optimizers(self):
        """nnU-Net's optimizer and schedule, with the noise heads added as a parameter group (same settings)."""
        network = self.network
        with torch.no_grad():  # the background logit stays exactly 0: zero weights that no loss term reaches
            for layer in seg_layers(network):
                layer.weight[0].zero_()
                if layer.bias is not None:
                    layer.bias[0].zero_()
        self.tap = FeatureTap(network)
        if self.duo_form in NOISE_FORMS:
            self.noise_heads = NoiseHeads(self.tap.feature_channels(), self.num_classes).to(self.device)
            self.heads = (DistributedDataParallel(self.noise_heads, device_ids=[self.local_rank], find_unused_parameters=True)
                          if self.is_ddp else self.noise_heads)
        optimizer, scheduler = super().configure_optimizers()
        if self.noise_heads is not None:
            optimizer.add_param_group({"params": list(self.noise_heads.parameters())})
        return optimizer, scheduler

    def _build_loss(self) -> nn.Module:
        self.level_loss = ForegroundDUOLoss(self.num_classes, self.duo_form)  # type: ignore[arg-type]
        assert self.tap is not None  # configure_optimizers, which nnU-Net's initialize calls first, made it
        return _DUOLoss(self._deep_supervision(self.level_loss), self.tap, self.heads)

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        assert self.level_loss is not None
        self.level_loss.purifying = self.current_epoch >= round(self.duo_warmup * self.num_epochs)
        self.level_loss.noise_peak = 0.0

    def on_train_start(self) -> None:
        super().on_train_start()
        self.print_to_log_file(f"DUO: form {self.duo_form}, warm-up {round(self.duo_warmup * self.num_epochs)} of "
                               f"{self.num_epochs} epochs, a noise head on each of "
                               f"{len(self.noise_heads.heads) if self.noise_heads else 0} outputs")

    def on_epoch_end(self) -> None:
        if self.noise_heads is not None and self.level_loss is not None:
            self.print_to_log_file(f"DUO: eps_hat {float(self.noise_heads.heads[0].scale().detach()):.4f}, "
                                   f"max |n(x)| {self.level_loss.noise_peak:.4f}, "
                                   f"purifying {self.level_loss.purifying}")
        super().on_epoch_end()

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.local_rank == 0 and not self.disable_checkpointing and self.noise_heads is not None:
            torch.save({"noise_heads": self.noise_heads.state_dict(), "duo_form": self.duo_form},
                       heads_file(filename))

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        if self.noise_heads is not None and isinstance(filename_or_checkpoint, str):
            path = heads_file(filename_or_checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist: the noise heads of {filename_or_checkpoint} are needed "
                                        "to continue a DUO training")
            saved = torch.load(path, map_location=self.device, weights_only=True)
            self.noise_heads.load_state_dict(saved["noise_heads"])


class _DUOLoss(nn.Module):
    """nnU-Net's ``loss(output, target)``: the noise heads on the features of that forward pass, then DUO on every output."""

    def __init__(self, deep_supervision: nn.Module, tap: FeatureTap, heads: nn.Module | None) -> None:
        super().__init__()
        self.deep_supervision, self.tap, self.heads = deep_supervision, tap, heads

    def forward(self, output, target) -> torch.Tensor:
        listed = isinstance(output, (list, tuple))
        outputs, targets = (list(output), list(target)) if listed else ([output], [target])
        features = self.tap.take(len(outputs))
        noises, scales = self.heads(features) if self.heads is not None else ([None] * len(outputs), [None] * len(outputs))
        if listed:
            return self.deep_supervision(outputs, targets, noises, scales)
        return self.deep_supervision(outputs[0], targets[0], noises[0], scales[0])


def heads_file(checkpoint: str | Path) -> Path:
    """Where the noise heads of an nnU-Net checkpoint lie: ``checkpoint_final.pth`` -> ``checkpoint_final.duo.pth``."""
    path = Path(checkpoint)
    return path.with_name(path.stem + HEADS_SUFFIX)


class nnUNetTrainerAUVWeighted(_AUVTrainer):
    """nnU-Net's Dice + CE with class weights from the S of each batch's cases (``auv_scales.json``); no noise head."""

    temperature: float = DEFAULT_TEMPERATURE

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.scales: CaseScales | None = None
        self.level_loss: WeightedDiceCELoss | None = None

    def initialize(self) -> None:
        super().initialize()
        self.scales = read_case_scales(self.plans_manager.dataset_name, self.preprocessed_dataset_folder_base)
        labels = [name for name, value in sorted(self.dataset_json["labels"].items(), key=lambda item: item[1]) if value != 0]
        if list(self.scales.classes) != labels:
            raise ValueError(f"{SCALES_FILE} holds the classes {list(self.scales.classes)}, dataset.json {labels}: "
                             "export the dataset again")

    def _build_loss(self) -> nn.Module:
        self.level_loss = WeightedDiceCELoss(self.num_classes, bool(self.configuration_manager.batch_dice), ddp=self.is_ddp)
        return self._deep_supervision(self.level_loss)

    def class_weights(self, keys) -> torch.Tensor:
        """The weight per class for a batch of cases (``keys``: nnU-Net case identifiers)."""
        assert self.scales is not None
        scales = torch.from_numpy(self.scales.batch_scales([str(k) for k in keys]))
        return weights_from_scales(scales, self.temperature).to(self.device)

    def train_step(self, batch: dict) -> dict:
        assert self.level_loss is not None
        self.level_loss.weights = self.class_weights(batch["keys"])
        return super().train_step(batch)

    def validation_step(self, batch: dict) -> dict:
        assert self.level_loss is not None
        self.level_loss.weights = self.class_weights(batch["keys"])
        return super().validation_step(batch)


def read_case_scales(dataset_name: str, preprocessed: str | None) -> CaseScales:
    """``auv_scales.json`` of a dataset: beside its raw ``dataset.json``, else in its preprocessed folder.

    Raises:
        InputError: naming the places looked in, when neither holds it.
    """
    from ..errors import InputError

    places = [Path(str(nnUNet_raw)) / dataset_name / SCALES_FILE] if nnUNet_raw.is_set() else []
    if preprocessed:
        places.append(Path(preprocessed) / SCALES_FILE)
    for place in places:
        if place.is_file():
            return CaseScales.read(place)
    raise InputError(places[0] if places else SCALES_FILE,
                     f"does not exist{' (nor ' + ', '.join(map(str, places[1:])) + ')' if len(places) > 1 else ''}: "
                     f"{nnUNetTrainerAUVWeighted.__name__} needs the per-case S that `auv nnunet export` writes beside "
                     "dataset.json")


class nnUNetTrainerDUO_Paper(nnUNetTrainerDUO):
    """:class:`nnUNetTrainerDUO` with the paper's schedule: SGD, lr 0.01, poly, 100 epochs."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.initial_lr = PAPER_EPOCHS, PAPER_LR


class nnUNetTrainerAUVWeighted_Paper(nnUNetTrainerAUVWeighted):
    """:class:`nnUNetTrainerAUVWeighted` with the paper's schedule: SGD, lr 0.01, poly, 100 epochs."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.initial_lr = PAPER_EPOCHS, PAPER_LR


TRAINERS = (nnUNetTrainerDUO, nnUNetTrainerAUVWeighted, nnUNetTrainerDUO_Paper, nnUNetTrainerAUVWeighted_Paper)

__all__ = ["TRAINERS", "heads_file", "nnUNetTrainerAUVWeighted", "nnUNetTrainerAUVWeighted_Paper", "nnUNetTrainerDUO",
           "nnUNetTrainerDUO_Paper", "read_case_scales"]
