"""A clean stop on SIGTERM / SIGINT: the training loop checks the flag after every step."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any


class StopFlag:
    """Set by SIGTERM / SIGINT; the loop stops cleanly after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested, self.signum = True, signum

    @property
    def exit_status(self) -> int:
        """A shell's status for a process ended by the signal (143 for SIGTERM, 130 for SIGINT), so that
        ``auv train ... && auv predict ...`` does not go on with an unfinished model. A DDP rank that saw
        another rank's stop request reports SIGTERM's."""
        return 128 + (self.signum or signal.SIGTERM)

    def __enter__(self) -> "StopFlag":
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
