"""`run --skip-unchanged`: a run whose feed the last run imported, with nothing left to do,
ends at once (exit 0, no workbook), its summary saying so (`status: skipped_unchanged`); so
does a plan whose last run imported every step's feed as it is now."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import _SUMMARY_WRITTEN, EXIT_OK, _write_json
from .sources import shown_inputs

if TYPE_CHECKING:
    from ..mapping.model import Mapping
    from ..plans.file import PlanFile
    from ..plans.unchanged import PlanUnchanged
    from ..stages.options import RunOptions
    from ..stages.unchanged import Feed, Unchanged

__all__ = [
    "SKIPPED_UNCHANGED",
    "skip_if_unchanged",
    "skip_plan_if_unchanged",
    "unchanged_text",
    "write_summary",
]

SKIPPED_UNCHANGED = "skipped_unchanged"
"""The summary's `status` when --skip-unchanged ended the run."""


def skip_if_unchanged(
    options: RunOptions, mapping: Mapping, summary_json: Path | None
) -> tuple[Feed, tuple[int, dict[str, Any]] | None]:
    """The input's feed, taken once for the run; and, when the last run imported this same
    feed with nothing left to do, the exit code and summary of a run that ends here (said,
    and its summary written), else None. Asks HubSpot nothing once the portal is remembered
    (or given with --portal-id)."""
    from ..stages.options import client_for
    from ..stages.unchanged import take_feed, unchanged_since

    started = dt.datetime.now(dt.UTC)
    feed = take_feed(options)
    with contextlib.closing(client_for(options)) as client:
        found = unchanged_since(options, mapping, feed, client)
        version = client.paths.version
    if found is None:
        return feed, None
    summary = _skipped_summary(options, mapping, feed, found, started, version)
    _say_skipped(mapping.object_type, summary, summary_json)
    return feed, (EXIT_OK, summary)


def skip_plan_if_unchanged(
    plan: PlanFile, options: RunOptions, summary_json: Path | None
) -> tuple[int, dict[str, Any]] | None:
    """When the plan's last run imported every step's feed as it is now with nothing left to
    do, the exit code and summary of a plan run that ends here (said, and its summary
    written); else None. Asks HubSpot nothing once the portal is remembered (or given with
    --portal-id)."""
    from ..plans.unchanged import plan_unchanged_since
    from ..stages.options import client_for

    with contextlib.closing(client_for(options)) as client:
        found = plan_unchanged_since(plan, options, client)
        requests = client.requests_sent
    if found is None:
        return None
    summary = shown_inputs(_skipped_plan_summary(plan, found, requests))
    _say_skipped(f"plan {plan.path.name}", summary, summary_json)
    return EXIT_OK, summary


def _say_skipped(what: str, summary: dict[str, Any], summary_json: Path | None) -> None:
    """`<what>: the feed is unchanged since ... (--skip-unchanged)`, and the summary file."""
    with contextlib.suppress(OSError):  # a reader gone: the summary file still says it
        click.echo(f"{what}: {unchanged_text(summary['unchanged_since'])} (--skip-unchanged)")
    write_summary(summary_json, summary)


def _skipped_summary(
    options: RunOptions,
    mapping: Mapping,
    feed: Feed,
    found: Unchanged,
    started: dt.datetime,
    api_version: str,
) -> dict[str, Any]:
    """A run summary's keys (no run id, no rows, no workbook), with `status` and the run
    whose feed this is (`unchanged_since`)."""
    from ..sheets.summary import RunSummary
    from .report import run_summary_json

    summary = RunSummary(
        run_id="",
        object_type=mapping.object_type,
        input_file=options.input_path,
        sheet=options.sheet,
        mapping_file=str(options.mapping_path),
        base_url=options.base_url,
        started=started,
        finished=dt.datetime.now(dt.UTC),
        api_version=api_version,
        portal=found.portal.describe() if found.portal is not None else None,
        mode=(options.mode or mapping.mode).value,
        journal=found.journal,
        input_fingerprint=feed.fingerprint,
        run_settings=feed.settings,
    )
    last = found.run
    return {
        **shown_inputs(run_summary_json(summary, EXIT_OK)),
        "run_id": None,
        "status": SKIPPED_UNCHANGED,
        "unchanged_since": {
            "run_id": last["run_id"],
            "started": last["started"],
            "finished": last["finished"],
            "workbook": last.get("workbook"),
        },
    }


def _skipped_plan_summary(plan: PlanFile, found: PlanUnchanged, requests: int) -> dict[str, Any]:
    """A plan summary's keys (no plan run id, no rows, no workbook), with `status` and the
    plan run whose feeds these are (`unchanged_since`, and each step's own run)."""
    last = found.run
    steps: list[dict[str, Any]] = [
        {
            "step": step.name,
            "run_id": None,
            "object_type": step.mapping.object_type,
            "input_file": str(step.input_file),
            "sheet": step.sheet,
            "rows": 0,
            "counts": {},
            "requests": 0,
            "association_requests": 0,
            "input_fingerprint": feed.fingerprint.as_json() if feed.fingerprint else None,
            "guard": None,
            "guards": [],
            "unchanged_since": {k: run[k] for k in ("run_id", "started", "finished")},
        }
        for step, run, feed in zip(plan.steps, found.step_runs, found.feeds, strict=True)
    ]
    return {
        "plan": str(plan.path),
        "plan_run_id": None,
        "exit_code": EXIT_OK,
        "status": SKIPPED_UNCHANGED,
        "unchanged_since": {
            "plan_run_id": last["plan_run_id"],
            "started": last["started"],
            "finished": last["finished"],
            "workbook": last.get("workbook"),
        },
        "portal": found.portal.describe() if found.portal is not None else None,
        "plan_journal": str(found.journal),
        "steps": steps,
        "plan_requests": {"lookups": 0, "portal_reads": requests},
        "workbook": None,
        "retry_file": None,
        "retry_files": [],
        "stopped_by": None,
    }


def unchanged_text(since: dict[str, Any]) -> str:
    """`the feed is unchanged since run <id> (<when, local time>): nothing to do`; for a plan
    (`plan_run_id`), `every step's feed is unchanged since plan run <id> ...`."""
    when = str(since.get("finished"))
    with contextlib.suppress(ValueError):
        when = dt.datetime.fromisoformat(when).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    if since.get("plan_run_id") is not None:
        return (
            f"every step's feed is unchanged since plan run {since['plan_run_id']} ({when}): "
            "nothing to do"
        )
    return f"the feed is unchanged since run {since.get('run_id')} ({when}): nothing to do"


def write_summary(path: Path | None, data: dict[str, Any]) -> None:
    """Write --summary-json (when given), so that `main` does not write one of its own."""
    if path is not None:
        _write_json(path, data)
        _SUMMARY_WRITTEN.add(path)
