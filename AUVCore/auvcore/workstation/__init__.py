"""``auv review``: the review workstation in a browser, a second face of the review over the same core.

Kitware's trame-slicer runs Slicer's own MRML, logic and views (the ``slicer-core``
wheel) behind a trame page, rendered on the server (offscreen, through EGL).
What is reviewed and how it is coloured is :mod:`auvcore.review`'s, as in the
Slicer module; what is written goes through :mod:`auvcore.results` (verdicts in
``review.json``, corrections in ``corrections/``). No model is loaded here.

* :mod:`.server`: serve a results folder (rendering checked, every request guarded, the address printed);
* :mod:`.access`: the host, the token and the check every request (page and websocket) passes;
* :mod:`.app`: the trame app: the session shown in the page, the page's keys and buttons;
* :mod:`.page`: the page's layout (Vuetify 3, as trame-slicer's own apps);
* :mod:`.session`: one reviewer's walk through the queue: moves, verdicts, saving a fix (no user interface);
* :mod:`.scene`: one case in the MRML scene: image, label as coloured segments, the edited label back on its grid;
* :mod:`.views`: trame-slicer's views showing a case; :mod:`.volumes`: the next cases read ahead;
* :mod:`.explain`: the explain pictures of a structure from its feature cache;
* :mod:`.offscreen`: EGL offscreen rendering, checked, with what to install when it is missing;
* :mod:`.driver`: a real server and a real Chromium (Playwright), for the tests, the benchmark and the README picture.

Importing this package imports nothing else.
"""
