"""The workstation's Explain: how the model saw the structure under review, from the case's stored feature cache.

The pictures are ``auv explain``'s (:mod:`auvcore.explain.figures`): the slice
strip with the mask logits, the energy spectrum whose entropy is S, and the
structure's place among the same structure's values across the results folder;
they are drawn from what ``auv score`` stored (:func:`auvcore.explain.view.stored_class_view`
without running the model), as PNG data addresses the page shows. A case without
a feature cache gets a sentence saying how to make one.

Example:
    >>> figures = explain_structure(ResultsFolder("results"), "ct_fast", "spleen")   # doctest: +SKIP
    >>> [image.title for image in figures.images]                                     # doctest: +SKIP
    ['What the model answered, slice by slice', 'The energy spectrum S is the entropy of', 'spleen in the cohort']
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from ..errors import InputError
from ..results import ResultsFolder

#: Resolution of the explain pictures in the page.
DPI = 80


@dataclass(frozen=True)
class ExplainImage:
    title: str
    src: str


@dataclass(frozen=True)
class ExplainFigures:
    """The pictures of one structure (empty with ``problem`` set when they cannot be drawn) and a line about S."""

    images: tuple[ExplainImage, ...]
    text: str = ""
    problem: str = ""


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def explain_structure(folder: ResultsFolder, case_id: str, structure: str) -> ExplainFigures:
    """The explain pictures of ``structure`` of ``case_id``, or why there are none and how to make them."""
    from ..explain.cohort_values import class_values
    from ..explain.figures import cohort_placement, energy_spectrum, slice_strip, spectrum_text
    from ..explain.view import stored_class_view

    try:
        view = stored_class_view(folder, case_id, structure, run_model=False)
    except InputError as error:
        how = (f"make it once with `auv explain {folder.root} --case {case_id} --class {structure} --out "
               f"{folder.root / 'explain'}` (it runs the model on this structure and adds its arrays to the case's "
               "feature cache), then Explain again")
        return ExplainFigures((), problem=f"{error}. To see how the model saw it, {how}.")
    cohort = class_values(folder.root, structure)
    images = [ExplainImage("What the model answered, slice by slice", _png(slice_strip(view))),
              ExplainImage("The energy spectrum S is the entropy of", _png(energy_spectrum(view)))]
    if cohort:
        marks = {"this case": {"S": view.S, **view.scores}}
        images.append(ExplainImage(f"{structure} in the cohort", _png(cohort_placement(cohort, marks, structure))))
    return ExplainFigures(tuple(images), spectrum_text(view))
