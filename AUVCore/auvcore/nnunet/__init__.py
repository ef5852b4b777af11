"""DUO and AUV-weighted training inside nnU-Net v2 (the ``auvcore[nnunet]`` extra)."""
