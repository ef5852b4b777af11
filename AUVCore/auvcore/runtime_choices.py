"""The values of ``--runtime`` and ``--precision``, without PyTorch (the settings check them).

What each runtime does, and where it can run: :mod:`auvcore.backends.runtimes`.

Example:
    >>> RUNTIMES
    ('auto', 'torch', 'openvino', 'onnxruntime')
"""

from __future__ import annotations

from typing import Literal

Runtime = Literal["auto", "torch", "openvino", "onnxruntime"]
Precision = Literal["fp32", "bf16"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "openvino", "onnxruntime")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
