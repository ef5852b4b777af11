"""The module's widget in Slicer's hands (issue 26): built, entered, left, reloaded and self-tested as Slicer does.

``AUVSlicer.py`` runs on Slicer's own ``ScriptedLoadableModule`` and
``parameterNodeWrapper`` of v5.10.0 and v5.12.3 (``slicer_python``), on real
MRML, with Slicer's side played by ``module_host``: its ``tryWithErrorDisplay``
re-raises, PythonQt prints what reaches C++, a Slicer started for testing
shows no dialog, and the machine has no network.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import unittest

import pytest
import vtk
from module_host import ModuleHost, hidden_packages
from selftest_cohort import SELFTEST_FOLDER
from slicer_python import MISSING_REASON, SlicerPython, available_tags

TAGS = available_tags()
pytestmark = pytest.mark.skipif(not TAGS, reason=MISSING_REASON)


@pytest.fixture(params=TAGS)
def python(request):
    with SlicerPython(request.param) as python:
        yield python


@pytest.fixture
def make_host(python, monkeypatch, tmp_path):
    """Builds the module host (after any packages are hidden); closes it, its processes ended, after the test."""
    hosts: list[ModuleHost] = []

    def make() -> ModuleHost:
        hosts.append(ModuleHost(python, monkeypatch, tmp_path))
        return hosts[-1]

    yield make
    for host in hosts:
        host.close()


def _bound(widget, node) -> bool:
    """The widget shows ``node``: its GUI is connected by the wrapper and the panel follows the node's changes."""
    return (widget._guiTag in node._parameterGUIs
            and bool(widget.hasObserver(node, vtk.vtkCommand.ModifiedEvent, widget.panel.updateFromParameterNode)))


def test_defect_5_the_dashboard_self_test_passes_on_a_clean_slicer_without_network(make_host, monkeypatch):
    """What ``slicer_add_python_unittest`` runs on the factory: every ``test*`` method (``slicer.testing.runUnitTest``
    loads the module's tests by name; ``runTest`` is not among them), on a Slicer with neither PyTorch nor AUVCore."""
    hidden_packages(monkeypatch, "torch", "auvcore")
    host = make_host()
    suite = unittest.TestLoader().loadTestsFromName("AUVSlicer")
    ran = {test.id().removeprefix("AUVSlicer.") for test in _tests(suite)}  # a suite forgets its tests once run
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=2).run(suite)
    assert result.wasSuccessful(), [text for _, text in result.errors + result.failures]
    skipped = {test.id().removeprefix("AUVSlicer."): reason for test, reason in result.skipped}
    assert "AUVSlicerTest.test_ModuleOnACleanSlicer" in ran - set(skipped)
    assert "AUVCore is not installed" in skipped["AUVSlicerTest.test_ReviewPrecomputedCohort"]
    assert "AUVSLICER_TEST_SCORING" in skipped["AUVSlicerTest.test_FullScoring"]
    assert host.pip_requests == [] and not host.uncaught
    assert "Missing: torch>=2.1, auvcore==" in host.widget.ui.dependencyStatusLabel.text
    assert host.widget.ui.installDependenciesButton.visible


def _tests(suite):
    for test in suite:
        yield from _tests(test) if isinstance(test, unittest.TestSuite) else [test]


def test_defect_6_a_torch_that_does_not_load_leaves_the_panel_whole_and_says_so(make_host, monkeypatch, tmp_path):
    """Metadata present, library broken: opening the module imports nothing of it; the probe's process says why."""
    broken = tmp_path / "broken"
    (broken / "torch").mkdir(parents=True)
    (broken / "torch" / "__init__.py").write_text('raise OSError("libtorch_cuda.so: cannot open shared object file")\n')
    monkeypatch.setenv("PYTHONPATH", f"{broken}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    for name in {"torch", *(n for n in sys.modules if n.startswith("torch."))}:
        monkeypatch.setitem(sys.modules, name, None)  # `import torch` fails here as in the probe's process
    host = make_host()
    widget = host.select()
    assert not host.uncaught, host.uncaught
    assert widget.ui.installDependenciesButton.slots and _bound(widget, widget._parameterNode)
    host.process_events(60, until=lambda: "does not load" in widget.ui.dependencyStatusLabel.text)
    assert widget.ui.dependencyStatusLabel.text == (
        "PyTorch is installed but does not load: OSError: libtorch_cuda.so: cannot open shared object file")
    assert widget.ui.deviceLabel.text == "Unknown: PyTorch does not load."


def test_defect_7_leaving_the_module_on_an_unsupported_slicer_raises_nothing(make_host, monkeypatch):
    host = make_host()
    monkeypatch.setattr(host.module, "unsupportedReason", lambda: "AUV Slicer needs Slicer 5.10 or later")
    widget = host.select()
    assert widget.panel is None and widget.layout.widgets[-1].text == "AUV Slicer needs Slicer 5.10 or later"
    host.leave()
    host.select()
    host.leave()
    host.quit()
    assert not host.uncaught, host.uncaught


def test_defect_11_shortcuts_are_deleted_with_the_widget_so_a_reloaded_module_keeps_its_keys(make_host):
    host = make_host()
    widget = host.select()
    keys = list(widget.panel.shortcuts())
    assert all(len(host.main_window.live_shortcuts(key)) == 1 for key in keys)
    reloaded = host.reload()
    assert reloaded is not widget and not widget.shortcuts
    assert host.main_window.statusBar().permanent == [reloaded.backToReviewButton] and widget.backToReviewButton is None
    for key in keys:
        assert len(host.main_window.live_shortcuts(key)) == 1, f"{key} is ambiguous after a reload"
    assert host.main_window.press("N")
    host.leave()
    assert not host.main_window.press("N"), "the keys work only while the module is shown"
    host.quit()
    assert host.main_window.shortcuts == [] and host.main_window.statusBar().permanent == [] and not host.uncaught


def test_defect_3_entering_with_a_folder_that_cannot_be_opened_still_binds_the_widgets(make_host, tmp_path):
    """The error dialog raises again after showing: the widgets must be bound to the node before the folder opens."""
    folder = tmp_path / "cohort"
    shutil.copytree(SELFTEST_FOLDER, folder)
    (folder / "results.csv").write_text("not,a\nresults,table\n")
    host = make_host()
    widget = host.select()
    node = widget._parameterNode
    host.leave()
    node.resultsFolder = str(folder)
    host.select()
    assert host.uncaught, "the folder's error reaches PythonQt"
    assert _bound(widget, widget._parameterNode) and widget.panel.cohort is None
    assert all(shortcut.enabled for shortcut in widget.shortcuts)


def test_defect_3_a_folder_opened_before_the_core_was_installed_opens_once_it_is(make_host, monkeypatch, tmp_path):
    """Before: "No module named 'auvcore'", and picking the same folder again never retried."""
    folder = tmp_path / "cohort"
    shutil.copytree(SELFTEST_FOLDER, folder)
    hidden = hidden_packages(monkeypatch, "auvcore")
    host = make_host()
    widget = host.select()
    # Opening asks to install first; a Slicer started for testing answers the question with "no"
    # (its confirmOkCancelDisplay compares True with QMessageBox.Ok).
    widget._parameterNode.resultsFolder = str(folder)
    assert widget.panel.cohort is None and not host.uncaught and not host.pip_requests
    assert widget.ui.cohortSummaryLabel.text == (
        "Reading a results folder needs AUVCore: install the dependencies to open it.")
    hidden.reveal()  # installed after all
    widget.ui.installDependenciesButton.emit("clicked(bool)", True)
    assert widget.panel.cohort is not None and len(host.tables["cohortTableWidget"].rows) == 3
