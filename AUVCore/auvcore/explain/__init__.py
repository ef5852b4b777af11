"""``auv explain``: how the foundation model sees one class of one case, for teaching.

* :mod:`.view`: the class's slices, prompts, logits, energy spectrum and scores (no PyTorch);
* :mod:`.live`: the same from one run of the model on the class, as ``auv score`` runs it;
* :mod:`.cache`: the compressed per-case feature cache ``auv score`` writes for it;
* :mod:`.figures` and :mod:`.page`: the pictures and the self-contained HTML page;
* :mod:`.compare`: a planted copy (an audit corruption) to show side by side;
* :mod:`.cohort_values`: the class's values over a reference cohort;
* :mod:`.case_page`: the per-case page of ``auv report``.

Nothing is imported here, so :mod:`auvcore.cohort` can import :mod:`.cache` alone.
"""
