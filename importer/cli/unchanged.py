"""`run --skip-unchanged`: a run whose feed the last run imported, with nothing left to do,
ends at once (exit 0, no workbook), its summary saying so (`status: skipped_unchanged`)."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..api.client import HubSpotClient
from .common import _SUMMARY_WRITTEN, EXIT_OK, _write_json
from .sources import shown_inputs

if TYPE_CHECKING:
    from ..mapping.model import Mapping
    from ..stages.options import RunOptions
    from ..stages.unchanged import Feed, Unchanged

__all__ = ["SKIPPED_UNCHANGED", "skip_if_unchanged", "unchanged_text", "write_summary"]

SKIPPED_UNCHANGED = "skipped_unchanged"
"""The summary's `status` when --skip-unchanged ended the run."""


def skip_if_unchanged(
    options: RunOptions, mapping: Mapping, summary_json: Path | None
) -> tuple[Feed, tuple[int, dict[str, Any]] | None]:
    """The input's feed, taken once for the run; and, when the last run imported this same
    feed with nothing left to do, the exit code and summary of a run that ends here (said,
    and its summary written), else None. Asks HubSpot nothing once the portal is remembered
    (or given with --portal-id)."""
    from ..stages.unchanged import take_feed, unchanged_since

    started = dt.datetime.now(dt.UTC)
    feed = take_feed(options)
    client = HubSpotClient(
        token=options.token,
        base_url=options.base_url,
        api_version=options.api_version,
        retry=options.retry,
        timeout=options.timeout,
    )
    with contextlib.closing(client):
        found = unchanged_since(options, mapping, feed, client)
        version = client.paths.version
    if found is None:
        return feed, None
    summary = _skipped_summary(options, mapping, feed, found, started, version)
    with contextlib.suppress(OSError):  # a reader gone: the summary file still says it
        click.echo(
            f"{mapping.object_type}: {unchanged_text(summary['unchanged_since'])} "
            "(--skip-unchanged)"
        )
    write_summary(summary_json, summary)
    return feed, (EXIT_OK, summary)


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


def unchanged_text(since: dict[str, Any]) -> str:
    """`the feed is unchanged since run <id> (<when, local time>): nothing to do`."""
    when = str(since.get("finished"))
    with contextlib.suppress(ValueError):
        when = dt.datetime.fromisoformat(when).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"the feed is unchanged since run {since.get('run_id')} ({when}): nothing to do"


def write_summary(path: Path | None, data: dict[str, Any]) -> None:
    """Write --summary-json (when given), so that `main` does not write one of its own."""
    if path is not None:
        _write_json(path, data)
        _SUMMARY_WRITTEN.add(path)
