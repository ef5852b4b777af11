"""Find out what the module still needs (PyTorch, the bundled AUVCore) and install it with consent.

Nothing here runs at import time, and nothing here imports PyTorch or AUVCore:
:func:`check_dependencies` reads installed package metadata only, and whether
PyTorch actually loads is found out in a separate process
(:func:`device_probe_command`), so a broken install cannot take Slicer's own
process down with it. :func:`install_missing` installs what is missing after
the caller's ``confirm`` said yes, with the installers the caller hands in
(inside Slicer: the PyTorch extension's ``PyTorchUtilsLogic.installTorch`` when
present, else ``slicer.packaging.pip_install`` or, on older Slicer,
``slicer.util.pip_install``). PyTorch goes first, so the PyTorch extension can
choose the build that fits the computer's GPU before AUVCore's requirements
would pull in a default one.

The module runs only with the AUVCore it ships with: the requirement is
``auvcore==<version>``, the version written once, in the bundled
``AUVCore/pyproject.toml``. An extension update brings a new core; the one left
in Slicer's site-packages by the previous version then counts as missing and is
replaced (uninstalled first, as SlicerTotalSegmentator forces its reinstall).

Example:
    >>> status = check_dependencies()
    >>> sorted(status.missing) == sorted(set(status.missing))
    True
    >>> auvcore_requirement(shipped_auvcore()).startswith("auvcore==")
    True
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

#: The PyTorch the core needs (the PyTorch extension is asked for a build that satisfies it).
TORCH_REQUIREMENT = "torch>=2.1"

#: Run with ``python -c`` in its own process: loads PyTorch and says which device the core will use.
DEVICE_PROBE = """\
import torch
if torch.cuda.is_available():
    print(f"GPU: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})")
else:
    print("No GPU found: scoring and training use the CPU (slower, same results).")
"""


def bundled_auvcore(module_folder: str | Path) -> Path | None:
    """The AUVCore source shipped with the extension: next to the module when installed
    (``<module>/AUVCore``), or beside its folder in a source checkout (``<module>/../AUVCore``)."""
    module_folder = Path(module_folder)
    for candidate in (module_folder / "AUVCore", module_folder.parent / "AUVCore"):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return None


def shipped_auvcore() -> Path | None:
    """The AUVCore source of this module's own installation (see :func:`bundled_auvcore`)."""
    return bundled_auvcore(Path(__file__).resolve().parents[1])


def bundled_version(source: str | Path) -> str:
    """The version in ``source/pyproject.toml``: the one place the core's version is written."""
    import tomllib  # Python 3.11+: Slicer 5.10's Python is 3.12; imported here so older Pythons can load the module

    pyproject = Path(source) / "pyproject.toml"
    with pyproject.open("rb") as file:
        return tomllib.load(file)["project"]["version"]


def auvcore_requirement(source: str | Path | None) -> str:
    """``auvcore==<bundled version>``: exactly the core shipped in ``source``; any core when nothing is bundled."""
    return f"auvcore=={bundled_version(source)}" if source is not None else "auvcore"


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class DependencyStatus:
    """Which requirements are missing (an unmet version counts as missing), and what is installed instead.

    Args:
        missing: the requirements not met.
        installed: package name -> the version installed, for the missing requirements installed at another version.
        loaded_auvcore: the version of an ``auvcore`` this Python already imported, where it is not the installed one
            (updated under a running Slicer: the new code is used after a restart).
    """

    missing: tuple[str, ...]
    installed: Mapping[str, str] = field(default_factory=dict)
    loaded_auvcore: str | None = None

    @property
    def ready(self) -> bool:
        return not self.missing

    def _missing_names(self) -> set[str]:
        return {Requirement(requirement).name for requirement in self.missing}

    @property
    def torch_missing(self) -> bool:
        return "torch" in self._missing_names()

    @property
    def auvcore_missing(self) -> bool:
        return "auvcore" in self._missing_names()

    def describe(self) -> str:
        """One line for the panel.

        Example:
            >>> DependencyStatus(("auvcore==0.2.0",), {"auvcore": "0.1.0"}).describe()
            'Missing: auvcore==0.2.0 (0.1.0 is installed)'
        """
        if self.ready:
            if self.loaded_auvcore:
                return (f"AUVCore was updated; this session still runs {self.loaded_auvcore}: "
                        "restart Slicer to use the new one.")
            return "All dependencies are installed."
        described = []
        for requirement in self.missing:
            installed = self.installed.get(Requirement(requirement).name)
            described.append(f"{requirement} ({installed} is installed)" if installed else requirement)
        return "Missing: " + ", ".join(described)


def check_dependencies(auvcore: str | None = None) -> DependencyStatus:
    """Which of PyTorch and AUVCore are missing, from installed package metadata (nothing imported).

    Args:
        auvcore: the AUVCore requirement; default: exactly the core this module ships (:func:`shipped_auvcore`).
    """
    required = (TORCH_REQUIREMENT, auvcore or auvcore_requirement(shipped_auvcore()))
    missing, installed = [], {}
    for requirement in required:
        parsed = Requirement(requirement)
        version = _installed_version(parsed.name)
        if version is None or not parsed.specifier.contains(version, prereleases=True):
            missing.append(requirement)
            if version is not None:
                installed[parsed.name] = version
    loaded = getattr(sys.modules.get("auvcore"), "__version__", None)
    current = _installed_version("auvcore")
    stale = loaded if loaded is not None and current is not None and loaded != current else None
    return DependencyStatus(tuple(missing), installed, stale)


def install_missing(
    status: DependencyStatus,
    confirm: Callable[[str], bool],
    install_torch: Callable[[str], None],
    pip_install: Callable[[str], None],
    bundled_source: Path | None,
    pip_uninstall: Callable[[str], None],
) -> bool:
    """Install the missing requirements after ``confirm(message)`` agreed; False when declined.

    Args:
        install_torch: installs PyTorch satisfying the given requirement.
        pip_install: installs a pip requirement string (a package or a local folder).
        bundled_source: the AUVCore source folder to install; None installs it by name.
        pip_uninstall: uninstalls a package by name; an AUVCore of another version is uninstalled before the
            bundled one is installed, so none of the old one is left.
    """
    if status.ready:
        return True
    what = status.describe().removeprefix("Missing: ")
    if not confirm(f"AUV Slicer needs these Python packages: {what}. Install them now? "
                   "This downloads them once and may take several minutes."):
        return False
    if status.torch_missing:
        install_torch(TORCH_REQUIREMENT)
    if status.auvcore_missing:
        if "auvcore" in status.installed:
            pip_uninstall("auvcore")
        requirement = next(r for r in status.missing if Requirement(r).name == "auvcore")
        pip_install(str(bundled_source) if bundled_source else requirement)
    return True


def device_probe_command(python: str) -> list[str]:
    """The command that loads PyTorch in its own process and prints the device line (:data:`DEVICE_PROBE`)."""
    return [python, "-c", DEVICE_PROBE]


def describe_device_probe(exit_code: int | None, output: Sequence[str]) -> str:
    """What the device probe found: its device line, or why PyTorch does not load (the error's last line).

    Example:
        >>> describe_device_probe(1, ["Traceback (most recent call last):", "OSError: libcudart.so.12: not found"])
        'PyTorch is installed but does not load: OSError: libcudart.so.12: not found'
    """
    last = next((line.strip() for line in reversed(output) if line.strip()), "")
    if exit_code == 0 and last:
        return last
    return f"PyTorch is installed but does not load: {last or f'exit code {exit_code}'}"
