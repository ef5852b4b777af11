"""The folder ``nnUNet_extTrainer`` names (:func:`auvcore.nnunet.discovery.trainer_folder`).

nnU-Net puts this folder on ``sys.path`` and imports each module in it, looking for a
trainer class by name; its one module re-exports the AUV trainers of
:mod:`auvcore.nnunet.trainers`. Keep nothing else here: nnU-Net imports everything it finds.
"""
