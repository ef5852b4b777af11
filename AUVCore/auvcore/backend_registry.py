"""Which foundation-model backbones exist, by name, without PyTorch (``auv --backbone`` lists them).

The built-in backbones are named here with the class that implements each;
:func:`register_backend` adds one. :func:`auvcore.backends.create_backend`
builds them; only it loads torch and the model code.

Example:
    >>> available_backends()[:2]
    ['litemedsam', 'medsam2']

Add a backbone by registering a factory that takes ``device`` and
``checkpoint`` keyword arguments and returns a
:class:`~auvcore.backends.base.FoundationBackend`::

    register_backend("mymodel", lambda device, checkpoint: MyBackend(device, checkpoint))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .backends.base import FoundationBackend

BackendFactory = Callable[..., "FoundationBackend"]

#: name -> "module:class" of the built-in backends, imported only when asked for (sam2 initialises Hydra on import).
BUILTIN_BACKENDS: dict[str, str] = {
    "litemedsam": "auvcore.backends.litemedsam:LiteMedSAMBackend",
    "medsam2": "auvcore.backends.medsam2:MedSAM2Backend",
}
#: name -> factory of the backends added by :func:`register_backend`.
REGISTERED_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``factory(device=..., checkpoint=...)`` available as backbone ``name``."""
    REGISTERED_BACKENDS[name] = factory


def available_backends() -> list[str]:
    """Names that :func:`auvcore.backends.create_backend` accepts."""
    return sorted(set(BUILTIN_BACKENDS) | set(REGISTERED_BACKENDS))
