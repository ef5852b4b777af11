# ruff: noqa: N999 (Slicer names a scripted module's library <Module>Lib)
"""The AUV Slicer module's work, one job per file; AUVSlicer.py only wires it to Slicer.

Panel and logic:
- ``panel``: what each button and path field does, on injected logic, job runner and dialogs.
- ``review_panel``: the review workstation's queue, moves, verdicts, shortcuts and the Fix step.
- ``logic``: the scene work: export, colours, tables, cohort cases, review queue, slice jumps.
- ``dialogs``: the panel's message boxes on ``slicer.util``.
- ``cohort_table``: what the cohort table shows, and filling a ``QTableWidget`` (with it or the review queue).

Scores and colours (what to show is the core's :mod:`auvcore.review`, which ``auv review`` shows too: a case's
scores, each structure's z within its structure across the cohort, the colour plan, the review queue and its
table, the worst slices; these files show it in Slicer):
- ``colormap``: the colour table node of the legend.
- ``uncertainty_colors``: colour segments with a legend; restore their own colours.
- ``results_table``: per-class table node and bar chart node.
- ``reference_cohort``: a case's AUV on a reference cohort's scale.

Scene and files:
- ``case_loader``: load a cohort case (image + label) into the scene, unload the previous one.
- ``labelmap_import``: a label map as a segmentation whose segments carry their label value.
- ``node_removal``: remove a node with its display and storage nodes.
- ``case_export``: write the loaded volume and segmentation to files for ``auv score``.
- ``segment_editor``: set Slicer's Segment Editor to a structure's segment, segmentation and volume.
- ``correction_export``: an edited segmentation as a label map on its source label's grid, values and header.
- ``case_edits``: which label a loaded case shows (its correction or source), whether it was edited, saving it.
- ``cohort_model``: the cohort browser's cases, decisions, autosave and exports.
- ``explain_view``: a class's energy spectrum as a plot and its mask logits as a heat-map layer (Explain).
- ``proposal_view``: where the label and the model disagree on a structure, as an overlay; the model's outline
  put into the case's segmentation (Proposal, Edit proposal).

Jobs and dependencies:
- ``job_commands``: ``auv score`` / ``auv train`` argument lists from settings.
- ``job_runner``: job state from a process's output (PROGRESS lines by ``auvcore.results``); a subprocess runner.
- ``qt_job``: the same job on a ``qt.QProcess`` for Slicer's GUI thread.
- ``process_tree``: Stop ends the job's whole process tree (the CTK launcher forwards no signal).
- ``dependencies``: what is missing (PyTorch; exactly the bundled AUVCore), whether PyTorch loads (in its own
  process), and installing it with consent; ``installers``: how.

Importing this package imports nothing else; the files AUVSlicer.py imports when Slicer loads it
(``logic`` and what it imports at the top) need neither ``auvcore`` nor anything it brings.
"""
