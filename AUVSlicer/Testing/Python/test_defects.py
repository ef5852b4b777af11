"""The defects found by reading Slicer's own sources (issue 11), each held by a test that failed on the old code.

Defects 1 and 5 are in ``test_slicer_python.py`` and ``test_panel.py`` (they need
the real parameter node wrapper or the panel), defect 4 in ``test_stop_process_tree.py``.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
import types
from pathlib import Path
from xml.etree import ElementTree

import pytest
import slicer
from slicer_python import (
    MISSING_REASON,
    MODULE_FOLDER,
    REPOSITORY,
    SlicerPython,
    available_tags,
)

LIBRARY = MODULE_FOLDER / "AUVSlicerLib"
MODULE_SCRIPT = MODULE_FOLDER / "AUVSlicer.py"
#: A Windows install folder with spaces, as the extension lands in on Windows.
WINDOWS_FOLDER = r"C:\Program Files\Slicer 5.10.0\slicer.org\Extensions-33333\AUVSlicer\lib\AUVCore"


def _runtime_union(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node))


def _import_time_statements(tree: ast.Module):
    """Statements Python runs when the module is imported: module and class bodies, not functions or annotations."""
    pending = list(tree.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, ast.ClassDef):
            pending += statement.body
            yield from statement.decorator_list
        elif isinstance(statement, ast.AnnAssign):
            if statement.value is not None:
                yield statement.value
        elif not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Import, ast.ImportFrom)):
            yield statement


@pytest.mark.parametrize("path", [MODULE_SCRIPT, *sorted(LIBRARY.glob("*.py"))], ids=lambda p: p.name)
def test_defect_2_nothing_slicer_5_8_would_fail_on_runs_when_the_module_loads(path):
    """Slicer 5.8's Python 3.9 failed at ``Progress = CaseProgress | EpochProgress``, before any message."""
    tree = ast.parse(path.read_text(), feature_version=(3, 9))
    offending = [ast.unparse(s)[:80] for s in _import_time_statements(tree) if _runtime_union(s)]
    assert not offending, f"{path.name} evaluates X | Y at import: {offending}"


@pytest.mark.skipif(not available_tags(), reason=MISSING_REASON)
def test_defect_2_an_old_slicer_gets_a_clear_message_in_the_help_and_the_log(tmp_path, caplog):
    with SlicerPython(available_tags()[0]) as python:
        module = python.load_module()
        assert module.unsupportedReason((3, 12, 1)) is None
        reason = module.unsupportedReason((3, 9, 18))
        assert "Slicer 5.10 or later" in reason and "Python 3.9" in reason
        module.unsupportedReason = lambda: reason
        parent = types.SimpleNamespace(path=str(tmp_path / "AUVSlicer.py"))
        module.AUVSlicer(parent)
        assert parent.helpText == reason and reason in caplog.text


@pytest.fixture
def recorded_pip(monkeypatch):
    """Slicer's two pip entry points as recorders: ``slicer.packaging`` (5.11+) and ``slicer.util`` (before)."""
    calls: list[tuple[str, object]] = []
    packaging = types.ModuleType("slicer.packaging")
    packaging.pip_install = lambda requirements, **kwargs: calls.append(("packaging", requirements))
    monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    monkeypatch.setattr(slicer, "packaging", packaging, raising=False)
    monkeypatch.setattr(slicer.util, "pip_install", lambda requirements, **kwargs: calls.append(("util", requirements)))
    return calls


def test_defect_3_a_windows_path_with_spaces_reaches_pip_whole(recorded_pip, monkeypatch):
    """Slicer ``shlex.split``s a string requirement: backslashes vanish and the path falls apart at its spaces."""
    from AUVSlicerLib.dependencies import DependencyStatus, install_missing
    from AUVSlicerLib.installers import pip_install

    assert shlex.split(WINDOWS_FOLDER) != [WINDOWS_FOLDER]
    install_missing(DependencyStatus(("auvcore==0.2.0",)), lambda message: True, lambda r: None, pip_install,
                    Path(WINDOWS_FOLDER), lambda name: None)
    assert recorded_pip == [("packaging", [str(Path(WINDOWS_FOLDER))])]
    monkeypatch.delitem(sys.modules, "slicer.packaging")
    monkeypatch.delattr(slicer, "packaging")
    monkeypatch.setitem(sys.modules, "slicer.packaging", None)  # Slicer before 5.11 has no slicer.packaging
    pip_install(WINDOWS_FOLDER)
    assert recorded_pip[-1] == ("util", [WINDOWS_FOLDER])


def test_defect_6_the_dataset_browse_button_picks_a_folder():
    """ctkPathLineEdit opens a file dialog whenever Files is among its filters."""
    widget = next(w for w in ElementTree.parse(MODULE_FOLDER / "Resources/UI/AUVSlicer.ui").getroot().iter("widget")
                  if w.get("name") == "datasetPathLineEdit")
    filters = next(p for p in widget.findall("property") if p.get("name") == "filters").findtext("set").split("|")
    assert "ctkPathLineEdit::Dirs" in filters and "ctkPathLineEdit::Files" not in filters


def _method(tree: ast.Module, class_name: str, method: str) -> ast.FunctionDef:
    owner = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return next(n for n in owner.body if isinstance(n, ast.FunctionDef) and n.name == method)


def test_defect_7_the_dashboard_self_test_builds_the_widget_and_parameter_node_and_scores_nothing():
    """(How the factory runs it, on a Slicer without AUVCore: test_module_widget.py, issue 26 defect 5.)"""
    tree = ast.parse(MODULE_SCRIPT.read_text())
    run = ast.unparse(_method(tree, "AUVSlicerTest", "runTest"))
    called = re.findall(r"self\.(test_\w+)\(", run)
    assert called == ["test_ModuleOnACleanSlicer", "test_ReviewPrecomputedCohort"]
    body = "\n".join(ast.unparse(_method(tree, "AUVSlicerTest", name)) for name in called)
    for needed in ("slicer.modules.AUVSlicerWidget", "getParameterNode()", "onStartReview()", "onVerdictNeedsFix()"):
        assert needed in body, needed
    for slow in ("installDependencies(", "fetch_sample_cohort", "score_command", "SubprocessJob"):
        assert slow not in body, f"the dashboard test must not {slow}"
    cohort = MODULE_FOLDER / "Resources" / "SelfTest"
    assert sum(f.stat().st_size for f in cohort.rglob("*") if f.is_file()) < 1_000_000
    cmake = (MODULE_FOLDER / "CMakeLists.txt").read_text()
    assert all(f"Resources/SelfTest/{f.relative_to(cohort).as_posix()}" in cmake for f in cohort.rglob("*") if f.is_file())


def test_defect_7_the_shipped_self_test_cohort_is_the_current_real_scores(scored_cohort, sample_manifest):
    """The precomputed cohort is what ``auv score`` gives today (rewrite it with selftest_cohort.py when not)."""
    from selftest_cohort import SELFTEST_FOLDER, selftest_files

    expected = selftest_files(scored_cohort, sample_manifest.parent)
    shipped = {f.relative_to(SELFTEST_FOLDER).as_posix(): f.read_bytes() for f in SELFTEST_FOLDER.rglob("*") if f.is_file()}
    assert set(shipped) == set(expected)
    for name in (n for n in expected if n.endswith(".json") and n.startswith("cases/")):
        ours, theirs = json.loads(shipped[name]), json.loads(expected[name])
        # The same fields; numbers within the runtimes' agreement (the fixture scores with --runtime auto).
        assert _close(ours["classes"], theirs["classes"]) and _close(ours["scores"], theirs["scores"]), name


def _close(ours, theirs, tolerance: float = 1e-4) -> bool:
    """Equal structure and values, numbers within ``tolerance``."""
    if isinstance(theirs, float) or isinstance(ours, float):
        return isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and abs(ours - theirs) <= tolerance
    if isinstance(theirs, dict):
        return isinstance(ours, dict) and set(ours) == set(theirs) and all(_close(ours[k], theirs[k], tolerance) for k in theirs)
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(_close(a, b, tolerance) for a, b in zip(ours, theirs))
    return ours == theirs


def test_defect_8_the_chart_says_where_the_class_names_are(scene, scored_cohort):
    """qMRMLPlotView shows a series' label column only as tooltips: the bars stand at label values the table names."""
    from AUVSlicerLib.case_result import case_result_path, load_case_result
    from AUVSlicerLib.results_table import uncertainty_bar_chart

    case = load_case_result(case_result_path(scored_cohort, "ct_full"))
    chart = uncertainty_bar_chart(scene, case)
    series = chart.GetNthPlotSeriesNode(0)
    assert series.GetXColumnName() == "Label value"
    assert "hover" in chart.GetXAxisTitle() and "table" in chart.GetXAxisTitle()
    values = series.GetTableNode().GetTable().GetColumnByName("Label value")
    assert [values.GetValue(i) for i in range(values.GetNumberOfTuples())] == [c.label_value for c in case.scored_classes]


def test_defect_9_the_package_ships_its_own_apache_licence_and_a_catalog_entry():
    licence = (REPOSITORY / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    cmake = (REPOSITORY / "CMakeLists.txt").read_text()
    assert 'set(EXTENSION_LICENSE_FILE "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE")' in cmake
    assert re.search(r'if\(Slicer_VERSION VERSION_LESS "5\.10"\)', cmake)
    entry = json.loads((REPOSITORY / "AUVSlicer.json").read_text())
    # The fields of Slicer's slicer-extension-catalog-entry-schema-v1.0.1 (no others are allowed).
    allowed = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
               "build_dependencies": list, "build_subdirectory": str, "enabled": bool, "tier": int}
    assert {"$schema", "category", "scm_url"} <= set(entry) <= set(allowed)
    assert all(isinstance(value, allowed[key]) for key, value in entry.items())
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.1.json#")
    assert entry["build_dependencies"] == ["PyTorch"] and entry["tier"] in (1, 3, 5)
    assert entry["category"] == re.search(r'set\(EXTENSION_CATEGORY "([^"]+)"\)', cmake).group(1)


def test_the_repository_url_is_set_in_one_place_and_used_everywhere():
    url = re.search(r'set\(AUVSLICER_REPOSITORY_URL "([^"]+)"\)', (REPOSITORY / "CMakeLists.txt").read_text()).group(1)
    assert json.loads((REPOSITORY / "AUVSlicer.json").read_text())["scm_url"] == url
    for path in (MODULE_SCRIPT, REPOSITORY / "README.md", REPOSITORY / "CMakeLists.txt"):
        found = set(re.findall(r"https://(?:github\.com|raw\.githubusercontent\.com)/[\w.-]+/[\w.-]+", path.read_text()))
        expected = {url, url.replace("github.com", "raw.githubusercontent.com")}
        assert found <= expected, f"{path.name} names another repository: {found - expected}"


def test_defect_10_a_label_map_that_cannot_be_imported_is_an_error_and_leaves_nothing_behind(scene):
    from AUVSlicerLib.labelmap_import import segmentation_from_labelmap

    empty = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "empty label")
    with pytest.raises(ValueError, match="empty label could not be imported"):
        segmentation_from_labelmap(scene, empty)
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0
