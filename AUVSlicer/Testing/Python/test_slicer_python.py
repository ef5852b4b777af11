"""AUVSlicer.py against Slicer's own Python of v5.10.0 and v5.12.3 (see ``slicer_python.py``).

The real ``parameterNodeWrapper`` creates the module's parameter node on a real
MRML scene, writes every default, round-trips every parameter, and its real
connector registry decides whether each ``SlicerParameterName`` binding of the
.ui can be connected.
"""

from __future__ import annotations

import pathlib
import typing
from xml.etree import ElementTree

import pytest
import slicer
from slicer_python import MISSING_REASON, MODULE_FOLDER, SlicerPython, available_tags

TAGS = available_tags()
pytestmark = pytest.mark.skipif(not TAGS, reason=MISSING_REASON)
UI_FILE = MODULE_FOLDER / "Resources" / "UI" / "AUVSlicer.ui"


@pytest.fixture(params=TAGS)
def python(request):
    with SlicerPython(request.param) as python:
        yield python


def _bindings() -> dict[str, ElementTree.Element]:
    """Parameter name -> the .ui widget bound to it with ``SlicerParameterName``."""
    bound = {}
    for widget in ElementTree.parse(UI_FILE).getroot().iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget
    return bound


def _sample_values(module, annotation) -> list:
    """Values a parameter of ``annotation`` can hold, ending with one that differs from its default."""
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    if typing.get_origin(annotation) is typing.Annotated:
        choice = next((a for a in typing.get_args(annotation)[1:] if hasattr(a, "choices")), None)
        if choice is not None:
            return list(choice.choices)
        bounds = next(a for a in typing.get_args(annotation)[1:] if hasattr(a, "maximum"))
        return [base(bounds.minimum), base(bounds.maximum)]
    if base is bool:
        return [True, False]
    if base is str:
        return ["", "/data/with space/reference.json"]
    raise AssertionError(f"no sample values for {annotation}")


def test_the_parameter_node_is_created_with_every_default_written(python):
    module = python.load_module()
    node = module.AUVSlicerLogic().getParameterNode()
    for name, info in node.allParameters.items():
        assert node.getValue(name) == info.default.value, name
        assert info.serializer.isIn(node.parameterNode, name), f"{name} was never written"


def test_every_parameter_round_trips_and_node_parameters_take_each_allowed_class_and_none(python):
    module = python.load_module()
    node = module.AUVSlicerLogic().getParameterNode()
    hints = typing.get_type_hints(module.AUVSlicerParameterNode, include_extras=True)
    for name in node.allParameters:
        annotation = hints[name]
        if typing.get_origin(annotation) is typing.Union or isinstance(annotation, type) and issubclass(annotation, slicer.vtkMRMLNode):
            classes = [c for c in typing.get_args(annotation) or (annotation,) if c is not type(None)]
            for node_class in classes:
                value = python.scene.AddNewNodeByClass(node_class.__name__)
                node.setValue(name, value)
                assert node.getValue(name) is value, name
            node.setValue(name, None)
            assert node.getValue(name) is None, f"{name} cannot be cleared"
            continue
        for value in _sample_values(module, annotation):
            node.setValue(name, value)
            assert node.getValue(name) == value, name
        # Another wrapper on the same node reads what this one wrote (the scene keeps it).
        assert module.AUVSlicerLogic().getParameterNode().getValue(name) == value


def test_every_ui_binding_has_exactly_one_connector_in_the_real_registry(python):
    from slicer.parameterNodeWrapper import guiConnectors

    module = python.load_module()
    hints = typing.get_type_hints(module.AUVSlicerParameterNode, include_extras=True)
    bindings = _bindings()
    wrapped = set(hints) - set(module.PATH_PARAMETERS)  # the panel keeps the path fields in step itself
    assert set(bindings) == wrapped, f"unbound: {wrapped - set(bindings)}, unknown: {set(bindings) - wrapped}"
    for name, widget in bindings.items():
        widget_class = widget.get("class")
        owner = slicer if widget_class.startswith("qMRML") else python.ctk if widget_class.startswith("ctk") else python.qt
        stand_in = getattr(owner, widget_class)()
        connectors = [c for c in guiConnectors._registeredGuiConnectors if c.canRepresent(stand_in, hints[name])]
        assert len(connectors) == 1, f"{name} ({widget_class}): connectors {connectors}"


def test_path_parameters_are_unset_as_empty_text_never_as_a_dot(python):
    """Defect 5: a ``pathlib.Path`` parameter defaults to ``Path()``, which a path widget shows as "."."""
    module = python.load_module()
    node = module.AUVSlicerLogic().getParameterNode()
    hints = typing.get_type_hints(module.AUVSlicerParameterNode, include_extras=True)
    assert not [name for name, hint in hints.items() if hint is pathlib.Path]
    for name in module.PATH_PARAMETERS:
        assert node.getValue(name) == "", name


def test_the_help_states_the_supported_slicer_releases(python, tmp_path):
    module = python.load_module()

    class Parent:
        path = str(tmp_path / "AUVSlicer.py")  # no icon beside it: the stand-in QIcon takes no file

    parent = Parent()
    module.AUVSlicer(parent)
    assert "5.10" in parent.helpText
    assert parent.title == "AUV Slicer"
