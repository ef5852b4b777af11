"""A clean stop on SIGTERM / SIGINT: the training loop checks the flag after every step."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any


class StopFlag:
    """Set by SIGTERM / SIGINT; the loop stops cleanly after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> "StopFlag":
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
