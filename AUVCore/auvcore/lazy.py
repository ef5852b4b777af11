"""Names a package exports but loads on first use, so importing it stays light (no torch until needed).

Example:
    >>> __getattr__ = lazy_exports("json", {"JSONDecoder": "decoder"})
    >>> __getattr__("JSONDecoder").__name__
    'JSONDecoder'
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name in ``exports`` is read from its submodule when first asked for."""

    def load(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return load
