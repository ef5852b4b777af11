"""``auv review``: the review workstation in a browser, on Slicer's own core (trame-slicer), for a results folder.

Example (shell):
    auv review results                          # http://127.0.0.1:<port>/ for this machine only
    auv review results --port 8080 --open       # a fixed port, and open it in the browser
    auv review results --host 0.0.0.0           # other machines: a token is generated and printed in the address
    auv review results --read-only              # teaching: no verdicts, no editor, nothing written
"""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..results import ResultsFolder
from ..scorers.registry import SCORERS


def run(args: argparse.Namespace) -> int:
    from ..workstation.server import ServeOptions, serve

    folder = ResultsFolder.find(args.results)
    if not ResultsFolder.holds_results(folder.root):
        raise InputError(folder.root, "is not a results folder of `auv score` (no results.csv and cases/ in it)")
    serve(folder, ServeOptions(host=args.host, port=args.port, token=args.token, read_only=args.read_only,
                               open_browser=args.open, score=args.score, colormap=args.colormap))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review", help="review a scored cohort's structures in a browser (queue, colours, verdicts, explain, fix)",
        description="Serve the review workstation of RESULTS: Slicer's views of each case rendered on this server, "
                    "the review queue most suspect first, verdicts written to review.json, explain pictures from the "
                    "feature cache, and fixes saved as corrections/<case>. One process; no model is loaded.")
    parser.add_argument("results", metavar="RESULTS", help="a results folder of `auv score`")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only); any other needs a token")
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, a free one; the address is printed)")
    parser.add_argument("--token", help="the token the page and its websocket require (default: none on 127.0.0.1, "
                                        "a generated one printed in the address on any other host)")
    parser.add_argument("--open", action="store_true", help="open the address in the default browser")
    parser.add_argument("--read-only", action="store_true",
                        help="teaching and demonstrations: no verdicts, no editor, nothing written to RESULTS")
    parser.add_argument("--score", default="auv", choices=list(SCORERS),
                        help="the score the queue is ranked and the structures coloured by (default: auv)")
    parser.add_argument("--colormap", default="viridis", choices=["viridis", "inferno"])
    parser.set_defaults(func=run)
