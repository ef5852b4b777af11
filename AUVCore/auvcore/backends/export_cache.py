"""Exported models in the user's cache folder: exported once, reused by every later run and process.

A model part (e.g. LiteMedSAM's image encoder) is exported with
``torch.onnx.export`` from the loaded weights into
``<cache>/models/<part>-<key>.onnx``, where the key hashes the weights'
SHA-256, the runtime and its version, torch's version (the exporter) and
:data:`EXPORT_FORMAT`. The file is written to a temporary name and renamed
(:func:`auvcore.files.atomic_write_bytes`) under a lock, so processes that
start together export it once and never read a half-written file.

The cache folder is ``$AUV_CACHE_DIR``, else ``$XDG_CACHE_HOME/auv``, else
``~/.cache/auv``. Deleting it is always safe.

Example:
    >>> key = export_key("litemedsam-encoder", "79d8" + "0" * 60, "openvino", "2026.4.1")
    >>> len(key), key == export_key("litemedsam-encoder", "79d8" + "0" * 60, "openvino", "2026.5.0")
    (64, False)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch
from filelock import FileLock

from ..files import atomic_write_bytes

#: Bump when the exported graphs change (their inputs, outputs or wrappers).
EXPORT_FORMAT = 1
#: How long a process waits for another one exporting the same model.
EXPORT_LOCK_TIMEOUT_S = 600


def cache_root() -> Path:
    """The user's cache folder for auvcore: ``$AUV_CACHE_DIR``, ``$XDG_CACHE_HOME/auv`` or ``~/.cache/auv``."""
    if os.environ.get("AUV_CACHE_DIR"):
        return Path(os.environ["AUV_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "auv"


def export_key(part: str, weights_sha256: str, runtime: str, runtime_version: str, source: str = "") -> str:
    """The hex digest naming one exported part: changes with the weights, the runtime or its version, and the
    ``source`` of the module exported (:func:`source_digest`), so that a changed module is never run from a graph
    exported before the change."""
    identity = {
        "part": part,
        "weights_sha256": weights_sha256,
        "runtime": runtime,
        "runtime_version": runtime_version,
        "torch": torch.__version__,
        "format": EXPORT_FORMAT,
    }
    if source:
        identity["source"] = source
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def source_digest(module: ModuleType) -> str:
    """SHA-256 of the file that defines ``module``: what an exported graph's key follows besides the versions.

    Example:
        >>> import auvcore.backends.export_cache as this
        >>> len(source_digest(this))
        64
    """
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()


def cached_onnx(part: str, key: str, export: Callable[[io.BytesIO], Any]) -> Path:
    """The ONNX file of ``part`` under ``key``, made by ``export(buffer)`` if no run has made it yet."""
    folder = cache_root() / "models"
    path = folder / f"{part}-{key[:24]}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=EXPORT_LOCK_TIMEOUT_S):
        if not path.is_file():  # another process may have exported it while this one waited
            buffer = io.BytesIO()
            export(buffer)
            atomic_write_bytes(path, buffer.getvalue())
    return path


def blob_cache_dir(runtime: str) -> Path:
    """Where a runtime keeps its own compiled blobs (OpenVINO's ``CACHE_DIR``)."""
    return cache_root() / "compiled" / runtime


def export_onnx(module: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...], input_names: list[str],
                output_names: list[str], dynamic_axes: dict[str, dict[int, str]]) -> Callable[[io.BytesIO], None]:
    """An ``export(buffer)`` for :func:`cached_onnx`: ``torch.onnx.export`` of ``module`` (TorchScript exporter, opset 17)."""

    def export(buffer: io.BytesIO) -> None:
        # The TorchScript exporter traces these models as they are (the dynamo one needs onnxscript);
        # its deprecation and tracer notes are not the user's concern.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(), example_inputs, buffer, input_names=input_names, output_names=output_names,
                dynamic_axes=dynamic_axes, opset_version=17, dynamo=False,
            )

    return export
