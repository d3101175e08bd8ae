"""The pipeline: load -> map -> validate -> payload -> plan (journal) -> upload -> results."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..api.account import PortalInfo, identify_portal
from ..api.client import (
    DEFAULT_TIMEOUT,
    HubSpotClient,
    RateLimiter,
    RetryPolicy,
)
from ..api.lookup import DEFAULT_SEARCH_SETTLE
from ..core import shutdown
from ..core.errors import ConfigError, HubSpotError, RunInterrupted
from ..core.hubspot import (
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    MAX_ASSOCIATION_INPUTS,
    MAX_BATCH_INPUTS,
    OBJECT_TYPE_IDS,
)
from ..core.outcome import RowIssue, RowResult, RowStatus, issue_messages, results_frame
from ..core.prepared import Prepared, journal_key
from ..mapping.file import load_mapping
from ..mapping.model import Mapping, SyncMode
from ..mapping.portal import check_mapping, resolve_offline
from ..sheets.load import Table, load_table
from ..sheets.outputs import prepare_file, prepare_folder, prepare_workbook
from ..sheets.results import (
    RunSummary,
    default_results_path,
    record_url,
    retry_path,
    write_results,
    write_retry_file,
)
from ..state.journal import (
    Journal,
    RowState,
    adopt_base_url_journal,
    default_state_dir,
    journal_path,
)
from ..state.rundata import keep_input, keep_outcome
from .decide import Operation
from .dry_run import decide_rows, would_do
from .links import apply_links, decide_links
from .parallel import in_parallel
from .prepare import build_rows
from .resolve import Known, Resolver, resolve_references
from .send import DEFAULT_CONCURRENCY, Uploader
from .validate import validate
from .verify import verify

__all__ = ["Progress", "RunOptions", "RunResult", "run_import"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (rows done, rows to send) as batches complete."""


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    input_file: Path
    mapping_file: Path
    token: str = field(repr=False)
    sheet: str | None = None
    encoding: str | None = None
    out: Path | None = None
    base_url: str = DEFAULT_BASE_URL
    journal_base: str | None = None
    """Names the journal instead of `base_url` (the demo sandbox answers on a new port each
    run; its records stay)."""
    api_version: str = DEFAULT_API_VERSION
    """HubSpot's API version: a date (`2026-03`) or `legacy` for the numbered paths."""
    mode: SyncMode | None = None
    """Overrides the mapping's `mode:`."""
    state_dir: Path | None = None
    """Where journals live; default: the user's data directory."""
    forget_uncertain: bool = False
    import_again: bool = False
    """Without a key: create every row again, although an earlier run imported this file."""
    verify: bool = False
    """Read back every record the journal knows for this run's rows before planning."""
    portal_id: int | None = None
    """For links to records in the workbook; default: asked of HubSpot once, then remembered."""
    retry_out: Path | None = None
    """Where to write the retry file; default beside the workbook."""
    portal_check: bool = True
    """Check the mapping against the portal's properties and labels before anything else."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Batches in flight at once; the limiter keeps them within HubSpot's rate limit."""
    max_rps: float | None = None
    """A cap of our own on requests per second (for an app that shares its quota)."""
    dry_run: bool = False
    """`check` and `--dry-run`: everything but sending; the workbook shows what would happen."""
    batch_size: int = MAX_BATCH_INPUTS
    association_batch_size: int = MAX_ASSOCIATION_INPUTS
    """Inputs per associations batch request (at most 100)."""
    limiter: RateLimiter | None = field(default=None, repr=False)
    """Shared by the steps of a plan: HubSpot counts one window for all of them."""
    write_outputs: bool = True
    """False for a step of a plan, whose runner writes one workbook for every step."""
    known: Known = field(default_factory=dict)
    """Keys of records earlier steps of a plan imported (see references.Known)."""
    known_where: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    prefetched: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    """Keys of records no step of the plan imports, looked up before its first write."""
    run_id: str | None = None
    """Given by a plan, which writes it in its own journal before the step sends anything."""
    table: Table | None = field(default=None, repr=False)
    """The sheet, when a plan's check before its first write has read it already."""
    checked_mapping: Mapping | None = field(default=None, repr=False)
    """The mapping as checked against the portal (or offline) by a plan before its first
    write; the step does not check it again."""
    search_settle: float = DEFAULT_SEARCH_SETTLE
    """Seconds after a write by which HubSpot's search is trusted to find it (lookups by a
    key property without unique values, after a lost answer)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class RunResult:
    summary: RunSummary
    issues: tuple[RowIssue, ...]
    stopped_by: HubSpotError | RunInterrupted | None
    outcome: pd.DataFrame | None = None
    """Status, hubspot_id and message per sheet row (kept for a plan's workbook)."""
    table: Table | None = None
    """The sheet as read (kept for a plan's workbook and retry file)."""
    key_property: str | None = None


def client_for(options: RunOptions) -> HubSpotClient:
    """The HubSpot client a run (or a plan's lookups) sends with, paced by the options'
    limiter when a plan shares one."""
    return HubSpotClient(
        token=options.token,
        base_url=options.base_url,
        api_version=options.api_version,
        retry=options.retry,
        timeout=options.timeout,
        limiter=options.limiter or RateLimiter(max_rps=options.max_rps),
    )


def new_run_id(now: dt.datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def run_import(options: RunOptions, *, progress: Progress | None = None) -> RunResult:
    """Import one sheet. Raises ConfigError/InputFileError/AuthError before any row is sent
    when the mapping, file or token is unusable, and LockHeld when another run is going;
    otherwise always writes the workbook and records the run in the journal."""
    started = dt.datetime.now(dt.UTC)
    run_id = options.run_id or new_run_id(started)
    mapping = load_mapping(options.mapping_file)
    mode = options.mode or mapping.mode
    # Everything this run writes can be written: checked (folders made) before HubSpot is
    # asked anything, so a run that creates records can always say which.
    keep = (options.input_file, options.mapping_file)
    out = (
        prepare_workbook(
            options.out or default_results_path(options.input_file, started), keep=keep
        )
        if options.write_outputs
        else Path(".")
    )
    if options.retry_out is not None:
        prepare_file(options.retry_out, "the retry file", keep=keep)
    state_dir = prepare_folder(options.state_dir or default_state_dir(), "--state-dir")
    # What can be checked here is, before HubSpot is asked anything.
    table = options.table or load_table(
        options.input_file, sheet=options.sheet, encoding=options.encoding
    )
    mapping.check_columns(table.columns, table.where(), table.duplicate_headers)
    log.info("loaded %d rows from %s", len(table.frame), table.where())
    if not options.portal_check and options.checked_mapping is None:
        mapping = resolve_offline(mapping)
    client = client_for(options)
    try:
        # The journal belongs to the portal the token reaches: asked of HubSpot once (a read)
        # and remembered; then the lock, before anything else is read or sent.
        portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
        journal = Journal(
            _journal_for(
                state_dir, options.journal_base or options.base_url, mapping.object_type, portal
            ),
            lock=not options.dry_run,
        )
    except BaseException:
        client.close()
        raise
    try:
        if options.checked_mapping is not None:
            mapping = options.checked_mapping  # a plan checked it before its first write
        elif options.portal_check:
            mapping = check_mapping(
                client, mapping, mode=mode, source=str(options.mapping_file), schemas={}
            )

        validated = validate(table, mapping)
        if mapping.references:
            journal_base = options.journal_base or options.base_url
            resolver = Resolver(
                client,
                journals={
                    ref.to: journal_path(
                        state_dir,
                        journal_base,
                        ref.to,
                        portal.portal_id if portal is not None else None,
                    )
                    for ref in mapping.references
                },
                known=options.known,
                where_known=options.known_where,
                prefetched=options.prefetched,
            )
            validated = resolve_references(validated, mapping, table, resolver)
            if resolver.lookups:
                log.info("looked %d keys up in HubSpot", resolver.lookups)
        log.info(
            "%d rows valid, %d invalid (%d cell issues)",
            len(validated.values),
            len(validated.invalid_rows),
            len(validated.issues),
        )
        scope = generation = None
        if mapping.key_property is None:
            scope = _keyless_scope(options, table.sheet)
            generation = _keyless_generation(journal, scope, run_id, mode, options)
        rows = build_rows(validated, mapping, run_id, generation=generation or "")

        if not options.dry_run:
            if options.forget_uncertain:
                log.info("forgot %d uncertain rows", journal.forget_uncertain())
            journal.start_run(
                run_id,
                input_file=str(options.input_file),
                sheet=table.sheet,
                mapping_file=str(options.mapping_file),
                mode=mode.value,
                base_url=options.base_url,
                object_type=mapping.object_type,
            )
        if mapping.key_property is not None:
            prop, kind = mapping.key_property, mapping.object_type
            upgraded = journal.upgrade_keys(
                lambda value: journal_key(kind, prop, value), journal_key(kind, prop, "")
            )
            if upgraded:
                log.info("the journal's %d row keys now name their property, %s", upgraded, prop)
        if portal is not None and not options.dry_run:
            journal.set_meta("portal", json.dumps(portal.as_json()))
        summary = RunSummary(
            run_id=run_id,
            object_type=mapping.object_type,
            input_file=options.input_file,
            sheet=table.sheet,
            mapping_file=str(options.mapping_file),
            base_url=options.base_url,
            api_version=client.paths.version,
            portal=portal.describe() if portal is not None else None,
            mode=f"{mode.value} (plan only: nothing was sent)" if options.dry_run else mode.value,
            journal=journal.path,
            started=started,
            record_link=_record_link(mapping.object_type, portal),
        )
        if not options.dry_run:
            # Before the first request: whatever becomes of this process, `show RUN --out`
            # can write the run's workbook from the journal.
            keep_input(journal, run_id, table.frame, validated.issues, summary)
        results, stopped_by, requests = _sync(
            options, client, mapping, journal, run_id, rows, mode, progress, summary
        )
        # What was sent is written down whatever happens now: a signal waits until it is.
        with shutdown.deferred():
            issues = validated.issues
            notes = validated.notes
            # The payloads, the mapped values and the per-row results are done with: let them go
            # before the workbook is written, which is when a large run's memory peaks.
            del rows, validated
            for row, note in notes.items():
                if row in results:
                    r = results[row]
                    said = f"{r.message}; {note}" if r.message else note
                    results[row] = RowResult(
                        row=row, status=r.status, hubspot_id=r.hubspot_id, message=said
                    )
            for row, messages in issue_messages(issues).items():
                results[row] = RowResult(row=row, status=RowStatus.INVALID, message=messages)
            outcome = results_frame(
                results,
                table.frame.index,
                otherwise=RowStatus.WOULD_CREATE if options.dry_run else None,
            )
            del results
            counts = {str(k): int(n) for k, n in outcome["status"].value_counts().items()}
            summary.finished = dt.datetime.now(dt.UTC)
            summary.counts = {s.value: counts.get(s.value, 0) for s in RowStatus}
            summary.rows = len(outcome)
            summary.requests = requests
            summary.stopped_by = str(stopped_by) if stopped_by else None
            if not options.dry_run:
                keep_outcome(journal, run_id, outcome, summary)
                if scope is not None:
                    unsettled = sum(summary.counts.get(s.value, 0) for s in _UNSETTLED)
                    journal.record_keyless_import(
                        scope,
                        {
                            "generation": generation,
                            "finished": unsettled == 0 and stopped_by is None,
                            "run_id": run_id,
                            "input": str(options.input_file),
                        },
                    )
                journal.finish_run(
                    run_id, counts=summary.counts, workbook=None, stopped_by=summary.stopped_by
                )
            if options.write_outputs:
                try:
                    summary.retry_file = write_retry_file(
                        options.retry_out
                        or retry_path(out.parent / options.input_file.name, started),
                        table,
                        outcome,
                    )
                    summary.workbook = write_results(out, summary, outcome, table.frame, issues)
                except OSError as exc:
                    raise not_written(exc, None if options.dry_run else run_id) from exc
                if not options.dry_run:
                    journal.record_workbook(run_id, str(summary.workbook))
    finally:
        journal.close()
        client.close()
    if options.write_outputs:
        log.info("results written to %s", summary.workbook)
        return RunResult(summary=summary, issues=issues, stopped_by=stopped_by)
    return RunResult(
        summary=summary,
        issues=issues,
        stopped_by=stopped_by,
        outcome=outcome,
        table=table,
        key_property=mapping.key_property,
    )


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


def _sync(
    options: RunOptions,
    client: HubSpotClient,
    mapping: Mapping,
    journal: Journal,
    run_id: str,
    rows: Prepared,
    mode: SyncMode,
    progress: Progress | None,
    summary: RunSummary,
) -> tuple[dict[int, RowResult], HubSpotError | RunInterrupted | None, int]:
    """Settle what a crashed run left open, plan from the journal, send; a result per row."""
    uploader = Uploader(
        client,
        mapping,
        journal,
        run_id,
        batch_size=options.batch_size,
        concurrency=options.concurrency,
        search_settle=options.search_settle,
        mode=mode,
    )
    if options.dry_run:
        return would_do(client, mapping, journal, rows, mode, verify_first=options.verify)
    try:
        open_batches = journal.open_batches()
        if open_batches:
            log.warning(
                "%d batches of an earlier run were never confirmed: reconciling", len(open_batches)
            )
            uploader.recover(open_batches)
        known = journal.known(rows.keys)
        uncertain = [
            rows[i]
            for i, key in enumerate(rows.keys)
            if key in known and known[key].state is RowState.UNCERTAIN
        ]
        written = max((known[r.key].updated_epoch or 0.0 for r in uncertain), default=None)
        if uncertain and uploader.recheck_uncertain(uncertain, written):
            log.info("looked up %d rows an earlier run left uncertain", len(uncertain))
            known = journal.known(rows.keys)
        drift = verify(client, mapping.object_type, rows, known) if options.verify else None
        if drift is not None:
            journal.forget(drift.gone)
            journal.repoint({key: new for key, (_, new) in drift.moved.items()})
            known = journal.known(rows.keys)
    except HubSpotError as exc:
        # Until those batches are settled nothing may be sent: a row might be created twice.
        reason = f"not sent: could not reconcile an earlier interrupted run first ({exc})"
        results = {
            row: RowResult(row=row, status=RowStatus.NOT_SENT, message=reason) for row in rows.rows
        }
        return results, exc, client.requests_sent

    plan = decide_rows(rows, known, mode, mapping, drift)
    log.info(
        "plan: %s",
        ", ".join(f"{op.value} {plan.count(op)}" for op in Operation)
        + f", {len(plan.settled)} need no request",
    )
    total = len(plan.actions)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    uploader.on_progress = advance
    if progress is not None:
        progress(0, total)
    report = uploader.execute(plan.actions)
    results = {**plan.settled, **report.results}
    stopped_by = report.stopped_by
    if mapping.associations:
        created = {
            plan.actions.prepared.rows[p]
            for p, op in zip(plan.actions.positions, plan.actions.operations, strict=True)
            if op is Operation.CREATE
        }
        inline = frozenset(
            r
            for r in created
            if results[r].status is RowStatus.CREATED and r not in uploader.unlinked
        )
        links = decide_links(
            mapping,
            rows,
            journal,
            results,
            inline_rows=inline,
            client=client if stopped_by is None else None,
        )
        if stopped_by is not None:
            links.changes.clear()  # the next run sends them, from the journal
        elif links.changes:
            log.info(
                "links: %d rows to change (%s)",
                len({c.row for c in links.changes}),
                ", ".join(
                    f"{sum(len(c.add) for c in links.changes if c.association == k)} to add and "
                    f"{sum(len(c.remove) for c in links.changes if c.association == k)} to remove "
                    f"for {a.column}"
                    for k, a in enumerate(mapping.associations)
                ),
            )
        summary.link_requests, link_stop = apply_links(
            links,
            mapping,
            journal,
            client,
            run_id,
            results,
            batch_size=options.association_batch_size,
            senders=uploader.senders(),
            run_in_parallel=in_parallel,
        )
        summary.link_requests += links.reads
        stopped_by = stopped_by or link_stop
    return results, stopped_by, client.requests_sent


_UNSETTLED = (RowStatus.NOT_SENT, RowStatus.UNCERTAIN, RowStatus.FAILED)
"""A keyless import with rows in these states is not finished: the next run resumes it."""


def _keyless_scope(options: RunOptions, sheet: str | None) -> str:
    """One file (and sheet) imported with one keyless mapping: identical rows of another
    file are other rows."""
    where = f"{options.input_file.resolve()}\0{sheet or ''}\0{options.mapping_file.resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:24]


def _keyless_generation(
    journal: Journal, scope: str, run_id: str, mode: SyncMode, options: RunOptions
) -> str:
    """Which import of this file the rows belong to: the unfinished one (resumed), a new one,
    or, for a finished import, none: without a key nothing can tell which record a row is,
    and every changed row would become a second record."""
    state = journal.keyless_import(scope)
    if state is None:
        # Rows an earlier version keyed by their values alone: carry on with those keys once.
        return "" if journal.has_value_hash_keys() else run_id
    if not state.get("finished") or mode is not SyncMode.CREATE:
        return str(state.get("generation") or "")
    if options.import_again:
        return run_id
    raise ConfigError(
        f"run {state.get('run_id')} already imported {options.input_file} with "
        f"{options.mapping_file}, which has no key: HubSpot cannot tell which record a row is, "
        "so a second import would create every row again as a new record. Add a key to the "
        "mapping (`key:` naming a column with unique values, such as an id or an email), or, "
        "to create every row again, run with --import-again."
    )


def _journal_for(
    state_dir: Path, base_url: str, object_type: str, portal: PortalInfo | None
) -> Path:
    """This portal's journal (moving one an older version kept per base URL, when it says it
    is this portal's); without a portal, the journal per base URL, with a warning."""
    if portal is None:
        log.warning(
            "HubSpot did not say which portal this token belongs to: the journal is kept per "
            "base URL, which every portal there shares. Give --portal-id to keep it per portal."
        )
        return journal_path(state_dir, base_url, object_type)
    note = adopt_base_url_journal(state_dir, base_url, object_type, portal.portal_id)
    if note:
        log.warning("%s", note)
    if not portal.production:
        log.warning(
            "portal %d is a %s account, not production", portal.portal_id, portal.account_type
        )
    return journal_path(state_dir, base_url, object_type, portal.portal_id)


def _record_link(object_type: str, portal: PortalInfo | None) -> str | None:
    """The start of a record's URL in HubSpot's app, if the portal and object type are known."""
    type_id = OBJECT_TYPE_IDS.get(object_type) or (
        object_type if re.fullmatch(r"\d+-\d+", object_type) else None
    )
    if type_id is None or portal is None:
        return None
    return record_url(portal.ui_domain, portal.portal_id, type_id)
