"""Foundation-model backends and the registry that builds them by name.

Example:
    >>> from auvcore.backends import available_backends
    >>> sorted(available_backends())[:2]
    ['litemedsam', 'medsam2']

Add a backbone by registering a factory that takes ``device`` and
``checkpoint`` keyword arguments and returns a :class:`FoundationBackend`::

    register_backend("mymodel", lambda device, checkpoint: MyBackend(device, checkpoint))
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch

from ..devices import resolve_device
from .base import CaseFeatures, FoundationBackend

BackendFactory = Callable[..., FoundationBackend]

# Built-in backends are imported only when asked for: sam2 initialises Hydra on import.
_BUILTIN = {
    "litemedsam": "auvcore.backends.litemedsam:LiteMedSAMBackend",
    "medsam2": "auvcore.backends.medsam2:MedSAM2Backend",
}
_REGISTERED: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory(device=..., checkpoint=...)`` available as backbone ``name``."""
    _REGISTERED[name] = factory


def available_backends() -> list[str]:
    """Names that :func:`create_backend` accepts."""
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def create_backend(
    name: str, device: str | torch.device = "auto", checkpoint: str | None = None, **options: object
) -> FoundationBackend:
    """Build the backend registered as ``name`` on ``device``; ``options`` go to its constructor
    (e.g. ``compile=True`` for litemedsam)."""
    if name in _REGISTERED:
        return _REGISTERED[name](device=resolve_device(device), checkpoint=checkpoint, **options)
    if name not in _BUILTIN:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(available_backends())}")
    module_name, class_name = _BUILTIN[name].split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class(device=resolve_device(device), checkpoint=checkpoint, **options)


__all__ = [
    "CaseFeatures",
    "FoundationBackend",
    "available_backends",
    "create_backend",
    "register_backend",
    "resolve_device",
]
