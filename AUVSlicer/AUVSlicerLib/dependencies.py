"""Find out what the module still needs (PyTorch, the bundled AUVCore) and install it with consent.

Nothing here runs at import time. :func:`check_dependencies` only reads
installed package metadata; :func:`install_missing` installs what is missing
after the caller's ``confirm`` said yes, with the installers the caller hands
in (inside Slicer: the PyTorch extension's ``PyTorchUtilsLogic.installTorch``
when present, else ``slicer.packaging.pip_install`` or, on older Slicer,
``slicer.util.pip_install``). PyTorch goes first, so the PyTorch extension can
choose the build that fits the computer's GPU before AUVCore's requirements
would pull in a default one.

Example:
    >>> status = check_dependencies()
    >>> sorted(status.missing) == sorted(set(status.missing))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

#: The PyTorch the core needs (the PyTorch extension is asked for a build that satisfies it).
TORCH_REQUIREMENT = "torch>=2.1"
#: The core, as installed from the bundled source or by name.
AUVCORE_REQUIREMENT = "auvcore>=0.1"


def _satisfied(requirement: str) -> bool:
    parsed = Requirement(requirement)
    try:
        version = metadata.version(parsed.name)
    except metadata.PackageNotFoundError:
        return False
    return parsed.specifier.contains(version, prereleases=True)


@dataclass(frozen=True)
class DependencyStatus:
    """Which requirements are missing (unmet version counts as missing)."""

    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.missing

    @property
    def torch_missing(self) -> bool:
        return TORCH_REQUIREMENT in self.missing

    @property
    def auvcore_missing(self) -> bool:
        return AUVCORE_REQUIREMENT in self.missing

    def describe(self) -> str:
        if self.ready:
            return "All dependencies are installed."
        return "Missing: " + ", ".join(self.missing)


def check_dependencies() -> DependencyStatus:
    """Which of PyTorch and AUVCore are missing, from installed package metadata (nothing imported)."""
    return DependencyStatus(tuple(r for r in (TORCH_REQUIREMENT, AUVCORE_REQUIREMENT) if not _satisfied(r)))


def bundled_auvcore(module_folder: str | Path) -> Path | None:
    """The AUVCore source shipped with the extension: next to the module when installed
    (``<module>/AUVCore``), or beside its folder in a source checkout (``<module>/../AUVCore``)."""
    module_folder = Path(module_folder)
    for candidate in (module_folder / "AUVCore", module_folder.parent / "AUVCore"):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return None


def install_missing(
    status: DependencyStatus,
    confirm: Callable[[str], bool],
    install_torch: Callable[[str], None],
    pip_install: Callable[[str], None],
    bundled_source: Path | None,
) -> bool:
    """Install the missing requirements after ``confirm(message)`` agreed; False when declined.

    Args:
        install_torch: installs PyTorch satisfying the given requirement.
        pip_install: installs a pip requirement string (a package or a local folder).
        bundled_source: the AUVCore source folder to install; None installs it by name.
    """
    if status.ready:
        return True
    what = ", ".join(status.missing)
    if not confirm(f"AUV Slicer needs these Python packages: {what}. Install them now? "
                   "This downloads them once and may take several minutes."):
        return False
    if status.torch_missing:
        install_torch(TORCH_REQUIREMENT)
    if status.auvcore_missing:
        pip_install(str(bundled_source) if bundled_source else AUVCORE_REQUIREMENT)
    return True


def compute_device_report() -> str:
    """Which device the core will use; imports torch, so call it only once it is installed.

    Example:
        >>> compute_device_report().split(":")[0] in ("GPU", "No GPU found")
        True
    """
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return "No GPU found: scoring and training use the CPU (slower, same results)."
