"""What a run's results workbook is written from, kept in its journal so that the workbook can be
written again (`hubspot-import show RUN --out FILE`) when writing it failed or the run was killed.

Two parts per run, each one Arrow IPC stream (zstd) in the journal's `run_data` table:
- `input`, kept before the first request: the sheet's rows as read, the cell issues, and what
  the Summary sheet says of the run;
- `outcome`, kept once the run is over, before the workbook is written: status, HubSpot id and
  message per row, and the run's counts.
A run whose `outcome` is missing (killed, or the machine went down) is rebuilt from its
batches: rows sent get what the journal recorded of them, the others `not_sent`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from ..core.errors import ConfigError
from ..core.outcome import Problem, RowIssue, RowResult, RowStatus, issue_messages, results_frame
from ..core.text import arrow, text_series
from ..sheets.fingerprint import Fingerprint
from ..sheets.inputs import showing_as, shown_name
from ..sheets.results import RunSummary, write_results
from .journal import Journal, Outcome

__all__ = [
    "KEPT_RUNS",
    "STATUS_OF",
    "KeptRun",
    "keep_input",
    "keep_outcome",
    "kept_run",
    "rewrite_workbook",
]

KEPT_RUNS = 30
"""The newest runs of a journal whose workbook can be written again; older runs' data goes."""

_COMPRESSION = "zstd"


def _encode(frame: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    """A frame of text columns indexed by sheet row, and JSON-able facts, as one Arrow stream.

    Columns are stored by position (their names in the metadata): a sheet's headers may be
    anything, even `__row` or the same name twice."""
    arrays = [pa.array(frame.index.to_numpy(dtype="int64"))]
    arrays += [arrow(frame.iloc[:, j]) for j in range(frame.shape[1])]
    names = ["row", *[f"c{j}" for j in range(frame.shape[1])]]
    facts = {"columns": [str(c) for c in frame.columns], **meta}
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(
        {"facts": orjson.dumps(facts)}
    )
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=_COMPRESSION)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _decode(blob: bytes) -> tuple[pd.DataFrame, dict[str, Any]]:
    table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
    facts: dict[str, Any] = orjson.loads((table.schema.metadata or {})[b"facts"])
    index = pd.Index(table.column(0).to_numpy(), dtype="int64")
    frame = pd.DataFrame(
        {j: text_series(table.column(j + 1), index) for j in range(table.num_columns - 1)},
        index=index,
    )
    frame.columns = pd.Index(facts.pop("columns"), dtype=object)
    return frame, facts


def _summary_facts(summary: RunSummary) -> dict[str, Any]:
    """The summary as JSON; its input as the run names it (the URL a download was read from,
    never the private copy)."""
    facts = dataclasses.asdict(summary)
    for name, value in facts.items():
        if isinstance(value, Path | dt.datetime):
            facts[name] = str(value) if isinstance(value, Path) else value.isoformat()
    facts["input_file"] = shown_name(summary.input_file)
    return facts


def keep_input(
    journal: Journal,
    run_id: str,
    source: pd.DataFrame,
    issues: tuple[RowIssue, ...],
    summary: RunSummary,
) -> None:
    """Keep the sheet's rows, their issues and the run's description (what it read, in its
    row of the runs table too), before anything is sent."""
    meta = {
        "issues": [dataclasses.astuple(i) for i in issues],
        "summary": _summary_facts(summary),
    }
    journal.keep_run_data(run_id, "input", _encode(source, meta), keep_runs=KEPT_RUNS)
    journal.record_input(
        run_id, fingerprint=summary.input_fingerprint, settings=summary.run_settings
    )


def keep_outcome(journal: Journal, run_id: str, outcome: pd.DataFrame, summary: RunSummary) -> None:
    """Keep each row's status, id and message, once the run is over."""
    meta = {"summary": _summary_facts(summary)}
    journal.keep_run_data(run_id, "outcome", _encode(outcome, meta), keep_runs=KEPT_RUNS)


STATUS_OF = {
    Outcome.CREATED: (RowStatus.CREATED, ""),
    Outcome.FOUND: (RowStatus.CREATED, "created (found by a lookup after its answer was lost)"),
    Outcome.UPDATED: (RowStatus.UPDATED, ""),
    Outcome.UNCERTAIN: (
        RowStatus.UNCERTAIN,
        "sent, and whether HubSpot created it is not known: the next run looks it up",
    ),
    Outcome.FAILED: (
        RowStatus.FAILED,
        "HubSpot refused it (its message was not kept: the run ended before its results "
        "were written); run again to see it",
    ),
    Outcome.LOST: (RowStatus.NOT_SENT, "not carried out: the next run sends it again"),
    Outcome.GONE: (
        RowStatus.FAILED,
        "the record the journal knew is no longer in HubSpot: the next run creates it again",
    ),
}
"""A row's status and message from the outcome its batch recorded in the journal."""
_IN_FLIGHT = (
    RowStatus.UNCERTAIN,
    "sent when the run ended, with no answer recorded: the next run looks it up",
)
_NOT_REACHED = (
    "no request for this row was recorded: the run ended before its results were written "
    "(rows found unchanged are listed so too); the next run sends what is left"
)


def _rebuilt_outcome(
    journal: Journal, run_id: str, index: pd.Index, issues: list[RowIssue]
) -> tuple[pd.DataFrame, int]:
    """Each row's status from what the journal recorded of the run's batches, and how many
    batches it sent."""
    results = {
        row: RowResult(row=row, status=RowStatus.NOT_SENT, message=_NOT_REACHED)
        for row in index.tolist()
    }
    sent = journal.sent_rows(run_id)
    for _, source_row, outcome, hubspot_id in sent:
        if source_row in results:
            found, said = STATUS_OF.get(Outcome(outcome), _IN_FLIGHT) if outcome else _IN_FLIGHT
            results[source_row] = RowResult(
                row=source_row, status=found, hubspot_id=hubspot_id or "", message=said
            )
    # Invalid rows say what the run's own workbook said of them.
    for row, message in issue_messages(issues).items():
        results[row] = RowResult(row=row, status=RowStatus.INVALID, message=message)
    frame = results_frame(results, index)
    return frame, len({batch for batch, *_ in sent})


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeptRun:
    """What a run's results workbook is written from, as its journal kept it."""

    summary: RunSummary
    outcome: pd.DataFrame
    source: pd.DataFrame
    issues: list[RowIssue]
    finished: bool
    """False: the run did not finish, and its outcome was rebuilt from its batches."""
    input_shown: str
    """The input as the run named it: a URL (which a Path would mangle), a match or a path."""


def kept_run(run: dict[str, Any]) -> KeptRun:
    """`run` (a row of its journal's runs, with `journal`) as its journal kept it."""
    journal = Journal(Path(run["journal"]))
    try:
        kept = journal.run_data(run["run_id"], "input")
        if kept is None:
            raise ConfigError(
                f"the journal does not hold the rows of run {run['run_id']}: it keeps them for "
                f"its newest {KEPT_RUNS} runs, made by hubspot-import 0.1 or newer; the run's "
                f"own workbook is {run.get('workbook') or 'not recorded'}"
            )
        source, facts = _decode(kept)
        issues = [
            RowIssue(
                row=row,
                column=column,
                cell=cell,
                value=value,
                problem=Problem(problem),
                message=message,
                hint=hint,
            )
            for row, column, cell, value, problem, message, hint in facts["issues"]
        ]
        summary_facts = facts["summary"]
        finished = journal.run_data(run["run_id"], "outcome")
        if finished is not None:
            outcome, end = _decode(finished)
            summary_facts = end["summary"]
        else:
            outcome, batches = _rebuilt_outcome(journal, run["run_id"], source.index, issues)
            summary_facts = {**summary_facts, "requests": batches}
    finally:
        journal.close()
    summary = _summary(summary_facts, outcome, rebuilt=finished is None)
    return KeptRun(
        summary=summary,
        outcome=outcome,
        source=source,
        issues=issues,
        finished=finished is not None,
        input_shown=str(summary_facts["input_file"]),
    )


def rewrite_workbook(run: dict[str, Any], out: Path) -> tuple[Path, bool]:
    """Write `run`'s results workbook to `out` from its journal. Returns the path and whether
    the run's own outcome was kept (False: rebuilt from its batches, the run did not finish)."""
    kept = kept_run(run)
    with showing_as(kept.summary.input_file, kept.input_shown):
        written = write_results(out, kept.summary, kept.outcome, kept.source, kept.issues)
    return written, kept.finished


def _summary(facts: dict[str, Any], outcome: pd.DataFrame, *, rebuilt: bool) -> RunSummary:
    names = {f.name for f in dataclasses.fields(RunSummary)}
    values = {k: v for k, v in facts.items() if k in names}
    for name in ("input_file", "journal", "workbook", "retry_file"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    for name in ("started", "finished"):
        if values.get(name) is not None:
            values[name] = dt.datetime.fromisoformat(values[name])
    values["input_fingerprint"] = Fingerprint.from_json(values.get("input_fingerprint"))
    summary = RunSummary(**values)
    counts = {str(k): int(n) for k, n in outcome["status"].value_counts().items()}
    summary.counts = {s.value: counts.get(s.value, 0) for s in RowStatus}
    summary.rows = len(outcome)
    if rebuilt:
        summary.stopped_by = (
            "the run ended before its results were written (rebuilt from the journal)"
        )
        summary.finished = None
    return summary
