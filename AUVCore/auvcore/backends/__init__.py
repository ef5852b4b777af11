"""Foundation-model backends and the registry that builds them by name.

Example:
    >>> from auvcore.backends import available_backends
    >>> sorted(available_backends())[:2]
    ['litemedsam', 'medsam2']

Add a backbone by registering a factory that takes ``device`` and
``checkpoint`` keyword arguments and returns a :class:`FoundationBackend`::

    register_backend("mymodel", lambda device, checkpoint: MyBackend(device, checkpoint))

The names live in :mod:`auvcore.backend_registry`, which loads without torch.
"""

from __future__ import annotations

import importlib

import torch

from ..backend_registry import BUILTIN_BACKENDS, REGISTERED_BACKENDS, BackendFactory, available_backends, register_backend
from ..devices import resolve_device
from .base import CaseFeatures, FoundationBackend
from .runtimes import check_precision, resolve_runtime

#: Backbones whose models (MedSAM2: its image encoder) the exported runtimes (openvino, onnxruntime)
#: run; the others run in torch.
EXPORTED_BACKBONES = frozenset({"litemedsam", "medsam2"})
#: Backbones whose bf16 results are unmeasured: they run fp32 only.
FP32_ONLY_BACKBONES = frozenset({"medsam2"})


def backbone_runtime(backbone: str, runtime: str, device: str | torch.device, precision: str = "fp32") -> str:
    """The runtime that runs ``backbone`` for ``--runtime runtime`` on ``device``; ValueError where it cannot.

    Example:
        >>> backbone_runtime("medsam2", "torch", "cpu")
        'torch'
    """
    resolved_device = resolve_device(device)
    if backbone in EXPORTED_BACKBONES:
        chosen = resolve_runtime(runtime, resolved_device)
    elif resolve_runtime(runtime, resolved_device) == "torch" or runtime == "auto":
        chosen = "torch"
    else:
        raise ValueError(f"--runtime {runtime}: the {backbone} backbone runs in torch only (its model is not exported); use --runtime torch or auto")
    if precision != "fp32" and backbone in FP32_ONLY_BACKBONES:
        raise ValueError(f"--precision {precision}: the {backbone} backbone runs fp32 only; use --precision fp32")
    check_precision(precision, chosen, resolved_device)
    return chosen


def create_backend(
    name: str, device: str | torch.device = "auto", checkpoint: str | None = None, **options: object
) -> FoundationBackend:
    """Build the backend registered as ``name`` on ``device``; ``options`` go to its constructor
    (e.g. ``compile=True`` for litemedsam)."""
    if name in REGISTERED_BACKENDS:
        return REGISTERED_BACKENDS[name](device=resolve_device(device), checkpoint=checkpoint, **options)
    if name not in BUILTIN_BACKENDS:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(available_backends())}")
    module_name, class_name = BUILTIN_BACKENDS[name].split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class(device=resolve_device(device), checkpoint=checkpoint, **options)


__all__ = [
    "BackendFactory",
    "CaseFeatures",
    "FoundationBackend",
    "available_backends",
    "backbone_runtime",
    "create_backend",
    "register_backend",
    "resolve_device",
]
