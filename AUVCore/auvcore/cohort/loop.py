"""The scoring loop over a cohort (or one shard of it), resuming from the per-case cache."""

from __future__ import annotations

import json
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from ..datasets import CaseSpec
from ..errors import InputError
from ..results.case_record import CaseRecord
from ..results.layout import ResultsFolder
from ..results.progress import format_case_progress
from .cache import CacheLookup, look_up, same_pass, save_case, without_other_cohorts
from .pipeline import CaseScorer, PreparedCase, error_record
from .settings import ScoreSettings


@dataclass
class _Fetched:
    """One case as the loop takes it: its key, what the cache holds and, when it is to be scored, the case read and
    prepared for the model; ``error``: the InputError that ended this (the case's error record)."""

    spec: CaseSpec
    key: str | None = None
    image_hash: str | None = None
    cached: CacheLookup = CacheLookup(None)
    prepared: PreparedCase | None = None
    error: InputError | None = None


def _fetch(scorer: CaseScorer, folder: ResultsFolder, settings: ScoreSettings, spec: CaseSpec) -> _Fetched:
    """Hash the case's files, look it up in the cache and, when it is not there, read and prepare it (a cached case
    is not read)."""
    fetched = _Fetched(spec)
    try:
        identity = scorer.case_identity(spec)
        fetched.key, fetched.image_hash = identity.key(settings), identity.image_hash
        fetched.cached = look_up(folder, spec.case_id, identity, settings)
        if fetched.cached.record is None:
            fetched.prepared = scorer.prepare(spec)
    except InputError as error:
        fetched.error = error
    return fetched


def _stop(reader: ThreadPoolExecutor | None, writer: ThreadPoolExecutor | None, upcoming: Future | None) -> None:
    """Drop the case read ahead (a read under way finishes) and wait for the last write (each is atomic, so an
    interrupted cohort leaves whole case files only)."""
    if upcoming is not None:
        upcoming.cancel()
    if reader is not None:
        reader.shutdown(wait=True, cancel_futures=True)
    if writer is not None:
        writer.shutdown(wait=True)


def score_cases(
    specs: Sequence[CaseSpec],
    out: str | Path,
    settings: ScoreSettings,
    scorer: CaseScorer | None = None,
    progress: bool = True,
    emit: Callable[[str], None] | None = None,
    shard: tuple[int, int] = (0, 1),
    read_ahead: bool = True,
) -> list[CaseRecord]:
    """Score the cases of one shard into ``OUT/cases`` (resuming from the cache); returns their records.

    ``shard = (i, n)`` takes every n-th case starting at i, so that n processes
    or jobs can share a cohort; :func:`load_records` then gathers them for the cohort stage.
    Bad cases are recorded with ``status = error`` and a message naming the file.

    With ``read_ahead`` (the default) the steps around the model overlap it: while the model runs on one case, a
    reading thread hashes the next case's files, looks it up in the cache and reads and prepares it
    (:meth:`CaseScorer.prepare`; one case ahead, no more), and a writing thread writes the case before's files
    (:func:`save_case`; one write pending, no more). The records, their order, the files and the lines printed are
    those of the serial loop (``read_ahead=False``); a case's ``PROGRESS`` line may come before its files are
    written, every file is written before this returns or raises, and a writer's error is raised here.

    Args:
        emit: receives one ``PROGRESS case=i/n id=... status=...`` line per case
            (the Slicer module parses them); default prints to stdout.
        read_ahead: overlap reading and writing with the model (False: one step after another).
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
    reader = ThreadPoolExecutor(1, thread_name_prefix="auv-read") if read_ahead else None
    writer = ThreadPoolExecutor(1, thread_name_prefix="auv-write") if read_ahead else None
    upcoming: Future[_Fetched] | None = None
    writing: Future[None] | None = None

    def write(*files) -> None:
        nonlocal writing
        if writer is None:
            save_case(folder, *files)
            return
        if writing is not None:
            writing.result()  # one write pending at most; its error is raised here
        writing = writer.submit(save_case, folder, *files)

    try:
        if reader is not None and mine:
            upcoming = reader.submit(_fetch, scorer, folder, settings, mine[0])
        for number, spec in enumerate(bar, start=1):
            if upcoming is not None:
                fetched = upcoming.result()
                upcoming = reader.submit(_fetch, scorer, folder, settings, mine[number]) if number < len(mine) else None
            else:
                fetched = _fetch(scorer, folder, settings, spec)
            lacking = fetched.cached.lacking
            if lacking:
                if lacking not in rerun:  # said once per set of scorers lacking, then counted
                    print(f"{spec.case_id}: its saved scores lack {', '.join(lacking)}, so its model pass runs "
                          "again (a case file keeps the scores of a pass, not the embeddings and logits they came from)",
                          flush=True)
                rerun.setdefault(lacking, []).append(spec.case_id)
            record, status, error = fetched.cached.record, "cached", fetched.error
            if error is None and record is None:
                assert fetched.prepared is not None and fetched.key is not None
                try:
                    record, prototypes, features = scorer.score_prepared(fetched.prepared, fetched.key, fetched.image_hash)
                    status = "ok"
                except InputError as failure:
                    error = failure
                fetched.prepared = None  # the volume is not kept past its model pass
                if error is None:
                    write(record, prototypes, features)
            if error is not None:
                record, status = error_record(spec, settings, error, fetched.key), "error"
                write(record)
            assert record is not None
            records.append(record)
            bar.set_postfix_str(f"{spec.case_id}: {status}")
            emit(format_case_progress(number, len(mine), spec.case_id, status))
        if writing is not None:
            done, writing = writing, None
            done.result()
    except BaseException as raised:
        if writing is not None and not writing.cancelled():
            failed = writing.exception()  # waits for the last write: its error goes with the one raised
            if failed is not None and failed is not raised:
                raised.add_note(f"and writing the files of the case before failed: {failed!r}")
        raise
    finally:
        _stop(reader, writer, upcoming)
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
