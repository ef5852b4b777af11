"""The one rule that turns a ``--device`` value into a torch device, for scoring, training and prediction.

* ``auto``: the current CUDA GPU when PyTorch sees one, else the CPU;
* ``cpu``;
* ``cuda`` (the current GPU) or ``cuda:N`` (GPU number N): an
  :class:`~auvcore.errors.InputError` naming ``--device`` when PyTorch sees no
  CUDA GPU, or fewer than N + 1 of them;
* anything else is an InputError too (the scoring and training code is
  written and measured for CPUs and CUDA GPUs only).

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    auvcore.errors.InputError: --device: must be auto, cpu, cuda or cuda:N, got 'tpu'
"""

from __future__ import annotations

import torch

from .errors import InputError

#: What the error messages call the setting.
DEVICE_OPTION = "--device"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a torch device), by the rule above."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:  # torch's own message lists every device type it knows
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise InputError(DEVICE_OPTION, f"must be auto, cpu, cuda or cuda:N, got {str(device)!r}")
    if resolved.type == "cpu":
        return resolved
    if not torch.cuda.is_available():
        raise InputError(DEVICE_OPTION, f"{resolved} was asked for, but PyTorch sees no CUDA GPU; use cpu or auto")
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise InputError(DEVICE_OPTION, f"{resolved} was asked for, but PyTorch sees {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    return resolved
