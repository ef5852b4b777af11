"""A griffe extension for the site's API pages: the package's docstrings as Sphinx's napoleon reads them.

auvcore's docstrings are Google style with an ``Example:`` heading and Sphinx cross-reference roles
(:func:`name`), which ``pytest --doctest-modules`` and napoleon read. griffe's Google parser knows only the
``Examples:`` heading (it renders ``Example:`` as a note, its ``>>>`` lines as nested quotes, and a doctest's
``['a', 'b']`` output as a broken link) and prints roles verbatim. This rewrites both before the docstring is
parsed, so a doctest renders as code and a role as the name in code, and no source file changes for the site.

``mkdocs.yml`` names this file among the Python handler's ``extensions``.

Example:
    >>> readable("Uses :func:`~auvcore.scales.cohort_auv`.\\n\\nExample:\\n    >>> 1\\n    1")
    'Uses `cohort_auv`.\\n\\nExamples:\\n    >>> 1\\n    1'
"""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
#: ``:role:`target``` with an optional ``~`` that shows only the target's last part, as Sphinx does.
SPHINX_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _role_as_code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def readable(docstring: str) -> str:
    """The docstring with ``Example:`` headings as ``Examples:`` and Sphinx roles as inline code."""
    return SPHINX_ROLE.sub(_role_as_code, EXAMPLE_HEADING.sub(r"\1Examples:", docstring))


class ProjectDocstrings(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`readable` before mkdocstrings parses it."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:  # noqa: ARG002
        if obj.docstring is not None:
            obj.docstring.value = readable(obj.docstring.value)
