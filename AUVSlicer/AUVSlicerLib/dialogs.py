"""The panel's dialogs, on ``slicer.util``: what :class:`~AUVSlicerLib.panel.AUVSlicerPanel` is handed inside Slicer.

Example (inside Slicer):
    >>> with SlicerDialogs().errors("Failed to open the folder."):   # doctest: +SKIP
    ...     raise ValueError("shown in a message box, not raised")
"""

from __future__ import annotations

import qt
import slicer


class SlicerDialogs:
    """Message boxes of the Slicer application."""

    @staticmethod
    def confirm(message: str) -> bool:
        return slicer.util.confirmOkCancelDisplay(message)

    @staticmethod
    def ask_save(message: str) -> str:
        buttons = qt.QMessageBox.Save | qt.QMessageBox.Discard | qt.QMessageBox.Cancel
        answer = qt.QMessageBox.question(slicer.util.mainWindow(), "Unsaved changes", message, buttons)
        return {qt.QMessageBox.Save: "save", qt.QMessageBox.Discard: "discard"}.get(answer, "cancel")

    @staticmethod
    def info(message: str) -> None:
        slicer.util.showStatusMessage(message, 5000)

    @staticmethod
    def warn(message: str) -> None:
        slicer.util.warningDisplay(message)

    @staticmethod
    def errors(message: str):
        return slicer.util.tryWithErrorDisplay(message, waitCursor=True)
