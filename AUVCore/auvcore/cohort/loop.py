"""The scoring loop over a cohort (or one shard of it), resuming from the per-case cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from ..datasets import CaseSpec
from ..errors import InputError
from ..results.case_record import CaseRecord
from ..results.layout import ResultsFolder
from ..results.progress import format_case_progress
from .cache import look_up, same_pass, save_case, without_other_cohorts
from .pipeline import CaseScorer, error_record
from .settings import ScoreSettings


def score_cases(
    specs: Sequence[CaseSpec],
    out: str | Path,
    settings: ScoreSettings,
    scorer: CaseScorer | None = None,
    progress: bool = True,
    emit: Callable[[str], None] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> list[CaseRecord]:
    """Score the cases of one shard into ``OUT/cases`` (resuming from the cache); returns their records.

    ``shard = (i, n)`` takes every n-th case starting at i, so that n processes
    or jobs can share a cohort; :func:`load_records` then gathers them for the cohort stage.
    Bad cases are recorded with ``status = error`` and a message naming the file.

    Args:
        emit: receives one ``PROGRESS case=i/n id=... status=...`` line per case
            (the Slicer module parses them); default prints to stdout.
    """
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    folder = ResultsFolder(Path(out))
    folder.cases_dir.mkdir(parents=True, exist_ok=True)
    scorer = scorer or CaseScorer(settings)
    emit = emit or (lambda line: print(line, flush=True))
    mine = list(specs)[index::count]
    records: list[CaseRecord] = []
    rerun: dict[tuple[str, ...], list[str]] = {}
    bar = tqdm(mine, desc="auv score", unit="case", disable=not progress, file=sys.stderr)
    for number, spec in enumerate(bar, start=1):
        key = None
        try:
            identity = scorer.case_identity(spec)
            key = identity.key(settings)
            cached = look_up(folder, spec.case_id, identity, settings)
            record, status = cached.record, "cached"
            if record is None:
                if cached.lacking:
                    if cached.lacking not in rerun:  # said once per set of scorers lacking, then counted
                        print(f"{spec.case_id}: its saved scores lack {', '.join(cached.lacking)}, so its model pass runs "
                              "again (a case file keeps the scores of a pass, not the embeddings and logits they came from)",
                              flush=True)
                    rerun.setdefault(cached.lacking, []).append(spec.case_id)
                record, prototypes, features = scorer.score(spec, key, identity.image_hash)
                status = "ok"
                save_case(folder, record, prototypes, features)
        except InputError as error:
            record, status = error_record(spec, settings, error, key), "error"
            save_case(folder, record)
        records.append(record)
        bar.set_postfix_str(f"{spec.case_id}: {status}")
        emit(format_case_progress(number, len(mine), spec.case_id, status))
    for lacking, cases in rerun.items():
        print(f"ran the model again for {len(cases)} case(s) scored before without {', '.join(lacking)}; the cases "
              "scored with every scorer asked for (or more) were reused", flush=True)
    return records


def load_records(specs: Sequence[CaseSpec], out: str | Path, settings: ScoreSettings) -> list[CaseRecord]:
    """The records of every case, as shards wrote them (for the cohort stage after sharded scoring)."""
    folder = ResultsFolder(Path(out))
    records = []
    for spec in specs:
        path = folder.case_json(spec.case_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(path, f"is missing: case {spec.case_id!r} has not been scored (is a shard unfinished?)") from None
        except json.JSONDecodeError as error:
            raise InputError(path, f"is not valid JSON ({error})") from None
        record = CaseRecord.from_dict(data, path)
        if not same_pass(record, settings):
            raise InputError(path, "was scored with other settings than this merge")
        records.append(without_other_cohorts(record, settings))
    return records
