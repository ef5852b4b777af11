"""nnU-Net trainers at a benchmark's budget: nnU-Net's own and nnUNetTrainerDUO, seeded, for ``nnunet_curation.py``.

nnU-Net finds them when this folder is in ``nnUNet_extTrainer``. The budget comes from the environment the
benchmark sets (``AUV_BENCH_EPOCHS``, ``AUV_BENCH_ITERATIONS``, ``AUV_BENCH_VAL_ITERATIONS``, ``AUV_BENCH_LR``,
``AUV_BENCH_SEED``); nnU-Net's final validation is skipped, since the benchmark segments its own clean test
cases with ``nnUNetv2_predict``.
"""

import os
import random

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from auvcore.nnunet.trainers import nnUNetTrainerDUO


class _Budget:
    """Epochs and iterations from the environment; the seed of initialisation and augmentation too."""

    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("AUV_BENCH_EPOCHS", "5"))
        self.num_iterations_per_epoch = int(os.environ.get("AUV_BENCH_ITERATIONS", "50"))
        self.num_val_iterations_per_epoch = int(os.environ.get("AUV_BENCH_VAL_ITERATIONS", "2"))
        self.initial_lr = float(os.environ.get("AUV_BENCH_LR", self.initial_lr))
        seed = int(os.environ.get("AUV_BENCH_SEED", "0"))
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def perform_actual_validation(self, save_probabilities=False):
        self.print_to_log_file("final validation skipped: the benchmark predicts its test cases")


class nnUNetTrainer_AUVBudget(_Budget, nnUNetTrainer):
    """nnU-Net's own trainer at the benchmark's budget (the arms without DUO)."""


class nnUNetTrainerDUO_AUVBudget(_Budget, nnUNetTrainerDUO):
    """nnUNetTrainerDUO at the benchmark's budget (the DUO arm)."""
