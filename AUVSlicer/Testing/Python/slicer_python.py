"""Load ``AUVSlicer.py`` with Slicer's own Python of a release tag, on slicer-core's real MRML.

Slicer's ``parameterNodeWrapper``, ``ScriptedLoadableModule`` and ``i18n`` of
each tag lie verbatim in ``../shared/slicer-python/<tag>`` (see its README).
They are loaded as submodules of slicer-core's ``slicer`` package; ``qt`` and
``ctk``, which exist only inside Slicer, are stand-in modules whose attributes
are distinct empty classes (the GUI connectors only compare widget classes),
as are the few ``slicer.q*`` widget classes the connectors name.

Example:
    >>> with SlicerPython(TAGS[0]) as python:                        # doctest: +SKIP
    ...     module = python.load_module()
    ...     node = module.AUVSlicerLogic().getParameterNode()
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Self

import slicer

MODULE_FOLDER = Path(__file__).resolve().parents[2]
REPOSITORY = MODULE_FOLDER.parent
SLICER_PYTHON = REPOSITORY.parent / "shared" / "slicer-python"
#: The oldest supported release (its Python is 3.12) and the newest stable one.
TAGS = ("v5.10.0", "v5.12.3")
#: Why the tests skip where the folder is absent.
MISSING_REASON = f"Slicer's own Python is not at {SLICER_PYTHON} (see the project's Testing notes)"
#: Widget classes of slicer that the GUI connectors and the module name, absent from slicer-core.
SLICER_WIDGET_CLASSES = ("qMRMLNodeComboBox", "qMRMLSliderWidget", "qMRMLSpinBox", "qMRMLRangeWidget",
                         "qSlicerWidget", "qMRMLWidget", "qMRMLTableView")


class StandInModule(types.ModuleType):
    """A module whose every attribute is a distinct empty class, created on first use and kept."""

    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        stand_in = type(name, (), {"__module__": self.__name__})
        setattr(self, name, stand_in)
        return stand_in


class TranslatingApp:
    """``slicer.app`` as far as ``slicer.i18n.tr`` of v5.10 uses it: no translation installed."""

    @staticmethod
    def translate(context: str, text: str) -> str:
        return text


def available_tags() -> list[str]:
    return [tag for tag in TAGS if (SLICER_PYTHON / tag / "slicer" / "parameterNodeWrapper").is_dir()]


def _load(name: str, path: Path, package: bool = False) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path / "__init__.py" if package else path, submodule_search_locations=[str(path)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class SlicerPython:
    """Installs one tag's Slicer Python (and the stand-ins) for the duration of a ``with`` block."""

    SUBMODULES = ("i18n", "parameterNodeWrapper", "ScriptedLoadableModule")

    def __init__(self, tag: str) -> None:
        self.folder = SLICER_PYTHON / tag / "slicer"
        self._saved_modules: dict[str, types.ModuleType | None] = {}
        self._saved_attributes: dict[str, object] = {}

    def __enter__(self) -> Self:
        for name in ("qt", "ctk"):
            self._replace_module(name, StandInModule(name))
        for name in SLICER_WIDGET_CLASSES:
            self._saved_attributes[name] = getattr(slicer, name, None)
            setattr(slicer, name, type(name, (), {"__module__": "slicer"}))
        self._saved_attributes["app"] = getattr(slicer, "app", None)
        slicer.app = TranslatingApp()
        for name in [n for n in sys.modules if n.startswith(("slicer.parameterNodeWrapper", "AUVSlicer"))]:
            self._saved_modules.setdefault(name, sys.modules.pop(name))
        for name in self.SUBMODULES:
            self._saved_modules.setdefault(f"slicer.{name}", sys.modules.get(f"slicer.{name}"))
            self._saved_attributes.setdefault(name, getattr(slicer, name, None))
            path = self.folder / name if (self.folder / name).is_dir() else self.folder / f"{name}.py"
            setattr(slicer, name, _load(f"slicer.{name}", path, package=path.is_dir()))
        self.scene = slicer.mrmlScene = slicer.vtkMRMLScene()
        return self

    def _replace_module(self, name: str, module: types.ModuleType) -> None:
        self._saved_modules.setdefault(name, sys.modules.get(name))
        sys.modules[name] = module

    @property
    def qt(self) -> StandInModule:
        return sys.modules["qt"]

    @property
    def ctk(self) -> StandInModule:
        return sys.modules["ctk"]

    def load_module(self) -> types.ModuleType:
        """``AUVSlicer.py`` imported afresh against this tag (as Slicer imports a scripted module)."""
        if str(MODULE_FOLDER) not in sys.path:
            sys.path.insert(0, str(MODULE_FOLDER))
        return _load("AUVSlicer", MODULE_FOLDER / "AUVSlicer.py")

    def __exit__(self, *exc_info) -> None:
        self.scene.Clear(True)
        for name in [n for n in sys.modules if n.startswith(("slicer.parameterNodeWrapper", "AUVSlicer"))]:
            del sys.modules[name]
        for name, module in self._saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name, value in self._saved_attributes.items():
            if value is None:
                if hasattr(slicer, name):
                    delattr(slicer, name)
            else:
                setattr(slicer, name, value)
