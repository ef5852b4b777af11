# ruff: noqa: N999 (Slicer names a scripted module's library <Module>Lib)
"""Logic of the AUV Slicer module, one job per file, over the MRML scene and without Qt.

- ``case_result``: read a case's scores (``OUT/cases/<id>.json``).
- ``colormap``: perceptual colour maps for U = 1 - S and their colour table node.
- ``uncertainty_colors``: colour segments by U with a legend; restore their own colours.
- ``results_table``: per-class table node and bar chart node.
- ``reference_cohort``: a case's AUV on a reference cohort's scale.
- ``case_loader``: load a cohort case (image + label) into the scene, unload the previous one.
- ``case_export``: write the loaded volume and segmentation to files for ``auv score``.
- ``cohort_model``: the cohort browser's cases, decisions, autosave and exports.
- ``job_commands``: ``auv score`` / ``auv train`` argument lists from settings.
- ``progress``: parse PROGRESS lines.
- ``job_runner``: job state from a process's output; a subprocess runner with clean stop.
- ``dependencies``: what is missing, and installing it with consent.
- ``explain_view``: a class's energy spectrum as a plot and its mask logits as a heat-map layer (Explain).

Importing this package imports nothing else: the modules that need ``auvcore``
are imported only once it is installed.
"""
