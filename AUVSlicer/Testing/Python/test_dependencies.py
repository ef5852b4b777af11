"""What the module checks and installs on first use, and in what order, only with consent."""

from __future__ import annotations

from pathlib import Path

import pytest
from AUVSlicerLib.dependencies import (
    AUVCORE_REQUIREMENT,
    TORCH_REQUIREMENT,
    DependencyStatus,
    bundled_auvcore,
    check_dependencies,
    compute_device_report,
    install_missing,
)

MODULE = Path(__file__).resolve().parents[2]


def test_this_environment_has_everything():
    status = check_dependencies()
    assert status.ready and status.describe() == "All dependencies are installed."


def test_the_bundled_core_is_found_beside_the_module_in_a_source_checkout():
    assert bundled_auvcore(MODULE) == MODULE.parent / "AUVCore"


def test_the_bundled_core_is_found_next_to_the_installed_module(tmp_path):
    (tmp_path / "AUVCore").mkdir()
    (tmp_path / "AUVCore" / "pyproject.toml").write_text("[project]\nname = 'auvcore'\n")
    assert bundled_auvcore(tmp_path) == tmp_path / "AUVCore"
    assert bundled_auvcore(tmp_path / "other" / "module") is None


class Installer:
    """Records what the module asks Slicer's installers to do (the real ones change the environment)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def torch(self, requirement: str) -> None:
        self.calls.append(("torch", requirement))

    def pip(self, requirement: str) -> None:
        self.calls.append(("pip", requirement))


def test_nothing_is_installed_without_consent():
    installer, asked = Installer(), []
    missing = DependencyStatus((TORCH_REQUIREMENT, AUVCORE_REQUIREMENT))
    done = install_missing(missing, lambda message: asked.append(message) or False, installer.torch, installer.pip,
                           MODULE.parent / "AUVCore")
    assert done is False and installer.calls == []
    assert "torch>=2.1" in asked[0] and "auvcore" in asked[0]


def test_torch_goes_first_through_its_installer_then_the_bundled_core():
    installer = Installer()
    missing = DependencyStatus((TORCH_REQUIREMENT, AUVCORE_REQUIREMENT))
    assert install_missing(missing, lambda message: True, installer.torch, installer.pip, MODULE.parent / "AUVCore")
    assert installer.calls == [("torch", TORCH_REQUIREMENT), ("pip", str(MODULE.parent / "AUVCore"))]


def test_without_a_bundled_core_it_is_installed_by_name_and_nothing_is_asked_when_ready():
    installer, asked = Installer(), []
    assert install_missing(DependencyStatus((AUVCORE_REQUIREMENT,)), lambda m: True, installer.torch, installer.pip, None)
    assert installer.calls == [("pip", AUVCORE_REQUIREMENT)]
    assert install_missing(DependencyStatus(()), lambda m: asked.append(m) or True, installer.torch, installer.pip, None)
    assert asked == []


def test_the_device_report_names_the_gpu_or_says_the_cpu_is_used():
    import torch

    report = compute_device_report()
    if torch.cuda.is_available():
        assert report.startswith("GPU: ") and torch.cuda.get_device_name(0) in report
    else:
        assert report.startswith("No GPU found") and "CPU" in report


@pytest.mark.parametrize("requirement", ["torch>=999", "a-package-that-is-not-installed>=1"])
def test_unmet_requirements_count_as_missing(requirement, monkeypatch):
    from AUVSlicerLib import dependencies

    monkeypatch.setattr(dependencies, "TORCH_REQUIREMENT", requirement)
    assert requirement in check_dependencies().missing
