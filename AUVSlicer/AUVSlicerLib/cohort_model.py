"""The cohort browser's model: a results folder of ``auv score``, its decisions, and their files.

The folder's ``results.csv`` gives the cases; ``exclusions.json`` (the file
the core's curation reads, :mod:`auvcore.curation`) gives the decisions.
Every change is written at once to ``exclusions.autosave.json`` beside it, so
a crash or a closed Slicer loses nothing; :meth:`CohortModel.save` writes the
real file (refusing if someone else changed it meanwhile) and drops the
autosave. Opening a folder with an autosave offers it back
(:attr:`CohortModel.autosave_found`, :meth:`CohortModel.recover_autosave`).

Example:
    >>> model = CohortModel("/data/out")                       # doctest: +SKIP
    >>> model.mark_quantile(keep=0.9)                           # doctest: +SKIP
    >>> model.exclude("case_07", note="label shifted by a slice")  # doctest: +SKIP
    >>> model.save()                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from auvcore.curation import (
    ExclusionList,
    load_exclusions,
    quantile_threshold,
    retained_cases,
    save_exclusions,
    scored_cases,
    write_manifest,
    write_splits_final,
)
from auvcore.errors import InputError
from auvcore.files import atomic_write_bytes
from auvcore.results import (
    RETAINED_MANIFEST_CSV,
    SPLITS_JSON,
    LabelChoice,
    ResultsFolder,
    label_for,
    load_corrections,
    read_results,
)
from auvcore.scorers import SCORERS

from .case_result import CaseResult, case_result_path, load_case_result

AUTOSAVE_NAME = "exclusions.autosave.json"
#: Columns the browser shows first, in this order; the extra scorers' columns
#: (``auv score --scorers``), then the per-class S columns follow.
SUMMARY_COLUMNS = ("case_id", "auv", "S", "excluded", "decision", "status", "correction")


class CohortModel:
    """One results folder: its cases, the decisions about them, and whether those are saved."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.results: pd.DataFrame = read_results(self.folder)
        self.exclusions_path = ResultsFolder(self.folder).exclusions
        self.autosave_path = self.folder / AUTOSAVE_NAME
        self.exclusions: ExclusionList = load_exclusions(self.exclusions_path)
        self.dirty = False
        self.autosave_found = self.autosave_path.exists()

    @property
    def case_ids(self) -> list[str]:
        return self.results["case_id"].tolist()

    def table(self, sort_by: str = "auv", descending: bool = True) -> pd.DataFrame:
        """The browser's rows sorted by any column (cases without a value last)."""
        effective = self.exclusions.effective()
        excluded = self.exclusions.excluded()
        rows = self.results.copy()
        rows["excluded"] = rows["case_id"].isin(excluded)
        rows["decision"] = [self._describe(effective.get(case)) for case in rows["case_id"]]
        if "status" not in rows.columns:
            rows["status"] = "ok"
        corrections = load_corrections(ResultsFolder(self.folder))
        # The saved correction is the label every command uses for the case (auvcore.results.label_for).
        rows["correction"] = [corrections[case][-1].file if corrections.get(case) else "" for case in rows["case_id"]]
        class_columns = [c for c in rows.columns if c.startswith("S_")]
        scorer_columns = [c for c in SCORERS if c != "auv" and c in rows.columns]
        rows = rows[[*SUMMARY_COLUMNS, *scorer_columns, *class_columns]]
        if sort_by not in rows.columns:
            raise KeyError(f"no column {sort_by!r}; the columns are {list(rows.columns)}")
        return rows.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable").reset_index(drop=True)

    @staticmethod
    def _describe(decision) -> str:
        if decision is None:
            return ""
        text = f"{decision.action} ({decision.reason})"
        return f"{text}: {decision.note}" if decision.note else text

    def _row(self, case_id: str) -> pd.Series:
        match = self.results[self.results["case_id"] == case_id]
        if match.empty:
            raise KeyError(f"{ResultsFolder(self.folder).results_csv} has no case {case_id!r}")
        return match.iloc[0]

    def _auv(self, case_id: str) -> float | None:
        auv = self._row(case_id)["auv"]
        return None if pd.isna(auv) else float(auv)

    def case_files(self, case_id: str) -> tuple[Path, Path | None]:
        """The image and label files of a case (relative paths are taken from the results folder)."""
        row = self._row(case_id)

        def resolve(value) -> Path | None:
            if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value):
                return None
            path = Path(str(value))
            return path if path.is_absolute() else self.folder / path

        image = resolve(row.get("image"))
        if image is None:
            raise InputError(ResultsFolder(self.folder).results_csv, f"case {case_id!r} has no image path")
        return image, resolve(row.get("label"))

    def label_in_use(self, case_id: str) -> LabelChoice:
        """The label to show for a case: its saved correction where it has one, else its source (and which)."""
        _image, label = self.case_files(case_id)
        if label is None:
            raise InputError(ResultsFolder(self.folder).results_csv, f"case {case_id!r} has no label map")
        return label_for(ResultsFolder(self.folder), case_id, label)

    def case_result(self, case_id: str) -> CaseResult:
        return load_case_result(case_result_path(self.folder, case_id))

    def exclude(self, case_id: str, note: str = "") -> None:
        self._row(case_id)
        self.exclusions.exclude(case_id, self._auv(case_id), note=note)
        self._changed()

    def include(self, case_id: str, note: str = "") -> None:
        self._row(case_id)
        self.exclusions.include(case_id, note=note, auv=self._auv(case_id))
        self._changed()

    def quantile_threshold(self, keep: float) -> float | None:
        """F^-1(keep) over the scored cases: cases above it are the ones :meth:`mark_quantile` excludes."""
        scored = scored_cases(self.results)
        return quantile_threshold(scored["auv"], keep) if len(scored) else None

    def mark_quantile(self, keep: float) -> float | None:
        """Exclude the cases above the ``keep`` quantile (manual decisions stay); returns the threshold."""
        self.exclusions.apply_quantile(self.results, keep)
        self._changed()
        return self.exclusions.rule.threshold if self.exclusions.rule else None

    def retained(self) -> list[str]:
        return retained_cases(self.results, self.exclusions)

    def _changed(self) -> None:
        self.dirty = True
        atomic_write_bytes(self.autosave_path, (json.dumps(self.exclusions.to_dict(), indent=2) + "\n").encode("utf-8"))

    def recover_autosave(self) -> None:
        """Take the decisions of the autosave left by an unsaved session; they still need :meth:`save`."""
        recovered = load_exclusions(self.autosave_path)
        recovered.loaded_digest = self.exclusions.loaded_digest
        self.exclusions = recovered
        self.autosave_found = False
        self.dirty = True

    def discard_autosave(self) -> None:
        self.autosave_path.unlink(missing_ok=True)
        self.autosave_found = False

    def save(self) -> Path:
        """Write ``exclusions.json``; raises if it changed on disk since it was read."""
        save_exclusions(self.exclusions_path, self.exclusions, expected_previous=self.exclusions.loaded_digest)
        self.discard_autosave()
        self.dirty = False
        return self.exclusions_path

    def export_retained(self, folder: str | Path | None = None) -> tuple[Path, Path]:
        """Write the retained cases as a manifest and an nnU-Net ``splits_final.json``."""
        folder = Path(folder) if folder else self.folder
        retained = self.retained()
        manifest, splits = folder / RETAINED_MANIFEST_CSV, folder / SPLITS_JSON
        write_manifest(self.results[self.results["case_id"].isin(retained)], manifest)
        write_splits_final(retained, splits)
        return manifest, splits
