"""Install and uninstall Python packages in Slicer's Python: pip requirements, and PyTorch through the PyTorch extension.

Requirements are handed to Slicer as a list of pip arguments, never as one
string: Slicer splits a string with ``shlex.split``, which drops the
backslashes of a Windows path and cuts a path with spaces into pieces.

Example (inside Slicer):
    >>> pip_install(r"C:\\Program Files\\Slicer 5.10\\AUVCore")   # doctest: +SKIP
    >>> pip_uninstall("auvcore")                                    # doctest: +SKIP
    >>> install_torch("torch>=2.1")                                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

import slicer


def pip_install(requirement: str | Path) -> None:
    """``pip install`` one requirement (a name with a version range, or a local folder)."""
    arguments = [str(requirement)]
    try:
        from slicer.packaging import pip_install as packaging_pip_install
    except ImportError:  # Slicer before 5.11 (an ``import slicer.packaging`` here would shadow ``slicer``)
        slicer.util.pip_install(arguments)
        return
    packaging_pip_install(arguments, requester="AUV Slicer")


def pip_uninstall(name: str) -> None:
    """``pip uninstall --yes`` one package (Slicer adds ``--yes``)."""
    arguments = [name]
    try:
        from slicer.packaging import pip_uninstall as packaging_pip_uninstall
    except ImportError:  # Slicer before 5.11
        slicer.util.pip_uninstall(arguments)
        return
    packaging_pip_uninstall(arguments)


def install_torch(requirement: str) -> None:
    """PyTorch through the PyTorch extension (it picks the build for this GPU and driver), else pip."""
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        logging.getLogger(__name__).info("The PyTorch extension is not installed; installing %s with pip", requirement)
        pip_install(requirement)
        return
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                         torchVersionRequirement=requirement[len("torch"):])
    if torch is None:
        raise RuntimeError("the PyTorch extension could not install PyTorch")
