"""Checks that need no Slicer: the widget code, the .ui, the parameter node and the CMake lists agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

MODULE = Path(__file__).resolve().parents[2]
REPOSITORY = MODULE.parent
UI_FILE = MODULE / "Resources" / "UI" / "AUVSlicer.ui"
MODULE_SCRIPT = MODULE / "AUVSlicer.py"
PANELS = (MODULE / "AUVSlicerLib" / "panel.py", MODULE / "AUVSlicerLib" / "review_panel.py")

#: Widget name suffix (the module's naming rule) -> the classes such a widget may be.
SUFFIX_CLASSES = {
    "CollapsibleButton": {"ctkCollapsibleButton"},
    "Button": {"QPushButton"},
    "Selector": {"qMRMLNodeComboBox"},
    "ComboBox": {"QComboBox", "ctkComboBox"},
    "PathLineEdit": {"ctkPathLineEdit"},
    "LineEdit": {"QLineEdit"},
    "CheckBox": {"QCheckBox"},
    "SliderWidget": {"ctkSliderWidget"},
    "SpinBox": {"QSpinBox"},
    "Label": {"QLabel"},
    "TableWidget": {"QTableWidget"},
    "TableView": {"qMRMLTableView"},
    "ProgressBar": {"QProgressBar"},
    "TextEdit": {"QPlainTextEdit"},
}


def _ui_widgets() -> dict[str, ElementTree.Element]:
    root = ElementTree.parse(UI_FILE).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def _expected_classes(name: str) -> set[str]:
    # Longest suffix first: "PathLineEdit" before "LineEdit", "CollapsibleButton" before "Button".
    for suffix in sorted(SUFFIX_CLASSES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIX_CLASSES[suffix]
    raise AssertionError(f"widget {name!r} does not follow the naming rule (no known class suffix)")


def _parameters() -> dict[str, str]:
    """Field name -> annotation source of the @parameterNodeWrapper class in AUVSlicer.py."""
    tree = ast.parse(MODULE_SCRIPT.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list):
            return {item.target.id: ast.unparse(item.annotation) for item in node.body if isinstance(item, ast.AnnAssign)}
    raise AssertionError("AUVSlicer.py has no @parameterNodeWrapper class")


def _property(widget: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((p for p in widget.findall("property") if p.get("name") == name), None)


def test_every_widget_the_code_uses_is_in_the_ui_with_the_right_class():
    from AUVSlicerLib import panel, review_panel

    widgets = _ui_widgets()
    used = set(re.findall(r"\bui\.(\w+)", "".join(p.read_text() for p in (MODULE_SCRIPT, *PANELS))))
    used |= set(panel.PATH_FIELDS.values()) | set(review_panel.BUTTONS.values())
    assert len(used) > 30, "the panel uses no ui members?"
    for name in sorted(used):
        assert name in widgets, f"the panel uses ui.{name}, which AUVSlicer.ui does not have"
        assert widgets[name].get("class") in _expected_classes(name), f"{name} is a {widgets[name].get('class')}"


def test_ui_widget_names_are_unique_and_follow_the_naming_rule():
    root = ElementTree.parse(UI_FILE).getroot()
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names))
    for name in names[1:]:  # the first is the top-level qMRMLWidget
        assert ElementTree.parse(UI_FILE).getroot().find(f".//widget[@name='{name}']").get("class") in _expected_classes(name)


def _bound_widgets() -> dict[str, ElementTree.Element]:
    bound = {}
    for widget in _ui_widgets().values():
        parameter = _property(widget, "SlicerParameterName")
        if parameter is not None:
            assert parameter.get("stdset") == "0", f"{widget.get('name')}: SlicerParameterName must be a dynamic property"
            bound[parameter.findtext("string")] = widget
    return bound


def test_every_parameter_is_bound_to_one_widget_of_a_class_that_can_show_its_type():
    from AUVSlicerLib.panel import PATH_FIELDS

    parameters, bound = _parameters(), _bound_widgets()
    widgets = _ui_widgets()
    for name in PATH_FIELDS:  # kept in step by the panel, not the wrapper (ctkPathLineEdit never reports "")
        assert parameters.pop(name) == "str" and widgets[PATH_FIELDS[name]].get("class") == "ctkPathLineEdit", name
    assert set(bound) == set(parameters), f"unbound: {set(parameters) - set(bound)}, unknown: {set(bound) - set(parameters)}"
    for name, annotation in parameters.items():
        widget_class = bound[name].get("class")
        if annotation.startswith(("Union[", "vtkMRML")):
            assert widget_class == "qMRMLNodeComboBox", name
            node_types = [s.text for s in _property(bound[name], "nodeTypes").iter("string")]
            assert sorted(node_types) == sorted(re.findall(r"vtkMRML\w+", annotation)), name
        elif annotation == "pathlib.Path":
            assert widget_class == "ctkPathLineEdit", name
        elif annotation == "bool":
            assert widget_class == "QCheckBox", name
        elif annotation.startswith("Annotated[str, Choice("):
            assert widget_class == "QComboBox", name
        elif annotation.startswith("Annotated[float"):
            assert widget_class == "ctkSliderWidget", name
        elif annotation.startswith("Annotated[int"):
            assert widget_class == "QSpinBox", name
        else:
            pytest.fail(f"parameter {name}: no rule for annotation {annotation}")


def test_node_selectors_get_the_scene_from_the_top_widget():
    root = ElementTree.parse(UI_FILE).getroot()
    connected = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)" and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    needing_scene = {name for name, w in _ui_widgets().items() if w.get("class") in ("qMRMLNodeComboBox", "qMRMLTableView")}
    assert needing_scene <= connected


def _cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.DOTALL)
    assert match, f"no set({variable} ...)"
    return [item.replace("${MODULE_NAME}", "AUVSlicer") for item in match.group(1).split()]


def test_the_module_cmake_lists_every_script_and_resource_and_nothing_else():
    cmake = (MODULE / "CMakeLists.txt").read_text()
    scripts = _cmake_list(cmake, "MODULE_PYTHON_SCRIPTS")
    resources = _cmake_list(cmake, "MODULE_PYTHON_RESOURCES")
    for listed in scripts + resources:
        assert (MODULE / listed).is_file(), f"CMakeLists.txt lists {listed}, which does not exist"
    library = {p.relative_to(MODULE).as_posix() for p in (MODULE / "AUVSlicerLib").glob("*.py")}
    assert library | {"AUVSlicer.py"} == set(scripts)
    shipped = {p.relative_to(MODULE).as_posix() for p in (MODULE / "Resources").rglob("*") if p.is_file()}
    assert shipped == set(resources)
    assert "WITH_GENERIC_TESTS" in cmake and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake


def test_the_extension_cmake_is_complete():
    cmake = (REPOSITORY / "CMakeLists.txt").read_text()
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf"set\({variable} \"[^\"]+\"\)", cmake), variable
    assert "add_subdirectory(AUVSlicer)" in cmake
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in cmake
    repository = re.search(r'set\(AUVSLICER_REPOSITORY_URL "([^"]+)"\)', cmake).group(1)
    raw = repository.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    for variable in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        for url in re.search(rf'set\({variable} "([^"]+)"\)', cmake).group(1).split():
            assert url.startswith(raw), f"{variable}: {url} is not in {repository}"
            assert (REPOSITORY / url.removeprefix(raw)).is_file(), f"{variable} points at {url}, which the repository lacks"


def test_the_icons_are_128_pixel_squares():
    for icon in (MODULE / "Resources" / "Icons" / "AUVSlicer.png", REPOSITORY / "Resources" / "Icons" / "AUVSlicer.png"):
        with Image.open(icon) as image:
            assert image.size == (128, 128), icon


#: Packages the module installs on first use (auvcore brings the others): nothing may import them when it loads.
INSTALLED_LATER = ("auvcore", "torch", "pandas", "numpy", "psutil", "filelock")


def _top_level_imports(path: Path, package: str = "") -> set[str]:
    tree = ast.parse(path.read_text())
    imported = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    for node in (n for n in tree.body if isinstance(n, ast.ImportFrom)):
        imported.add(f"{package}.{node.module or ''}".rstrip(".") if node.level else node.module)
    return imported


def test_the_module_imports_nothing_that_needs_installing_at_import_time():
    """What AUVSlicer.py imports when Slicer loads it and when it builds the panel (AUVSlicerLib files followed)
    needs no auvcore/torch/...: the panel must come up to offer installing them."""
    setup = ast.unparse(next(n for n in ast.walk(ast.parse(MODULE_SCRIPT.read_text()))
                             if isinstance(n, ast.FunctionDef) and n.name == "setup"))
    built = re.findall(r"from (AUVSlicerLib\.\w+) import", setup)
    assert "AUVSlicerLib.panel" in built and "AUVSlicerLib.qt_job" in built
    pending, seen = ["AUVSlicer", *built], set()
    while pending:
        module = pending.pop()
        seen.add(module)
        path = MODULE / (module.replace(".", "/") + ".py")
        imported = _top_level_imports(path, "AUVSlicerLib")
        heavy = {m for m in imported if m.split(".")[0] in INSTALLED_LATER}
        assert not heavy, f"{module} imports {heavy} at import time"
        pending += [m for m in imported if m.startswith("AUVSlicerLib.") and m not in seen]
    assert "AUVSlicerLib.logic" in seen


def test_the_training_defaults_are_the_cores():
    """The module cannot import auvcore before it is installed, so it spells the defaults; they must be the core's."""
    from auvcore.duo.config import TrainConfig
    from AUVSlicerLib.job_commands import TrainJob

    for name in ("backbone", "duo", "epochs", "device"):
        assert getattr(TrainJob, name) == getattr(TrainConfig, name), name
    tree = ast.parse(MODULE_SCRIPT.read_text())
    epochs = next(node.value.value for node in ast.walk(tree)
                  if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "epochs")
    assert epochs == TrainConfig.epochs
