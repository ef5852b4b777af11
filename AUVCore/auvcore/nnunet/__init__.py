"""DUO and AUV-weighted training inside nnU-Net v2 (the ``auvcore[nnunet]`` extra).

* :mod:`~auvcore.nnunet.export` — ``auv nnunet export``: a results folder's curated cohort as an nnU-Net raw
  dataset, with each case's S beside it (torch-free);
* :mod:`~auvcore.nnunet.scales` — ``auv_scales.json`` and a batch's class S (torch-free);
* :mod:`~auvcore.nnunet.discovery` — how nnU-Net finds the trainers (``nnUNet_extTrainer``; torch-free);
* :mod:`~auvcore.nnunet.heads`, :mod:`~auvcore.nnunet.losses` — DUO's noise heads on nnU-Net's network, the losses;
* :mod:`~auvcore.nnunet.trainers` — ``nnUNetTrainerDUO``, ``nnUNetTrainerAUVWeighted`` and their ``_Paper`` variants
  (these import nnU-Net).
"""
