"""Drive a real ``auv review`` server from a real browser: for the tests, the latency benchmark and the README's picture.

:class:`ReviewServer` runs ``auv review`` as its own process (the address it
prints is read back) and stops or kills it; :func:`open_chromium` starts the
system's Chromium through Playwright's Python API (Playwright's own browsers are
never downloaded: ``executable_path``, ``AUV_CHROMIUM`` or ``chromium`` on the path),
headless, with a fresh profile and without its background network traffic;
:class:`ReviewPage` reads the page: a view's pixels from the browser's own
screenshot, the moment a view's image changes.

Example:
    >>> with ReviewServer.start("results", "--score", "agreement") as server, open_chromium() as browser:   # doctest: +SKIP
    ...     page = ReviewPage.open(browser, server.address)
    ...     page.press("N")
    ...     pixels = page.view_pixels("axial")
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .server import READY
from .views import VIEW_NAMES

#: Chromium's switches for a headless run on a closed network (without the last four it keeps calling home).
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: How long a server may take to start (SlicerApp, the first case) on a busy 2-core machine.
START_TIMEOUT_S = 180.0


class ReviewServer:
    """An ``auv review`` process: its address, its output lines, and stopping or killing it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.address = ""

    @classmethod
    def start(cls, folder: str | Path, *arguments: str, timeout: float = START_TIMEOUT_S,
              env: dict[str, str] | None = None) -> ReviewServer:
        """Start ``auv review FOLDER --port 0 ARGUMENTS`` and wait until it serves.

        Raises:
            RuntimeError: with its output, when it exits or is not serving within ``timeout`` seconds.
        """
        command = [sys.executable, "-m", "auvcore.cli", "review", str(folder), "--port", "0", *arguments]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        server = cls(process)
        try:
            line = server.wait_for(READY, timeout)
        except RuntimeError:
            server.kill()
            raise
        server.address = re.search(r"at (http\S+)", line).group(1)  # type: ignore[union-attr]
        return server

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, text: str, timeout: float, after: int = 0) -> str:
        """The first output line from ``after`` on that holds ``text``; RuntimeError with the output otherwise."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                match = next((line for line in self.lines[after:] if text in line), None)
                if match is not None:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(self.lines[-40:])
                    state = f"exited with {self.process.returncode}" if self.process.poll() is not None else "still running"
                    raise RuntimeError(f"auv review ({state}) did not print {text!r} within {timeout:g} s:\n{tail}")
                self._seen.wait(min(left, 0.5))

    @property
    def port(self) -> int:
        return int(re.search(r":(\d+)/", self.address).group(1))  # type: ignore[union-attr]

    def stop(self, timeout: float = 20.0) -> None:
        """Interrupt it (as Ctrl-C does) and wait; kill it when it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(5)

    def kill(self) -> None:
        """End it at once (SIGKILL): nothing of it runs on."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def __enter__(self) -> ReviewServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def open_chromium(executable: str | None = None) -> Iterator[Any]:
    """The system's Chromium, headless, through Playwright (a fresh temporary profile per browser)."""
    from playwright.sync_api import sync_playwright

    path = executable or os.environ.get("AUV_CHROMIUM") or shutil.which("chromium") or DEFAULT_CHROMIUM
    if not Path(path).exists():
        raise RuntimeError(f"{path} does not exist: install Chromium (Debian: sudo apt-get install chromium) or set "
                           "AUV_CHROMIUM to its executable")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


#: The script that records when a view's image changes (the time of each new frame, page clock, ms).
FRAME_WATCH = """
(name) => {
  window.auvFrames = window.auvFrames || {};
  window.auvFrames[name] = [];
  window.auvWatching = window.auvWatching || {};
  if (window.auvWatching[name]) { return; }
  const image = document.getElementById("auv-view-" + name).parentElement.querySelector("img.image-display-area");
  new MutationObserver(() => window.auvFrames[name].push(performance.now()))
    .observe(image, {attributes: true, attributeFilter: ["src"]});
  window.auvWatching[name] = true;
}
"""


class ReviewPage:
    """A browser tab on the workstation."""

    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    def open(cls, browser: Any, address: str, width: int = 1400, height: int = 860, timeout_s: float = 90.0) -> ReviewPage:
        """Open ``address`` in a new tab and wait until the axial view shows a frame."""
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(address)
        review = cls(page)
        review.wait_ready(timeout_s)
        return review

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the axial view shows a frame (after opening or reloading the page)."""
        self.view("axial").wait_for(state="visible", timeout=timeout_s * 1000)
        self.page.wait_for_function("(name) => { const m = document.getElementById('auv-view-' + name);"
                                    " const i = m && m.parentElement.querySelector('img.image-display-area');"
                                    " return i && i.src && i.naturalWidth > 0; }", arg=VIEW_NAMES["axial"],
                                    timeout=timeout_s * 1000)

    def view(self, orientation: str) -> Any:
        """The image element of a view (axial, coronal, sagittal or 3d)."""
        return self.page.locator(f"div:has(> #auv-view-{VIEW_NAMES[orientation]}) img.image-display-area")

    def view_pixels(self, orientation: str = "axial") -> np.ndarray:
        """The view as the browser shows it: RGB uint8 (rows, columns, 3) from the browser's screenshot."""
        from PIL import Image

        png = self.view(orientation).screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def text(self, element_id: str) -> str:
        return self.page.locator(f"#{element_id}").inner_text()

    def press(self, key: str) -> None:
        """Press ``key`` on the page (a text field with the focus takes it, as it would a reviewer's)."""
        self.page.keyboard.press(key)

    def watch_frames(self, orientation: str = "axial") -> None:
        """Start recording the times of the view's new frames (:meth:`frames`)."""
        self.page.evaluate(FRAME_WATCH, VIEW_NAMES[orientation])

    def frames(self, orientation: str = "axial") -> list[float]:
        return list(self.page.evaluate("(name) => window.auvFrames[name]", VIEW_NAMES[orientation]))

    def now(self) -> float:
        return float(self.page.evaluate("performance.now()"))

    def wait_for_text(self, element_id: str, text: str, timeout_s: float = 60.0) -> None:
        self.page.locator(f"#{element_id}").filter(has_text=text).wait_for(timeout=timeout_s * 1000)

    def wait_until_still(self, orientation: str = "axial", quiet_ms: float = 700.0, new_frame: bool = False,
                         timeout_s: float = 60.0) -> None:
        """Wait until the view has shown no new frame for ``quiet_ms`` (and, with ``new_frame``, shown one first):
        the server has drawn what it was sent (mouse events reach it on their own channel, ahead of any key)."""
        self.watch_frames(orientation)
        start, deadline = self.now(), time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            frames = self.frames(orientation)
            if (frames or not new_frame) and self.now() - max([start, *frames]) >= quiet_ms:
                return
            self.page.wait_for_timeout(100)
        raise TimeoutError(f"the {orientation} view {'kept changing' if self.frames(orientation) else 'showed no new frame'}"
                           f" for {timeout_s:g} s")

    def edits(self) -> int:
        """The Fix panel's count of the loaded case's edits (applied on the server)."""
        return int(self.text("auv-edits").split()[0])

    def wait_for_edits(self, more_than: int, timeout_s: float = 60.0) -> None:
        """Wait until the server has applied an edit beyond ``more_than`` (a stroke: on the mouse's release)."""
        self.page.wait_for_function("(count) => parseInt(document.getElementById('auv-edits').innerText) > count",
                                    arg=more_than, timeout=timeout_s * 1000)

    def stroke(self, height: float = 0.5, start: float = 0.1, end: float = 0.9, steps: int = 20,
               orientation: str = "axial") -> None:
        """Drag the mouse across a view, left to right at ``height`` (fractions of the view), and wait until the
        server has applied the edit: the release travels on the view's own channel, so on a busy machine a key
        pressed after it could be handled first. With the paint effect on, a paint stroke."""
        edits = self.edits()
        box = self.view(orientation).bounding_box()
        y, mouse = box["y"] + box["height"] * height, self.page.mouse
        mouse.move(box["x"] + box["width"] * start, y)
        mouse.down()
        for step in range(1, steps + 1):
            mouse.move(box["x"] + box["width"] * (start + (end - start) * step / steps), y)
            self.page.wait_for_timeout(25)
        mouse.up()
        self.wait_for_edits(edits)

    def wait_for_message(self, *texts: str, timeout_s: float = 60.0) -> str:
        """The page's message once it holds one of ``texts``, else the last message shown (for the failure)."""
        found = self.page.wait_for_function(
            "(texts) => { const m = document.getElementById('auv-message');"
            " const t = m ? m.innerText : ''; return texts.some((x) => t.includes(x)) ? t : null; }",
            arg=list(texts), timeout=timeout_s * 1000)
        return str(found.json_value())
