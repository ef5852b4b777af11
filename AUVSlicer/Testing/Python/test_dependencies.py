"""What the module checks and installs on first use, and in what order, only with consent; and the core it pins."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from AUVSlicerLib.dependencies import (
    TORCH_REQUIREMENT,
    DependencyStatus,
    auvcore_requirement,
    bundled_auvcore,
    bundled_version,
    check_dependencies,
    describe_device_probe,
    device_probe_command,
    install_missing,
    shipped_auvcore,
)
from AUVSlicerLib.job_runner import JobMonitor, SubprocessJob

MODULE = Path(__file__).resolve().parents[2]
CORE = MODULE.parent / "AUVCore"
#: What the core bundled in this checkout requires of Slicer's Python.
AUVCORE = auvcore_requirement(CORE)


def _installed(site: Path, name: str, version: str) -> None:
    """A package's installed metadata, as pip leaves it in site-packages."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_this_environment_has_everything():
    status = check_dependencies()
    assert status.ready and status.describe() == "All dependencies are installed."


def test_the_bundled_core_is_found_beside_the_module_in_a_source_checkout():
    assert bundled_auvcore(MODULE) == CORE == shipped_auvcore()


def test_the_bundled_core_is_found_next_to_the_installed_module(tmp_path):
    (tmp_path / "AUVCore").mkdir()
    (tmp_path / "AUVCore" / "pyproject.toml").write_text("[project]\nname = 'auvcore'\n")
    assert bundled_auvcore(tmp_path) == tmp_path / "AUVCore"
    assert bundled_auvcore(tmp_path / "other" / "module") is None


def test_defect_1_the_module_requires_exactly_the_core_it_ships_whose_version_is_written_once():
    """The version lives in AUVCore/pyproject.toml only: the module reads it there, the core from its metadata."""
    import auvcore

    with (CORE / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert version != "0.1.0", "the core's interface changed since 0.1.0 without a new version"
    assert bundled_version(CORE) == version and AUVCORE == f"auvcore=={version}"
    assert auvcore.__version__ == version
    assert not [p for p in (CORE / "auvcore").rglob("*.py") if f'"{version}"' in p.read_text()], "a second copy"


def test_defect_1_an_older_core_left_by_the_previous_extension_counts_as_missing(tmp_path, monkeypatch):
    """Extension updates leave the pip-installed core in Slicer's site-packages; the module must not run on it."""
    _installed(tmp_path, "auvcore", "0.1.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    status = check_dependencies()
    assert not status.ready and status.auvcore_missing and not status.torch_missing
    assert status.describe() == f"Missing: {AUVCORE} (0.1.0 is installed)"


def test_defect_1_a_core_of_another_version_is_uninstalled_before_the_bundled_one_is_installed(tmp_path, monkeypatch):
    """As SlicerTotalSegmentator forces a reinstall when its pinned source changed."""
    _installed(tmp_path, "auvcore", "0.1.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    installer, asked = Installer(), []
    assert install_missing(check_dependencies(), lambda message: asked.append(message) or True, installer.torch,
                           installer.pip, CORE, installer.uninstall)
    assert installer.calls == [("uninstall", "auvcore"), ("pip", str(CORE))]
    assert f"{AUVCORE} (0.1.0 is installed)" in asked[0]


def test_defect_1_an_update_under_a_running_slicer_asks_for_a_restart(monkeypatch):
    import auvcore

    monkeypatch.setattr(auvcore, "__version__", "0.1.0")  # what this process imported before the update
    status = check_dependencies()
    assert status.ready and "restart Slicer" in status.describe() and "0.1.0" in status.describe()


class Installer:
    """Records what the module asks Slicer's installers to do (the real ones change the environment)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def torch(self, requirement: str) -> None:
        self.calls.append(("torch", requirement))

    def pip(self, requirement: str) -> None:
        self.calls.append(("pip", requirement))

    def uninstall(self, name: str) -> None:
        self.calls.append(("uninstall", name))


def test_nothing_is_installed_without_consent():
    installer, asked = Installer(), []
    missing = DependencyStatus((TORCH_REQUIREMENT, AUVCORE))
    done = install_missing(missing, lambda message: asked.append(message) or False, installer.torch, installer.pip,
                           CORE, installer.uninstall)
    assert done is False and installer.calls == []
    assert "torch>=2.1" in asked[0] and AUVCORE in asked[0]


def test_torch_goes_first_through_its_installer_then_the_bundled_core():
    installer = Installer()
    missing = DependencyStatus((TORCH_REQUIREMENT, AUVCORE))
    assert install_missing(missing, lambda message: True, installer.torch, installer.pip, CORE, installer.uninstall)
    assert installer.calls == [("torch", TORCH_REQUIREMENT), ("pip", str(CORE))]


def test_without_a_bundled_core_it_is_installed_by_name_and_nothing_is_asked_when_ready():
    installer, asked = Installer(), []
    assert auvcore_requirement(None) == "auvcore"
    assert install_missing(DependencyStatus(("auvcore",)), lambda m: True, installer.torch, installer.pip, None,
                           installer.uninstall)
    assert installer.calls == [("pip", "auvcore")]
    assert install_missing(DependencyStatus(()), lambda m: asked.append(m) or True, installer.torch, installer.pip,
                           None, installer.uninstall)
    assert asked == []


def _probe(environment: dict[str, str] | None = None) -> str:
    job = SubprocessJob(device_probe_command(sys.executable), JobMonitor(reads_progress=False), environment)
    job.start()
    code = job.wait(120)
    return describe_device_probe(code, list(job.monitor.log))


def test_the_device_probe_names_the_gpu_or_says_the_cpu_is_used():
    import torch

    report = _probe()
    if torch.cuda.is_available():
        assert report.startswith("GPU: ") and torch.cuda.get_device_name(0) in report
    else:
        assert report.startswith("No GPU found") and "CPU" in report


def test_defect_6_a_torch_that_fails_to_load_is_named_by_the_probe_not_raised(tmp_path):
    """Metadata present, library broken: the probe's own process fails and says why; Slicer's goes on."""
    broken = tmp_path / "broken"
    (broken / "torch").mkdir(parents=True)
    (broken / "torch" / "__init__.py").write_text(
        'raise OSError("libtorch_cuda.so: cannot open shared object file: No such file or directory")\n')
    report = _probe({**os.environ, "PYTHONPATH": str(broken)})
    assert report == ("PyTorch is installed but does not load: "
                      "OSError: libtorch_cuda.so: cannot open shared object file: No such file or directory")


def test_unmet_requirements_count_as_missing(monkeypatch):
    from AUVSlicerLib import dependencies

    monkeypatch.setattr(dependencies, "TORCH_REQUIREMENT", "torch>=999")
    assert "torch>=999" in check_dependencies().missing
    assert "a-package-that-is-not-installed>=1" in check_dependencies("a-package-that-is-not-installed>=1").missing
