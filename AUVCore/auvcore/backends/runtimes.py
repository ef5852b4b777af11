"""Inference runtimes for exported models: which one runs, at which precision, and how it is called.

``torch`` runs the PyTorch modules as they are (eager, the reference; the only
runtime on CUDA). ``openvino`` and ``onnxruntime`` run the graphs exported
from the loaded weights (:mod:`auvcore.backends.export_cache`) on the CPU,
where they use the cores about twice as well as eager PyTorch
(``Testing/benchmarks/runtime_speed.py``). ``auto`` is torch on CUDA and, on
the CPU, :data:`CPU_AUTO`, the faster one measured on the reference machine.

Example:
    >>> import torch
    >>> resolve_runtime("auto", torch.device("cuda"))
    'torch'
    >>> resolve_runtime("tensorrt", torch.device("cpu"))
    Traceback (most recent call last):
    ...
    ValueError: unknown runtime 'tensorrt'; choose one of auto, torch, openvino, onnxruntime
"""

from __future__ import annotations

import functools
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from ..runtime_choices import PRECISIONS, RUNTIMES, Precision

Outputs = Literal["first", "all"]
#: The CPU runtime ``auto`` picks: OpenVINO measured 1.2-1.7x ONNX Runtime on the encoder here.
CPU_AUTO = "openvino"
#: The runtimes' distribution names on the package registry.
_DISTRIBUTIONS = {"torch": "torch", "openvino": "openvino", "onnxruntime": "onnxruntime"}


def runtime_available(runtime: str) -> bool:
    """Whether the runtime's package is installed (looked up without importing it)."""
    return find_spec(runtime) is not None


def runtime_version(runtime: str) -> str:
    """The installed version of a runtime's package, e.g. ``'1.32.0'`` for onnxruntime."""
    return metadata.version(_DISTRIBUTIONS[runtime])


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """The concrete runtime for ``runtime`` on ``device``; a clear ValueError when it cannot run there."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "auto":
        if device.type != "cpu":
            return "torch"
        return next((name for name in (CPU_AUTO, "onnxruntime", "openvino") if runtime_available(name)), "torch")
    if runtime != "torch" and device.type != "cpu":
        raise ValueError(f"--runtime {runtime} runs on the CPU; with --device {device.type} use --runtime torch (or auto)")
    if not runtime_available(runtime):
        raise ValueError(f"--runtime {runtime} needs the {_DISTRIBUTIONS[runtime]} package: pip install {_DISTRIBUTIONS[runtime]}")
    return runtime


def supports_bf16(runtime: str, device: torch.device) -> bool:
    """Whether ``runtime`` computes in bfloat16 on ``device`` (a CPU with AVX-512 BF16 or AMX, or such a GPU)."""
    if runtime == "onnxruntime":
        return False  # its CPU kernels have no bfloat16 convolutions or matmuls
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if runtime == "openvino":
        return "BF16" in _openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_precision(precision: str, runtime: str, device: torch.device) -> None:
    """ValueError unless ``precision`` is known and ``runtime`` supports it on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and not supports_bf16(runtime, device):
        raise ValueError(f"--precision bf16 is not supported by --runtime {runtime} on this {device.type.upper()}; use fp32")


class CompiledModel(Protocol):
    """An exported graph ready to run: named numpy inputs in, its first output (or all of them) out."""

    def __call__(self, inputs: dict[str, np.ndarray]) -> Any: ...


@functools.lru_cache(maxsize=1)
def _openvino_core():
    import openvino

    return openvino.Core()


class OpenVINOModel:
    """An ONNX graph compiled by OpenVINO for the CPU.

    ``INFERENCE_PRECISION_HINT`` is set explicitly (OpenVINO's CPU default is
    bf16 where the CPU has it, which moves S). The compiled blob is cached in
    ``blob_cache`` by OpenVINO itself, keyed by the graph, the device and
    these properties, so a second process skips the compilation.
    """

    def __init__(self, onnx_path: Path, precision: Precision, threads: int, blob_cache: Path, outputs: Outputs = "first") -> None:
        self.outputs = outputs
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": threads,
            # One folder per precision: OpenVINO 2026.4 crashes running an f32 and a bf16 model of one
            # graph compiled from a shared cache folder in one process.
            "CACHE_DIR": str(blob_cache / precision),
        }
        self._compiled = _openvino_core().compile_model(str(onnx_path), "CPU", config)
        self._request = self._compiled.create_infer_request()

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray | list[np.ndarray]:
        # The request reuses its output buffers on the next call: copy them out.
        results = self._request.infer(inputs)
        if self.outputs == "first":
            return np.array(results[0], copy=True)
        return [np.array(results[i], copy=True) for i in range(len(results))]


class OnnxRuntimeModel:
    """An ONNX graph in an ONNX Runtime CPU session (fp32 only)."""

    def __init__(self, onnx_path: Path, threads: int, outputs: Outputs = "first") -> None:
        import onnxruntime

        self.outputs = outputs
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # its constant-folding notes are not the user's concern
        self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray | list[np.ndarray]:
        results = self._session.run(None, inputs)
        return results[0] if self.outputs == "first" else results


def load_compiled(runtime: str, onnx_path: Path, precision: Precision, blob_cache: Path, outputs: Outputs = "first") -> CompiledModel:
    """``onnx_path`` ready to run in ``runtime`` (``openvino`` or ``onnxruntime``) with torch's thread count.

    ``outputs``: ``first`` returns the graph's first output, ``all`` a list of every output.
    """
    threads = torch.get_num_threads()
    if runtime == "openvino":
        return OpenVINOModel(onnx_path, precision, threads, blob_cache, outputs)
    if runtime == "onnxruntime":
        return OnnxRuntimeModel(onnx_path, threads, outputs)
    raise ValueError(f"{runtime!r} does not run exported graphs; use openvino or onnxruntime")
