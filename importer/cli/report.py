"""What `run` and `check` say when the work is done: each sheet's issues and counts, the
results workbook and retry files, the exit code, and the summary file for schedulers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core.errors import AuthError, ConfigError, InputFileError, LockHeld, RunInterrupted
from .common import (
    EXIT_ERROR,
    EXIT_GUARD,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_SIGNAL_BASE,
    ISSUES_SHOWN,
    _write_json,
)

if TYPE_CHECKING:  # loaded by the run itself, with pandas: help and usage errors do without
    from ..plans.runner import PlanResult
    from ..sheets.results import RunSummary
    from ..stages.run import RunResult

__all__ = [
    "plan_summary_json",
    "report_plan",
    "report_run",
    "run_summary_json",
    "write_plan_summary",
    "write_run_summary",
]


def _echo(text: str, *, err: bool = False) -> None:
    """`click.echo`, which a closed or full standard output (the reader gone, a full disk)
    does not stop: what the run did is in its workbook, its journal and the summary file,
    which are still written, with the run's own exit code."""
    with contextlib.suppress(OSError):
        click.echo(text, err=err)


def write_run_summary(path: Path, result: RunResult, code: int) -> None:
    """One sheet's summary file (`run_summary_json`)."""
    _write_json(path, run_summary_json(result.summary, code))


def run_summary_json(s: RunSummary, code: int) -> dict[str, Any]:
    """One sheet's summary: its counts, run id, timings, workbook and exit code."""
    data = {
        "run_id": s.run_id,
        "exit_code": code,
        "object_type": s.object_type,
        "mode": s.mode,
        "input_file": str(s.input_file),
        "sheet": s.sheet,
        "mapping_file": s.mapping_file,
        "base_url": s.base_url,
        "api_version": s.api_version,
        "portal": s.portal,
        "started": s.started.isoformat(),
        "finished": s.finished.isoformat() if s.finished else None,
        "duration_seconds": round(s.duration, 3),
        "rows": s.rows,
        "counts": s.counts,
        "requests": s.requests,
        "association_requests": s.link_requests,
        "stopped_by": s.stopped_by,
        "guard": s.guard,
        "guards": s.guards,
        "workbook": str(s.workbook) if s.workbook else None,
        "journal": str(s.journal) if s.journal else None,
        "retry_file": str(s.retry_file) if s.retry_file else None,
        "error": s.stopped_by,
        "input_fingerprint": _fingerprint_json(s),
        "missing": s.missing.as_json() if s.missing is not None else None,
    }
    return data


def _fingerprint_json(s: RunSummary) -> dict[str, Any] | None:
    """The input's size, SHA-256, time and ETag, as the summary file gives them."""
    return s.input_fingerprint.as_json() if s.input_fingerprint is not None else None


def report_plan(planned: PlanResult) -> int:
    """Each step's issues and counts, the workbook; the worst step's exit code."""
    codes = []
    written = False
    for step, run in zip(planned.steps, planned.results, strict=True):
        s = step.summary
        where = f"{s.input_file.name}" + (f", sheet {s.sheet}" if s.sheet else "")
        for issue in step.issues[:ISSUES_SHOWN]:
            _echo(issue.describe(where), err=True)
        if len(step.issues) > ISSUES_SHOWN:
            _echo(f"... and {len(step.issues) - ISSUES_SHOWN} more in {step.name}.", err=True)
        counts = ", ".join(f"{n} {status}" for status, n in s.counts.items() if n)
        _echo(f"{step.name} ({s.object_type}): {s.rows} rows: {counts or 'nothing to do'}.")
        _say_guards(s, run.stopped_by if run is not None else None, indent="  ")
        _say_uncertain(s.counts, indent="  ")
        if s.guard is not None and written:
            # Exit 3 says nothing was written: here earlier steps were, and they stand.
            _echo(
                f"  The plan stopped at {step.name} before its writes; the steps before it "
                "wrote theirs, and they stand.",
            )
            codes.append(EXIT_ROWS)
        else:
            codes.append(EXIT_GUARD if s.guard is not None else _rows_exit_code(s.counts, s.rows))
        written = written or any(s.counts.get(w, 0) for w in _WRITTEN)
    if planned.stopped_by is not None:
        if not _guard_stop(planned.stopped_by):  # its step's line said it
            _echo(f"hubspot-import: {_stopped(planned.stopped_by)}", err=True)
        if isinstance(planned.stopped_by, AuthError | ConfigError | InputFileError):
            codes.append(EXIT_ERROR)
        if isinstance(planned.stopped_by, LockHeld):
            codes.append(EXIT_LOCKED)
        if isinstance(planned.stopped_by, RunInterrupted):
            return EXIT_SIGNAL_BASE + planned.stopped_by.signum
    _echo(f"Results: {planned.workbook}")
    for retry in planned.retry_files:
        what = "for a CSV step" if retry.suffix == ".csv" else "a sheet per step"
        _echo(f"Retry file (the rows to fix, {what}): {retry}")
    if planned.plan_run_id is not None:
        _echo(f"Plan run: {planned.plan_run_id} (hubspot-import show {planned.plan_run_id})")
    return max(codes, default=EXIT_OK)


def write_plan_summary(path: Path, plan_file: Path, planned: PlanResult, code: int) -> None:
    """A plan's summary file (`plan_summary_json`)."""
    _write_json(path, plan_summary_json(plan_file, planned, code))


def plan_summary_json(plan_file: Path, planned: PlanResult, code: int) -> dict[str, Any]:
    """A plan's summary: each step's counts and run id, the plan's own requests, the
    workbook and the exit code."""
    steps = [
        {
            "step": step.name,
            "run_id": step.summary.run_id,
            "object_type": step.summary.object_type,
            "input_file": str(step.summary.input_file),
            "sheet": step.summary.sheet,
            "rows": step.summary.rows,
            "counts": step.summary.counts,
            "requests": step.summary.requests,
            "association_requests": step.summary.link_requests,
            "input_fingerprint": _fingerprint_json(step.summary),
            "guard": step.summary.guard,
            "guards": step.summary.guards,
        }
        for step in planned.steps
    ]
    return {
        "plan": str(plan_file),
        "plan_run_id": planned.plan_run_id,
        "exit_code": code,
        "steps": steps,
        "plan_requests": {
            "lookups": planned.lookup_requests,
            "portal_reads": planned.portal_reads,
        },
        "workbook": str(planned.workbook),
        "retry_file": str(planned.retry_file) if planned.retry_file else None,
        "retry_files": [str(p) for p in planned.retry_files],
        "stopped_by": str(planned.stopped_by) if planned.stopped_by else None,
    }


def report_run(result: RunResult) -> int:
    """One sheet's first issues, its counts, workbook and retry file; the exit code."""
    s = result.summary
    where = f"{s.input_file.name}" + (f", sheet {s.sheet}" if s.sheet else "")
    for issue in result.issues[:ISSUES_SHOWN]:
        _echo(issue.describe(where), err=True)
    if len(result.issues) > ISSUES_SHOWN:
        _echo(
            f"... and {len(result.issues) - ISSUES_SHOWN} more problems: see the Issues sheet.",
            err=True,
        )
    if result.stopped_by is not None and not _guard_stop(result.stopped_by):
        _echo(f"hubspot-import: {_stopped(result.stopped_by)}", err=True)
    counts = ", ".join(f"{n} {status}" for status, n in s.counts.items() if n)
    _echo(f"{s.object_type}: {s.rows} rows: {counts or 'nothing to do'}.")
    _say_guards(s, result.stopped_by)
    _say_uncertain(s.counts)
    if s.missing is not None:
        _echo(f"{s.missing.said()}.")
    _echo(f"Results: {s.workbook}")
    if s.retry_file is not None:
        _echo(
            "Retry file (the invalid, failed and incomplete rows, to fix and import again): "
            f"{s.retry_file}"
        )
    if isinstance(result.stopped_by, AuthError):
        return EXIT_ERROR
    if isinstance(result.stopped_by, RunInterrupted):
        return EXIT_SIGNAL_BASE + result.stopped_by.signum
    if s.guard is not None:
        return EXIT_GUARD
    if s.missing is not None and s.missing.unsettled:  # archives or sets that failed
        return EXIT_ROWS
    return _rows_exit_code(s.counts, s.rows)


_WRITTEN = ("created", "updated", "incomplete", "uncertain")
"""Statuses of rows a step wrote (or may have) to HubSpot."""


def _guard_stop(why: object) -> bool:
    """Whether a guard stopped the run (or the plan, at one of its steps)."""
    from ..stages.guards import GuardStop

    return isinstance(why, GuardStop)


def _say_guards(summary: RunSummary, stopped_by: object, *, indent: str = "") -> None:
    """After the counts: the guard that stopped the run before it wrote anything, or what
    each guard said (in a dry run: of the run it planned)."""
    from ..stages.guards import GuardStop

    if isinstance(stopped_by, GuardStop):
        verdict = stopped_by.verdict
        _echo(f"{indent}Guard {verdict.name} stopped the run before writing: {verdict.reason}.")
        return
    for line in summary.guards:
        _echo(f"{indent}guard {line}")


UNCERTAIN_ADVICE = (
    "{rows} uncertain: HubSpot may hold their records, so they are not sent again (each "
    "row's message says why). The next run looks those with a key up again: where HubSpot "
    "holds more than one record with a row's key, delete the extra ones first. Rows without "
    "a key are never looked up: --forget-uncertain sends every uncertain row again, so use it "
    "only once you have checked that HubSpot holds none of them, or it creates them twice."
)
"""What to do about uncertain rows, said after the counts."""


def _say_uncertain(counts: dict[str, int], *, indent: str = "") -> None:
    """After the counts of a run with uncertain rows: what to do about them."""
    n = counts.get("uncertain", 0)
    if n:
        rows = "1 row is" if n == 1 else f"{n:,} rows are"
        _echo(indent + UNCERTAIN_ADVICE.format(rows=rows))


def _rows_exit_code(counts: dict[str, int], rows: int) -> int:
    """EXIT_OK when every row ended well (created, updated, unchanged or skipped), else
    EXIT_ROWS."""
    from ..core.outcome import GOOD_STATUSES

    good = sum(n for status, n in counts.items() if status in GOOD_STATUSES)
    return EXIT_OK if good == rows else EXIT_ROWS


def _stopped(why: object) -> str:
    """`stopped: <why>`, unless the reason says so already (`stopped by SIGTERM ...`)."""
    said = str(why)
    return said if said.startswith("stopped") else f"stopped: {said}"
