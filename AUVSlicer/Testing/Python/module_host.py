"""Slicer's side of a scripted module, for ``AUVSlicer.py`` loaded with Slicer's own Python (``slicer_python``).

What the C++ application does around the module's widget, each as the named
Slicer or Qt source does it and no more:

* the module manager builds the widget once (``AUVSlicerWidget(parent)``, then
  ``setup()``, and ``slicer.modules.AUVSlicerWidget`` names it), calls
  ``enter()`` and ``exit()`` as the module is shown and left, reloads it as
  ``slicer.util.reloadScriptedModule`` does (``cleanup()`` of the old widget,
  a new one set up and entered; the old one never gets ``exit()``), and
  emits ``moduleAboutToBeUnloaded`` when Slicer quits;
* a Python exception raised into C++ (an ``enter()``, a Qt slot) is printed
  by PythonQt and goes no further (``PythonQt::handleError``): recorded here in
  :attr:`ModuleHost.uncaught`;
* ``slicer.app`` runs with ``--testing``, as ctest starts Slicer
  (``SlicerMacroPythonTesting.cmake``): ``slicer.util`` dialogs log instead of
  showing, and ``tryWithErrorDisplay`` re-raises;
* the main window owns the application shortcuts; as Qt's shortcut map does,
  a key that two enabled shortcuts share is ambiguous and runs neither;
* nothing is installed: ``slicer.packaging`` is absent and ``slicer.util``'s
  pip functions fail as on a machine without network, recording what was asked;
* the Colors and Segmentations modules' logics are on the scene, as Slicer sets
  them up at startup (colour legends, segmentation converters, the Segment
  Editor's node class);
* ``slicer.util.selectModule`` shows a module: the shown one's ``exit()``, then
  the new one's ``enter()`` (``qSlicerModulePanel``); besides this module there is
  the Segment Editor (:class:`SegmentEditorModuleWidget`), whose widget reads and
  writes the singleton ``vtkMRMLSegmentEditorNode`` through a real
  ``vtkSlicerSegmentEditorLogic`` and installs its keyboard shortcuts while shown;
* the main window has a status bar that keeps permanent widgets.

``qt.QProcess`` and its timer are PyQt5's (the device probe and jobs run real
processes), as are the values of ``qt.Qt`` and ``qt.QMessageBox`` (whose ``question``
answers as the test scripts the user's click); the .ui's widgets are the panel tests' stand-ins, and the tables
record what they are filled with (``QTableWidget`` needs a GUI application).
:func:`hidden_packages` makes installed packages absent, metadata and import
alike, for a Slicer that has never installed them.

Example:
    >>> with SlicerPython(TAGS[0]) as python:                        # doctest: +SKIP
    ...     host = ModuleHost(python, monkeypatch, tmp_path)
    ...     widget = host.select()
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import slicer
import vtk
from headless import HeadlessScene
from slicer_python import MODULE_FOLDER, SlicerPython, TranslatingApp
from test_panel import StandInWidget, _ui

MODULE_NAME = "AUVSlicer"
SEGMENT_EDITOR = "SegmentEditor"
#: The keys qMRMLSegmentEditorWidget::installKeyboardShortcuts binds on the main window (v5.10.0 and v5.12.3):
#: effects 1-10 and 11-20, deactivate, toggle the last effect, undo, redo, previous and next segment.
SEGMENT_EDITOR_KEYS = (*"1234567890", *(f"Shift+{n}" for n in "1234567890"), "Esc", "Space", "Z", "Undo", "Y", "Redo",
                       "Q", "W", "/", "*", ",", ".", ">", "<")


def call_from_cpp(host: ModuleHost, function: Callable, *args) -> None:
    """Call ``function`` as PythonQt calls Python from C++: an exception is printed, recorded, and goes no further."""
    try:
        function(*args)
    except Exception as error:  # noqa: BLE001 (PythonQt::handleError prints any exception)
        host.uncaught.append(error)


class ModuleManager:
    """``slicer.app.moduleManager()``: its ``moduleAboutToBeUnloaded(QString)`` signal, and each module's path."""

    def __init__(self, host: ModuleHost) -> None:
        self.host = host
        self.slots: dict[str, list[Callable]] = {}

    def connect(self, signal: str, slot: Callable) -> None:
        self.slots.setdefault(signal, []).append(slot)

    def disconnect(self, signal: str, slot: Callable) -> None:
        self.slots[signal].remove(slot)

    def emit(self, signal: str, *args) -> None:
        for slot in list(self.slots.get(signal, [])):
            call_from_cpp(self.host, slot, *args)


class ViewlessLayoutManager:
    """``slicer.app.layoutManager()`` of a layout without slice widgets: the tests' slice nodes have no view, so
    there is no slice logic to fit (``slicer.util.setSliceViewerLayers(fit=True)`` fits each one it lists)."""

    @staticmethod
    def mrmlSliceLogics() -> vtk.vtkCollection:
        return vtk.vtkCollection()

    @staticmethod
    def sliceViewNames() -> list[str]:
        return []


class Application(TranslatingApp):
    """``slicer.app`` of a Slicer started with ``--testing``."""

    applicationName = "3D Slicer"

    def __init__(self, host: ModuleHost, temporary_path: Path, core_application) -> None:
        self.temporaryPath = str(temporary_path)
        self._module_manager = ModuleManager(host)
        self._core_application = core_application
        self.cursors: list[object] = []

    def moduleManager(self) -> ModuleManager:
        return self._module_manager

    @staticmethod
    def layoutManager() -> ViewlessLayoutManager:
        return ViewlessLayoutManager()

    @staticmethod
    def testingEnabled() -> bool:
        return True

    def processEvents(self) -> None:
        self._core_application.processEvents()

    def setOverrideCursor(self, cursor) -> None:
        self.cursors.append(cursor)

    def restoreOverrideCursor(self) -> None:
        self.cursors.pop()


class StatusBar:
    """``QMainWindow::statusBar()``: its permanent widgets and the message shown."""

    def __init__(self) -> None:
        self.permanent: list[object] = []
        self.message = ""

    def addPermanentWidget(self, widget) -> None:
        self.permanent.append(widget)

    def removeWidget(self, widget) -> None:
        self.permanent.remove(widget)

    def showMessage(self, message: str, timeout: int = 0) -> None:
        self.message = message


class MainWindow:
    """The main window: the parent of application shortcuts, and its status bar."""

    def __init__(self) -> None:
        self.shortcuts: list[Shortcut] = []
        self._status_bar = StatusBar()

    def statusBar(self) -> StatusBar:
        return self._status_bar

    def live_shortcuts(self, key: str) -> list[Shortcut]:
        """The enabled, undeleted shortcuts of ``key`` (more than one: ambiguous, Qt runs none of them)."""
        return [s for s in self.shortcuts if s.key.key == key and s.enabled and not s.deleted]

    def press(self, key: str) -> bool:
        """Press ``key``: its shortcut runs when exactly one is live; whether one ran."""
        live = self.live_shortcuts(key)
        if len(live) != 1:
            return False
        for slot in live[0].slots.get("activated()", []):
            slot()
        return True


class KeySequence:
    def __init__(self, key: str) -> None:
        self.key = key


class Shortcut:
    """``qt.QShortcut(keySequence, parent)``: a child of the main window until ``setParent(None)``/deletion."""

    def __init__(self, key: KeySequence, parent: MainWindow) -> None:
        self.key, self.parent, self.enabled, self.deleted = key, parent, True, False
        self.slots: dict[str, list[Callable]] = {}
        parent.shortcuts.append(self)

    def connect(self, signal: str, slot: Callable) -> None:
        self.slots.setdefault(signal, []).append(slot)

    def disconnect(self, signal: str) -> None:
        self.slots.pop(signal, None)

    def setEnabled(self, enabled: bool) -> None:
        self.enabled = enabled

    def setParent(self, parent) -> None:
        if self.parent is not None:
            self.parent.shortcuts.remove(self)
        self.parent = parent

    def deleteLater(self) -> None:
        self.deleted = True


class Label:
    def __init__(self, text: str = "") -> None:
        self.text = text


class PushButton(StandInWidget):
    """``qt.QPushButton(text)`` made in code: a stand-in widget that can be re-parented and deleted."""

    def __init__(self, text: str = "") -> None:
        super().__init__("QPushButton")
        self.text, self.parent, self.deleted = text, None, False

    def setParent(self, parent) -> None:
        self.parent = parent

    def deleteLater(self) -> None:
        self.deleted = True


class Settings:
    """``qt.QSettings`` of a fresh profile: nothing set (developer mode off)."""

    @staticmethod
    def contains(key: str) -> bool:
        return False

    @staticmethod
    def value(key: str, default=None):
        return default


class Layout:
    def __init__(self) -> None:
        self.widgets: list[object] = []

    def addWidget(self, widget) -> None:
        self.widgets.append(widget)


class ModulePanel:
    """The widget representation's Qt parent (``qSlicerScriptedLoadableModuleWidget``)."""

    def __init__(self) -> None:
        self._layout = Layout()
        self.isEntered = False

    def layout(self) -> Layout:
        return self._layout


class LoadedUi:
    """What ``slicer.util.loadUI`` returns; ``slicer.util.childWidgetVariables`` gives its widgets by name."""

    def __init__(self) -> None:
        self.ui = _ui()
        self.scene = None

    def setMRMLScene(self, scene) -> None:
        self.scene = scene


class SegmentEditorWidget:
    """``qMRMLSegmentEditorWidget`` (Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.cxx, v5.10.0
    and v5.12.3) as far as choosing what to edit goes. Its state is the parameter node's, read and written through
    a real ``vtkSlicerSegmentEditorLogic`` (its ``setSegmentationNode``, ``setSourceVolumeNode`` and
    ``setCurrentSegmentID`` only forward there). ``updateWidgetFromMRML`` runs on every change of the node, as
    the widget observes it; when it finds a new segmentation it selects the segmentation's reference geometry
    volume in its source volume selector, which sets the node's source volume (``updateWidgetFromSegmentationNode``);
    a selected segment the segmentation lacks is shown as no selection."""

    def __init__(self, scene, main_window: MainWindow) -> None:
        self.scene, self.main_window = scene, main_window
        self.logic = slicer.vtkSlicerSegmentEditorLogic()
        self.logic.SetMRMLScene(scene)
        self.segmentation = self.source_selector = None
        self.selected_segment = ""
        self.keyboard_shortcuts: list[Shortcut] = []
        self._observed = None
        self._updating = False

    def setMRMLSegmentEditorNode(self, node) -> None:
        if node is self.logic.GetSegmentEditorNode():
            return
        if self._observed is not None:
            self._observed[0].RemoveObserver(self._observed[1])
        self._observed = (node, node.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda *args: self.updateWidgetFromMRML()))
        self.logic.SetSegmentEditorNode(node)
        self.updateWidgetFromMRML()

    def updateWidgetFromMRML(self) -> None:
        node = self.logic.GetSegmentEditorNode()
        if node is None or self._updating:
            return
        self._updating = True
        try:
            segmentation = self.logic.GetSegmentationNode()
            if segmentation is not self.segmentation:
                self.segmentation = segmentation
                if segmentation is not None:
                    reference = segmentation.GetNodeReference(
                        slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole())
                    if reference is not self.source_selector:  # the selector's currentNodeChanged signal
                        self.source_selector = reference
                        self.logic.SetSourceVolumeNode(reference)
            selected = node.GetSelectedSegmentID() or ""
            valid = segmentation is not None and segmentation.GetSegmentation().GetSegmentIndex(selected) >= 0
            self.selected_segment = selected if valid else ""
        finally:
            self._updating = False

    def setSegmentationNode(self, node) -> None:
        self.logic.SetSegmentationNode(node)

    def segmentationNodeID(self) -> str:
        node = self.logic.GetSegmentationNode()
        return node.GetID() if node is not None else ""

    def sourceVolumeNodeID(self) -> str:
        node = self.logic.GetSourceVolumeNode()
        return node.GetID() if node is not None else ""

    def setSourceVolumeNodeID(self, node_id) -> None:
        self.logic.SetSourceVolumeNode(self.scene.GetNodeByID(node_id) if node_id else None)

    def installKeyboardShortcuts(self) -> None:
        self.uninstallKeyboardShortcuts()
        self.keyboard_shortcuts = [Shortcut(KeySequence(key), self.main_window) for key in SEGMENT_EDITOR_KEYS]

    def uninstallKeyboardShortcuts(self) -> None:
        for shortcut in self.keyboard_shortcuts:
            shortcut.setParent(None)
            shortcut.deleteLater()
        self.keyboard_shortcuts = []

    def setActiveEffect(self, effect) -> None:
        """No effect is active in these tests."""

    def removeViewObservations(self) -> None:
        """No view is observed here."""

    def close(self) -> None:
        self.uninstallKeyboardShortcuts()
        if self._observed is not None:
            self._observed[0].RemoveObserver(self._observed[1])
        self.logic.SetSegmentEditorNode(None)
        self.logic.SetMRMLScene(None)


class SegmentEditorModuleWidget:
    """``SegmentEditorWidget`` of Modules/Scripted/SegmentEditor/SegmentEditor.py (v5.10.0 and v5.12.3): the
    singleton parameter node, and what ``enter()`` and ``exit()`` do (the default source volume, taken from the
    slice views, is left out: there are no slice widgets here)."""

    def __init__(self, scene, main_window: MainWindow) -> None:
        self.scene = scene
        self.parameterSetNode = None
        self.editor = SegmentEditorWidget(scene, main_window)
        self.selectParameterNode()

    def selectParameterNode(self) -> None:
        segmentEditorSingletonTag = "SegmentEditor"  # noqa: N806 (spelt as in SegmentEditor.py)
        segmentEditorNode = self.scene.GetSingletonNode(segmentEditorSingletonTag, "vtkMRMLSegmentEditorNode")  # noqa: N806
        if segmentEditorNode is None:
            segmentEditorNode = self.scene.CreateNodeByClass("vtkMRMLSegmentEditorNode")  # noqa: N806
            segmentEditorNode.UnRegister(None)
            segmentEditorNode.SetSingletonTag(segmentEditorSingletonTag)
            segmentEditorNode = self.scene.AddNode(segmentEditorNode)  # noqa: N806
        if self.parameterSetNode == segmentEditorNode:
            return
        self.parameterSetNode = segmentEditorNode
        self.editor.setMRMLSegmentEditorNode(self.parameterSetNode)

    def enter(self) -> None:
        self.editor.installKeyboardShortcuts()
        self.selectParameterNode()
        self.editor.updateWidgetFromMRML()
        if not self.editor.segmentationNodeID():
            segmentationNode = self.scene.GetFirstNode(None, "vtkMRMLSegmentationNode")  # noqa: N806
            if not segmentationNode:
                segmentationNode = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")  # noqa: N806
            self.editor.setSegmentationNode(segmentationNode)

    def exit(self) -> None:
        self.editor.setActiveEffect(None)
        self.editor.uninstallKeyboardShortcuts()
        self.editor.removeViewObservations()


class ModuleHost:
    """Loads ``AUVSlicer.py`` under ``python`` (a :class:`SlicerPython`) and plays Slicer's part around it."""

    def __init__(self, python: SlicerPython, monkeypatch, temporary_path: Path) -> None:
        from PyQt5 import QtCore, QtWidgets

        self.python, self.uncaught, self.pip_requests = python, [], []
        self.tables: dict[str, object] = {}
        self.main_window = MainWindow()
        self.panel: ModulePanel | None = None
        self.widget = None
        self.shown = ""  # the module shown ("" for one these tests do not play)
        self.module_logics = HeadlessScene(python.scene)
        self.segment_editor: SegmentEditorModuleWidget | None = None
        core_application = QtCore.QCoreApplication.instance() or QtCore.QCoreApplication([])
        self.app = Application(self, temporary_path, core_application)
        qt = python.qt
        for name in ("QProcess", "QProcessEnvironment", "QTimer", "Qt"):
            setattr(qt, name, getattr(QtCore, name))
        self.answers: list[int] = []  # the user's clicks in the message boxes Qt shows (QMessageBox.StandardButton)
        self.questions: list[tuple[str, str]] = []
        qt.QMessageBox = self._message_box(QtWidgets.QMessageBox)
        qt.QShortcut, qt.QKeySequence, qt.QLabel, qt.QSettings = Shortcut, KeySequence, Label, Settings
        qt.QPushButton = PushButton
        # PyQt5 aborts the process on an exception in a slot unless sys.excepthook is replaced; PythonQt prints it.
        monkeypatch.setattr(sys, "excepthook", lambda kind, error, trace: self.uncaught.append(error))
        monkeypatch.setattr(slicer, "app", self.app)
        monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(
            auvslicer=types.SimpleNamespace(path=str(MODULE_FOLDER / f"{MODULE_NAME}.py"))), raising=False)
        monkeypatch.setitem(sys.modules, "slicer.packaging", None)
        monkeypatch.setattr(slicer.util, "loadUI", lambda path: LoadedUi())
        monkeypatch.setattr(slicer.util, "childWidgetVariables", lambda loaded: loaded.ui)
        monkeypatch.setattr(slicer.util, "mainWindow", lambda: self.main_window)
        monkeypatch.setattr(slicer.util, "selectModule", lambda name: self.select(name))
        monkeypatch.setattr(slicer.util, "selectedModule", lambda: self.shown)
        monkeypatch.setattr(slicer.util, "pip_install", lambda requirements, **kwargs: self._no_network(requirements))
        monkeypatch.setattr(slicer.util, "pip_uninstall", lambda requirements, **kwargs: self._no_network(requirements))
        self.module = python.load_module()
        cohort_table = importlib.import_module("AUVSlicerLib.cohort_table")
        monkeypatch.setattr(cohort_table, "fill_table_widget", self._fill_table)

    def _fill_table(self, table, content, selected=None) -> None:
        """Record what a table shows; its ``rowCount`` follows, as ``QTableWidget.setRowCount`` sets it."""
        self.tables[table.name] = content
        table.rowCount = len(content.rows) if content else 0

    def _message_box(self, message_box: type) -> type:
        """PyQt5's ``QMessageBox`` values; ``question`` (modal even for a Slicer started for testing, as it is
        Qt's, not ``slicer.util``'s) records what it asks and answers with the next of :attr:`answers`."""
        host = self

        class MessageBox(message_box):
            @staticmethod
            def question(parent, title, text, buttons=None, default=None):
                host.questions.append((title, text))
                if not host.answers:
                    raise AssertionError(f"{title!r} asked {text!r} and the test scripted no answer")
                return host.answers.pop(0)

        return MessageBox

    def _no_network(self, requirements) -> None:
        self.pip_requests.append(requirements)
        raise RuntimeError(f"pip could not reach the package index for {requirements} (no network)")

    def _build(self):
        self.panel = ModulePanel()
        widget = self.module.AUVSlicerWidget(self.panel)
        slicer.modules.AUVSlicerWidget = self.widget = widget
        call_from_cpp(self, widget.setup)
        return widget

    def select(self, name: str = MODULE_NAME):
        """Show the module ``name`` (this one, built on first use, or the Segment Editor): the shown module's
        ``exit()``, then its ``enter()``; returns this module's widget."""
        if name not in (MODULE_NAME, SEGMENT_EDITOR):
            raise ValueError(f"these tests play no module {name!r}")
        if name == SEGMENT_EDITOR:
            self.leave()
            if self.segment_editor is None:
                self.segment_editor = SegmentEditorModuleWidget(self.python.scene, self.main_window)
            if self.shown != SEGMENT_EDITOR:
                self.shown = SEGMENT_EDITOR
                call_from_cpp(self, self.segment_editor.enter)
            return self.widget
        self._leave_segment_editor()
        if self.widget is None:
            self._build()
        if not self.panel.isEntered:
            self.panel.isEntered = True
            self.shown = MODULE_NAME
            call_from_cpp(self, self.widget.enter)
        return self.widget

    def _leave_segment_editor(self) -> None:
        if self.shown == SEGMENT_EDITOR:
            self.shown = ""
            call_from_cpp(self, self.segment_editor.exit)

    def leave(self) -> None:
        """Show another module: the shown one's ``exit()``."""
        self._leave_segment_editor()
        if self.panel is not None and self.panel.isEntered:
            self.panel.isEntered = False
            self.shown = ""
            call_from_cpp(self, self.widget.exit)

    def reload(self):
        """``slicer.util.reloadScriptedModule``: the old widget's ``cleanup()``, then a new widget, set up and entered."""
        old = self.widget
        old.cleanup()
        self.app.moduleManager().disconnect("moduleAboutToBeUnloaded(QString)", old._onModuleAboutToBeUnloaded)
        self.widget = None
        self._build()
        self.panel.isEntered = True
        call_from_cpp(self, self.widget.enter)
        return self.widget

    def quit(self) -> None:
        """Slicer quits: the module manager announces the unload (``ScriptedLoadableModuleWidget`` calls cleanup)."""
        self.app.moduleManager().emit("moduleAboutToBeUnloaded(QString)", MODULE_NAME)

    def close(self) -> None:
        """Quit (the widget's cleanup stops its jobs) and wait until their processes are gone."""
        widget = self.widget
        self.quit()
        panel = getattr(widget, "panel", None)
        jobs = [job for job in (getattr(panel, "job", None), getattr(panel, "deviceProbe", None)) if job is not None]
        self.process_events(30, until=lambda: not any(job.running for job in jobs))
        if self.segment_editor is not None:
            self.segment_editor.editor.close()
        self.module_logics.segmentations_logic.SetMRMLScene(None)
        self.module_logics.color_logic.SetMRMLScene(None)

    def process_events(self, seconds: float, until: Callable[[], bool]) -> None:
        """Let Qt deliver process output and timers until ``until()`` or ``seconds`` passed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            self.app.processEvents()
            time.sleep(0.02)


class _HiddenPackageFinder(importlib.abc.MetaPathFinder):
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


class HiddenPackages:
    """Installed packages made absent, import and metadata alike, until :meth:`reveal` (or the test's end)."""

    def __init__(self, monkeypatch, names: frozenset[str]) -> None:
        self.monkeypatch, self.names = monkeypatch, names
        self.finder = _HiddenPackageFinder(names)
        self.lookups = {name: getattr(importlib.metadata, name) for name in ("version", "distribution")}
        for module in [m for m in sys.modules if m.split(".")[0] in names]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setattr(sys, "meta_path", [self.finder, *sys.meta_path])
        for name, lookup in self.lookups.items():
            monkeypatch.setattr(importlib.metadata, name, self._absent(lookup))

    def _absent(self, lookup: Callable) -> Callable:
        def look_up(name: str):
            if name in self.names:
                raise importlib.metadata.PackageNotFoundError(name)
            return lookup(name)
        return look_up

    def reveal(self) -> None:
        """The packages are installed again (as after a successful pip install)."""
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        for name, lookup in self.lookups.items():
            self.monkeypatch.setattr(importlib.metadata, name, lookup)


def hidden_packages(monkeypatch, *names: str) -> HiddenPackages:
    """``names`` are not installed, as on a clean Slicer: not importable, no metadata (undone with ``monkeypatch``)."""
    return HiddenPackages(monkeypatch, frozenset(names))
