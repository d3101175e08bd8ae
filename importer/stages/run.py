"""The run of one sheet, stage by stage: read -> check against the portal -> shape ->
validate -> resolve references -> prepare -> reconcile with the journal -> decide -> write
rules -> send -> links -> write results. Each stage is a module of this package, named for it."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import pandas as pd

from ..api.account import PortalInfo
from ..api.client import HubSpotClient
from ..core import shutdown
from ..core.hubspot import OBJECT_TYPE_IDS
from ..core.outcome import RowIssue, RowResult, with_held_back
from ..core.prepared import Prepared
from ..core.shutdown import Stop
from ..mapping.model import Mapping, SyncMode
from ..mapping.portal import check_mapping
from ..sheets.results import RunSummary, record_url
from ..sheets.table import Table
from ..state.journal import Journal
from ..state.paths import journal_path
from .addressing import decide_rows
from .decide import Operation
from .dry_run import would_do
from .guards import Guarding, changed_records, not_sent, would_change
from .mirror import Mirror, mirror_for, unsettled
from .mirror_send import settle_open
from .options import RunOptions, StepContext, client_for
from .prepare import build_rows
from .read import Inputs, read_inputs
from .reconcile import (
    KeylessImport,
    Reconciled,
    begin_run,
    keyless_import,
    open_journal,
    reconcile,
)
from .resolve import Resolver, resolve_references
from .run_links import link_stage
from .send import Uploader
from .shape import Shaped, shape
from .stopping import Stopped, noticed, unsent, upload
from .unchanged import Feed
from .validate import Validated, validate
from .write import every_row, record_outcome, write_files
from .write_rules import Ruled, apply_write_rules

__all__ = ["Progress", "RunResult", "new_run_id", "run_import"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (rows done, rows to send) as batches complete."""


@dataclass(frozen=True, kw_only=True)
class RunResult:
    summary: RunSummary
    issues: tuple[RowIssue, ...]
    stopped_by: Stopped | None
    outcome: pd.DataFrame | None = None
    """Status, hubspot_id and message per sheet row (kept for a plan's workbook)."""
    table: Table | None = None
    """The sheet as the run read it, fill_down's cells filled (kept for a plan's workbook and
    retry file)."""


def new_run_id(now: dt.datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def run_import(
    options: RunOptions,
    *,
    progress: Progress | None = None,
    step: StepContext | None = None,
    feed: Feed | None = None,
) -> RunResult:
    """Import one sheet (for a plan: one of its steps, `step` saying what the plan read and
    checked already; the step writes no files). Raises ConfigError/InputFileError/AuthError
    before any row is sent when the mapping, file or token is unusable, and LockHeld when
    another run is going; otherwise always records the run in the journal and writes the
    workbook. `feed`: what the run reads, when it was taken already (--skip-unchanged)."""
    started = dt.datetime.now(dt.UTC)
    inputs = read_inputs(options, started, step, feed)
    with contextlib.closing(client_for(options, step.limiter if step else None)) as client:
        portal, journal = open_journal(
            client, options, inputs.mapping.object_type, inputs.state_dir
        )
        with contextlib.closing(journal):
            run_id = step.run_id if step is not None else new_run_id(started)
            return _run(options, inputs, client, portal, journal, run_id, started, step, progress)


def _run(
    options: RunOptions,
    inputs: Inputs,
    client: HubSpotClient,
    portal: PortalInfo | None,
    journal: Journal,
    run_id: str,
    started: dt.datetime,
    step: StepContext | None,
    progress: Progress | None,
) -> RunResult:
    """The stages after the journal is open and locked."""
    mapping = inputs.mapping
    if step is None and options.portal_check:
        source = str(options.mapping_path)
        mapping = check_mapping(client, mapping, mode=inputs.mode, source=source, schemas={})
    shaped = shape(inputs.table, mapping)
    table = shaped.table
    validated = _validate(mapping, shaped, inputs, client, portal, options, step)
    keyless = _keyless(journal, options, mapping, table.sheet, run_id, inputs.mode)
    rows = build_rows(validated, mapping, run_id, generation=keyless.generation if keyless else "")
    mirror = _mirror(options, mapping, journal, run_id, shaped, rows, step)
    summary = _summary(options, inputs, mapping, client, portal, journal, run_id, started)
    _begin(journal, options, mapping, inputs.mode, summary, portal, table, validated)
    invalid = len(validated.invalid_rows)
    guard = Guarding(options, mapping, rows=len(table.frame), invalid=invalid, missing=mirror)
    results, stopped_by = _sync(
        options, client, mapping, journal, rows, inputs.mode, progress, summary, guard
    )
    if mirror is not None:  # after the run's own writes, and never after a stop
        stopped_by = mirror.apply(client, results, summary, noticed(stopped_by))
    summary.api_version = client.paths.version  # a request HubSpot did not serve moved it on
    # What was sent is written down whatever happens now: a signal waits until it is.
    with shutdown.deferred():
        stopped_by = noticed(stopped_by)  # one kept or swallowed before the end: a stop
        issues, notes = validated.issues, validated.notes
        # The payloads and the mapped values are done with: let them go before the workbook
        # is written, which is when a large run's memory peaks.
        del rows, validated
        results.update(shaped.skipped)
        outcome = _every_row(results, notes, issues, table.frame.index, options, mapping)
        requests = client.requests_sent
        record_outcome(
            journal, summary, outcome, stopped_by=stopped_by, requests=requests,
            options=options, keyless=keyless,
        )  # fmt: skip
        if inputs.out is not None:
            write_files(
                inputs.out, summary, table, outcome, issues, journal, dry_run=options.dry_run
            )
    return RunResult(
        summary=summary,
        issues=issues,
        stopped_by=stopped_by,
        outcome=outcome if step is not None else None,  # a plan's step hands them on
        table=table if step is not None else None,
    )


def _begin(
    journal: Journal,
    options: RunOptions,
    mapping: Mapping,
    mode: SyncMode,
    summary: RunSummary,
    portal: PortalInfo | None,
    table: Table,
    validated: Validated,
) -> None:
    """Write the run down (`begin_run`), whole: a signal Python swallowed so far stops the run
    before it begins; one that comes meanwhile, before its first read."""
    shutdown.raise_if_stopped()
    with shutdown.deferred():
        begin_run(journal, options, mapping, mode, summary, portal, table.frame, validated.issues)


def _keyless(
    journal: Journal,
    options: RunOptions,
    mapping: Mapping,
    sheet: str | None,
    run_id: str,
    mode: SyncMode,
) -> KeylessImport | None:
    """Which import of the file a keyless mapping's rows belong to (None with a key)."""
    if mapping.key_property is not None:
        return None
    return keyless_import(journal, options, sheet, run_id, mode)


def _mirror(
    options: RunOptions,
    mapping: Mapping,
    journal: Journal,
    run_id: str,
    shaped: Shaped,
    rows: Prepared,
    step: StepContext | None,
) -> Mirror | None:
    """The run's `missing_rows:` (None: keep), from the keys of every row of the feed."""
    return mirror_for(
        mapping,
        journal,
        run_id,
        mapping_file=str(options.mapping_path),
        shaped=shaped,
        rows=rows,
        dry_run=options.dry_run,
        in_plan=step is not None,
    )


def _every_row(
    results: dict[int, RowResult],
    notes: dict[int, str],
    issues: tuple[RowIssue, ...],
    index: pd.Index,
    options: RunOptions,
    mapping: Mapping,
) -> pd.DataFrame:
    """Every row's outcome (`every_row`), with what write rules held back from each row
    beside its message when the mapping has write rules."""
    held = {row: r.held_back for row, r in results.items() if r.held_back}
    outcome = every_row(results, notes, issues, index, dry_run=options.dry_run)
    return with_held_back(outcome, held) if mapping.held_back else outcome


def _validate(
    mapping: Mapping,
    shaped: Shaped,
    inputs: Inputs,
    client: HubSpotClient,
    portal: PortalInfo | None,
    options: RunOptions,
    step: StepContext | None,
) -> Validated:
    """The validate stage over the rows the shape stage kept (an issue of a cell filled down
    says where its value came from), then the references stage: cells naming records by key
    become their ids (from the plan's earlier steps, the targets' journals in this portal,
    then HubSpot)."""
    inputs = replace(inputs, table=shaped.kept)
    validated = validate(inputs.table, mapping)
    if mapping.references:
        validated = _resolve(validated, mapping, inputs, client, portal, step, options)
    validated = replace(validated, issues=shaped.with_carried(validated.issues))
    log.info(
        "%d rows valid, %d invalid (%d cell issues)",
        len(validated.values),
        len(validated.invalid_rows),
        len(validated.issues),
    )
    return validated


def _resolve(
    validated: Validated,
    mapping: Mapping,
    inputs: Inputs,
    client: HubSpotClient,
    portal: PortalInfo | None,
    step: StepContext | None,
    options: RunOptions,
) -> Validated:
    """Cells naming records by key become those records' ids."""
    base = options.journal_base or options.base_url
    portal_id = portal.portal_id if portal is not None else None
    resolver = Resolver(
        client,
        journals={
            ref.to: journal_path(inputs.state_dir, base, ref.to, portal_id)
            for ref in mapping.references
        },
        known=step.known if step is not None else {},
        where_known=step.known_where if step is not None else {},
        prefetched=step.prefetched if step is not None else {},
        settle=options.search_settle,
    )
    validated = resolve_references(validated, mapping, inputs.table, resolver)
    if resolver.lookups:
        log.info("looked %d keys up in HubSpot", resolver.lookups)
    return validated


def _summary(
    options: RunOptions,
    inputs: Inputs,
    mapping: Mapping,
    client: HubSpotClient,
    portal: PortalInfo | None,
    journal: Journal,
    run_id: str,
    started: dt.datetime,
) -> RunSummary:
    """The run's summary as it starts; the write stage adds its counts."""
    mode = inputs.mode.value
    return RunSummary(
        run_id=run_id,
        object_type=mapping.object_type,
        input_file=options.input_path,
        sheet=inputs.table.sheet,
        mapping_file=str(options.mapping_path),
        base_url=options.base_url,
        api_version=client.paths.version,
        portal=portal.describe() if portal is not None else None,
        mode=f"{mode} (plan only: nothing was sent)" if options.dry_run else mode,
        journal=journal.path,
        started=started,
        record_link=_record_link(mapping.object_type, portal),
        input_fingerprint=inputs.feed.fingerprint,
        run_settings=inputs.feed.settings,
    )


def _sync(
    options: RunOptions,
    client: HubSpotClient,
    mapping: Mapping,
    journal: Journal,
    rows: Prepared,
    mode: SyncMode,
    progress: Progress | None,
    summary: RunSummary,
    guard: Guarding,
) -> tuple[dict[int, RowResult], Stopped | None]:
    """Reconcile with the journal, decide, apply the write rules, let the guards judge, send,
    then links: a result per row sent or settled without a request (the others were
    invalid), and what stopped the run."""
    if options.dry_run:
        would = would_do(client, mapping, journal, rows, mode, verify_first=options.verify)
        guard.judge(summary, partial(would_change, would, rows, mode, journal, client, mapping))
        return would, None
    uploader = Uploader(
        client,
        mapping,
        journal,
        summary.run_id,
        batch_size=options.batch_size,
        concurrency=options.concurrency,
        search_settle=options.search_settle,
        mode=mode,
    )
    try:
        ruled = _decided(options, uploader, mapping, journal, rows, mode, summary, guard)
        if isinstance(ruled, Ruled):
            _count_progress(uploader, len(ruled.decisions.actions), progress)
    except Stop as signalled:  # a read before the first write: nothing was sent
        return unsent(rows, signalled)
    if not isinstance(ruled, Ruled):
        return ruled  # HubSpot or a guard stopped the run before the first write
    results, stopped_by = upload(uploader, ruled)
    stopped_by = noticed(stopped_by)  # one kept as the answers were recorded
    if mapping.associations:
        decisions, stopped = ruled.decisions, stopped_by is not None
        link_stop = link_stage(options, client, mapping, journal, rows, decisions, uploader,
                               results, summary, stopped=stopped)  # fmt: skip
        stopped_by = stopped_by or link_stop
    return results, stopped_by


def _decided(
    options: RunOptions,
    uploader: Uploader,
    mapping: Mapping,
    journal: Journal,
    rows: Prepared,
    mode: SyncMode,
    summary: RunSummary,
    guard: Guarding,
) -> Ruled | tuple[dict[int, RowResult], Stopped | None]:
    """Reconcile with the journal, decide, apply the write rules and let the guards judge:
    the decisions to send, or each row's result when HubSpot or a guard stopped the run
    first. A signal raises `Stop` (also one swallowed earlier, where the stages hand over)."""
    client = uploader.client
    shutdown.raise_if_stopped()
    state = _reconciled(uploader, journal, rows, verify_first=options.verify)
    if state.not_sent is not None:
        return state.not_sent, state.stopped_by
    shutdown.raise_if_stopped()
    decided = decide_rows(rows, state.known, mode, mapping, state.drift, client)
    shutdown.raise_if_stopped()
    ruled = apply_write_rules(
        decided, mapping, client, journal, summary.run_id, senders=uploader.senders()
    )
    decisions = ruled.decisions
    log.info(
        "decided: %s",
        ", ".join(f"{op.value} {decisions.count(op)}" for op in Operation)
        + f", {len(decisions.settled)} need no request",
    )
    if ruled.stopped_by is not None:
        return ruled  # every action not sent, as the write rules said
    shutdown.raise_if_stopped()
    changed = partial(changed_records, decisions, state.known, rows, mapping, journal, client)
    if (stop := guard.judge(summary, changed)) is not None:
        return not_sent(decisions, stop), stop
    shutdown.raise_if_stopped()  # the last moment nothing was sent
    return ruled


def _reconciled(
    uploader: Uploader, journal: Journal, rows: Prepared, *, verify_first: bool
) -> Reconciled:
    """The reconcile stage, after the requests of `missing_rows:` an earlier run left open
    are settled (a row may point at a record they archived); every row `not_sent` when
    HubSpot stopped either."""
    left_open = settle_open(uploader.client, journal, uploader.mapping.object_type)
    if left_open is not None:
        return unsettled(rows, left_open)
    return reconcile(uploader, journal, rows, verify_first=verify_first)


def _count_progress(uploader: Uploader, total: int, progress: Progress | None) -> None:
    """Report (rows done, rows to send) to `progress` as the uploader's batches complete."""
    if progress is None:
        return
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    uploader.on_progress = advance
    progress(0, total)


def _record_link(object_type: str, portal: PortalInfo | None) -> str | None:
    """The start of a record's URL in HubSpot's app, if the portal and object type are known."""
    type_id = OBJECT_TYPE_IDS.get(object_type) or (
        object_type if re.fullmatch(r"\d+-\d+", object_type) else None
    )
    if type_id is None or portal is None:
        return None
    return record_url(portal.ui_domain, portal.portal_id, type_id)
