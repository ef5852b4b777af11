"""Serve a results folder's review workstation: check rendering, build the app, guard every request, print the address.

Example:
    >>> serve(ResultsFolder("results"), ServeOptions(port=0))   # doctest: +SKIP
    auv review: serving results (3 cases, 11 structures) at http://127.0.0.1:40211/
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from ..results import ResultsFolder
from .access import AccessPolicy
from .offscreen import check_offscreen_rendering

#: The message a server prints once it listens (the tests and the benchmark wait for it).
READY = "auv review: serving"


@dataclass(frozen=True)
class ServeOptions:
    """How ``auv review`` serves: where, with which token, whether it writes, what it ranks by."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    read_only: bool = False
    open_browser: bool = False
    score: str = "auv"
    colormap: str = "viridis"


def serve(folder: ResultsFolder, options: ServeOptions) -> None:
    """Serve until interrupted (Ctrl-C)."""
    policy = AccessPolicy.for_host(options.host, options.token)
    check_offscreen_rendering()  # before the views are made: a clear error instead of a crash
    logging.basicConfig(level=logging.WARNING, format="auv review: %(message)s")
    logging.getLogger("auvcore.workstation").setLevel(logging.INFO)
    from trame_server import Server  # noqa: F401 (the app's own server)

    from .app import ReviewApp

    app = ReviewApp(folder, options.score, options.read_only, options.colormap)
    app.server.controller.on_server_bind.add(lambda wslink_server: wslink_server.app.middlewares.append(policy.middleware()))
    queue = app.session.queue

    def ready(**_: object) -> None:
        address = policy.address(app.server.port)
        mode = ", read-only" if options.read_only else ""
        print(f"{READY} {folder.root} ({len(queue.cohort.cases)} cases, {len(queue.entries)} structures{mode}) at "
              f"{address}", flush=True)
        if options.open_browser:
            import webbrowser

            webbrowser.open(address)

    app.server.controller.on_server_ready.add(ready)
    sys.stdout.flush()
    app.server.start(port=options.port, host=options.host, open_browser=False, show_connection_info=False,
                     disable_logging=True, timeout=0)
