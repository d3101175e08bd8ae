"""Write stage: every input row's outcome, once, in the journal (first: it outlives a workbook
that cannot be written), then in the results workbook and the retry file."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping as AnyMapping
from pathlib import Path

import pandas as pd

from ..core.errors import ConfigError, HubSpotImportError
from ..core.outcome import RowIssue, RowResult, RowStatus, issue_messages, results_frame
from ..sheets.results import RunSummary, retry_path, write_results, write_retry_file
from ..sheets.table import Table
from ..state.journal import Journal
from ..state.rundata import keep_outcome
from .options import RunOptions
from .reconcile import KeylessImport, record_keyless_import

__all__ = ["every_row", "not_written", "record_outcome", "write_files"]

log = logging.getLogger(__name__)


def every_row(
    results: dict[int, RowResult],
    notes: AnyMapping[int, str],
    issues: tuple[RowIssue, ...],
    index: pd.Index,
    *,
    dry_run: bool,
) -> pd.DataFrame:
    """Status, id and message of every sheet row, in sheet order: what was sent and what it
    became (with what the earlier stages noted of the row), the invalid rows and why. In a dry
    run a row with no result would be created as it is. `results` is used up."""
    for row, note in notes.items():
        if row in results:
            r = results[row]
            said = f"{r.message}; {note}" if r.message else note
            results[row] = RowResult(
                row=row, status=r.status, hubspot_id=r.hubspot_id, message=said
            )
    for row, messages in issue_messages(issues).items():
        results[row] = RowResult(row=row, status=RowStatus.INVALID, message=messages)
    outcome = results_frame(results, index, otherwise=RowStatus.WOULD_CREATE if dry_run else None)
    results.clear()
    return outcome


def record_outcome(
    journal: Journal,
    summary: RunSummary,
    outcome: pd.DataFrame,
    *,
    stopped_by: HubSpotImportError | None,
    requests: int,
    options: RunOptions,
    keyless: KeylessImport | None,
) -> None:
    """The run's counts in its summary, and (unless a dry run) its rows' outcome, how far a
    keyless import got, and the run's end in the journal, before any file is written."""
    counts = {str(k): int(n) for k, n in outcome["status"].value_counts().items()}
    summary.finished = dt.datetime.now(dt.UTC)
    summary.counts = {s.value: counts.get(s.value, 0) for s in RowStatus}
    summary.rows = len(outcome)
    summary.requests = requests
    summary.stopped_by = str(stopped_by) if stopped_by else None
    if options.dry_run:
        return
    keep_outcome(journal, summary.run_id, outcome, summary)
    if keyless is not None:
        record_keyless_import(journal, keyless, summary, options)
    journal.finish_run(
        summary.run_id, counts=summary.counts, workbook=None, stopped_by=summary.stopped_by
    )


def write_files(
    out: Path,
    summary: RunSummary,
    table: Table,
    outcome: pd.DataFrame,
    issues: tuple[RowIssue, ...],
    journal: Journal,
    *,
    dry_run: bool,
) -> None:
    """The retry file (beside the workbook, in the input's format, when rows need fixing;
    not for a dry run, which sent nothing to retry) and the results workbook; the workbook's
    path in the journal. A file that cannot be written is a ConfigError saying where the
    results are."""
    try:
        if not dry_run:
            summary.retry_file = write_retry_file(
                retry_path(out.parent / summary.input_file.name, summary.started), table, outcome
            )
        summary.workbook = write_results(out, summary, outcome, table.frame, issues)
    except OSError as exc:
        raise not_written(exc, None if dry_run else summary.run_id) from exc
    if not dry_run:
        journal.record_workbook(summary.run_id, str(summary.workbook))
    log.info("results written to %s", summary.workbook)


def not_written(exc: OSError, run_id: str | None, what: str = "the results") -> ConfigError:
    """A results file could not be written after the run (or plan run `run_id`; None: nothing
    was sent): say where its results are."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    then = (
        "nothing was sent; run again once it can be written"
        if run_id is None
        else f"every row's result is in the journal: once there is room, "
        f"`hubspot-import show {run_id} --out FILE.xlsx` writes the workbook"
    )
    return ConfigError(f"could not write {what}{where} ({reason}); {then}")
