"""The AUV nnU-Net trainers, where nnU-Net's ``nnUNet_extTrainer`` search finds them (see ``__init__``)."""

from auvcore.nnunet.trainers import (  # noqa: F401
    nnUNetTrainerAUVWeighted,
    nnUNetTrainerAUVWeighted_Paper,
    nnUNetTrainerDUO,
    nnUNetTrainerDUO_Paper,
)
