"""Plans: one workbook (or several files), several objects, linked by business keys.

A plan file lists steps, each a mapping and the sheet (or file) it reads:

    input: shop.xlsx            # default input of every step, relative to the plan file
    steps:
      - mapping: products.yaml  # relative to the plan file
        sheet: Products
      - mapping: line_items.yaml
        sheet: Order lines
        # input: lines.csv      # a step may read its own file

Steps run in the order their references require (a step whose mapping refers to an object type
another step imports runs after it), whatever their order in the file; a cycle is an error
naming it. Each step is one run of the pipeline (its own journal, per portal and object type);
the keys each step imported are handed to the steps after it, so references to this run's rows
need no lookup, and a row referring to a row that was not imported is invalid, naming it.
The plan writes one results workbook and one retry workbook for every step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd

from ..api.account import identify_portal
from ..api.client import RateLimiter
from ..core import shutdown
from ..core.errors import EmptySheetError, HubSpotImportError, InputFileError, RunInterrupted
from ..core.hubspot import stored_value
from ..core.outcome import RowStatus, results_frame
from ..mapping.model import Mapping, Reference
from ..mapping.portal import PortalSchema, check_mapping, resolve_offline
from ..sheets.load import Table, load_table
from ..sheets.outputs import prepare_file, prepare_folder, prepare_workbook
from ..sheets.plan_results import StepResult, write_plan_results, write_plan_retry
from ..sheets.results import RunSummary
from ..stages.resolve import Resolver, cell_keys, stored_keys
from ..stages.run import RunOptions, RunResult, client_for, new_run_id, not_written, run_import
from ..state.journal import default_state_dir, journal_path
from ..state.plan_journal import PLAN_RUN_PREFIX, PlanJournal, PlannedStep, plan_journal_path
from .file import PlanFile, Step, load_plan

__all__ = ["PlanFile", "PlanResult", "Step", "load_plan", "run_plan"]

log = logging.getLogger(__name__)

_IMPORTED = (RowStatus.CREATED, RowStatus.UPDATED, RowStatus.UNCHANGED, RowStatus.INCOMPLETE)
_WOULD_BE = (RowStatus.WOULD_CREATE, RowStatus.WOULD_UPDATE)


StopReason = HubSpotImportError
"""What stopped a plan part way: HubSpot, a signal (RunInterrupted), or a later step that could
not start (its lock held, its sheet changed under it)."""


@dataclass(frozen=True, kw_only=True)
class PlanResult:
    steps: tuple[StepResult, ...]
    results: tuple[RunResult | None, ...]
    """Each step's run, None for a step not run (an earlier one stopped)."""
    workbook: Path
    retry_files: tuple[Path, ...]
    """Every retry file: the workbook for steps that read sheets, a CSV per CSV step."""
    stopped_by: StopReason | None
    plan_run_id: str | None = None
    """The plan run's id in its plan journal (None when nothing was sent: check, dry run)."""
    portal_reads: int = 0
    """Requests the plan made itself before its steps, to read the portal: which portal the
    token reaches, each object type's properties and association labels."""
    lookup_requests: int = 0
    """Requests the plan made itself before its steps, to look up keys no step's rows hold."""

    @property
    def retry_file(self) -> Path | None:
        """The retry workbook (or, when only CSV steps have bad rows, the first retry CSV)."""
        return self.retry_files[0] if self.retry_files else None


def run_plan(
    plan_file: Path,
    options: RunOptions,
    *,
    out: Path | None = None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> PlanResult:
    """Run every step of the plan (with `options` for all but the input, mapping and sheet),
    then write one results workbook (and a retry workbook when rows need fixing). The plan run
    is recorded in the plan's journal (see state.plan_journal), unless nothing is sent."""
    plan = load_plan(plan_file)
    started = dt.datetime.now(dt.UTC)
    keep = (plan.path, *[s.input_file for s in plan.steps], *[s.mapping_file for s in plan.steps])
    stamp = started.astimezone().strftime("%Y%m%d-%H%M%S")
    out = prepare_workbook(out or plan.path.with_name(f"{plan.path.stem}-results-{stamp}.xlsx"),
                           keep=keep)  # fmt: skip
    retry = prepare_file(
        options.retry_out or out.with_name(f"{plan.path.stem}-retry-{stamp}.xlsx"),
        "the retry file",
        keep=keep,
    )
    # One limiter for every step: HubSpot's window counts them all, and a step that started
    # with an empty window of its own would meet the last step's requests as 429s.
    options = dataclasses.replace(
        options, limiter=options.limiter or RateLimiter(max_rps=options.max_rps)
    )
    record = None if options.dry_run else _PlanRecord.open(plan, options, started)
    try:
        planned = _run_steps(plan, options, started, out, retry, record, progress)
    except BaseException as exc:
        if record is not None:
            record.close(stopped_by=str(exc) or type(exc).__name__)
        raise
    if record is not None:
        record.close()
    return planned


def _run_steps(
    plan: PlanFile,
    options: RunOptions,
    started: dt.datetime,
    out: Path,
    retry: Path,
    record: _PlanRecord | None,
    progress: Callable[[str], Callable[[int, int], None] | None] | None,
) -> PlanResult:
    known: dict[tuple[str, str], dict[str, str | None]] = {}
    where: dict[tuple[str, str], dict[str, str]] = {}
    done: list[StepResult] = []
    runs: list[RunResult | None] = []
    stopped: StopReason | None = None
    checked, tables, portal_reads = _check_first(plan, options)
    # Keys no step's rows hold (customers by email, say) are looked up before any
    # step writes: a lookup that fails stops the plan with nothing written.
    prefetched, lookups = _look_up_first(plan, options, tables)
    options = dataclasses.replace(options, prefetched=prefetched)
    if record is not None:
        record.begin(plan, options)

    def skip(position: int, unsent: StepResult) -> None:
        """A step whose rows were not sent, in the workbook and the plan journal."""
        done.append(unsent)
        runs.append(None)
        if record is not None:
            record.step_ended(position, unsent, ran=False)

    for position, step in enumerate(plan.steps):
        table = tables.pop(position)  # each sheet is let go once its step is over
        pending = shutdown.take_pending()  # a signal kept while the last step was recorded
        if stopped is None and pending is not None:
            stopped = RunInterrupted(pending, shutdown.signal_name(pending))
        if stopped is not None:
            with shutdown.deferred():
                skip(position, _not_run(step, options, stopped, table=table))
            continue
        log.info("step %s: %s from %s", step.name, step.mapping.object_type, step.input_file.name)
        try:
            if record is not None:
                record.step_started(position)
            result = run_import(
                dataclasses.replace(
                    options,
                    input_file=step.input_file,
                    mapping_file=step.mapping_file,
                    sheet=step.sheet,
                    out=None,
                    retry_out=None,
                    write_outputs=False,
                    known=known,
                    known_where=where,
                    run_id=record.run_ids[position] if record is not None else None,
                    table=table,
                    checked_mapping=checked[position],
                ),
                progress=progress(step.name) if progress is not None else None,
            )
        except (HubSpotImportError, shutdown.Stop) as exc:
            stopped = (
                RunInterrupted(exc.signum, shutdown.signal_name(exc.signum))
                if isinstance(exc, shutdown.Stop)
                else exc
            )
            # Earlier steps wrote records (a signal, or a step that could not start): the
            # plan's workbook must say which, and that this step's rows were not sent.
            with shutdown.deferred():
                skip(position, _not_run(step, options, stopped, itself=True, table=table))
            if not any(r is not None and r.summary.requests for r in runs):
                raise  # nothing of the plan was sent: said as a single run says it
            continue
        # What the step did is recorded whole: a signal now waits for the next step.
        with shutdown.deferred():
            assert result.outcome is not None
            assert result.table is not None
            runs.append(result)
            done.append(
                StepResult(
                    name=step.name,
                    summary=result.summary,
                    outcome=result.outcome,
                    table=result.table,
                    issues=result.issues,
                )
            )
            if record is not None:
                record.step_ended(position, done[-1], ran=True)
            _remember(step, result, known, where, dry_run=options.dry_run)
            stopped = result.stopped_by
    pending = shutdown.take_pending()
    if stopped is None and pending is not None:
        # Came while the last step was recorded: every step ran; said, not acted on.
        log.warning("%s arrived as the last step ended", shutdown.signal_name(pending))
    reads = portal_reads + (record.requests if record is not None else 0)
    # What was sent is written down whatever arrives now: a signal waits until it is.
    with shutdown.deferred():
        finished = dt.datetime.now(dt.UTC)
        if record is not None:
            # Before the files: a plan whose workbook cannot be written is still recorded as over.
            record.finish(stopped)
        try:
            workbook = write_plan_results(
                out,
                plan_file=plan.path,
                started=started,
                finished=finished,
                steps=done,
                stopped_by=str(stopped) if stopped else None,
                plan_run_id=record.plan_run_id if record is not None else None,
                before_steps=(lookups, reads),
            )
            retry_files = write_plan_retry(retry, done)
        except OSError as exc:
            raise not_written(
                exc, record.plan_run_id if record is not None else None, "the plan's results"
            ) from exc
        if record is not None:
            record.files(workbook, retry_files)
    return PlanResult(
        steps=tuple(done),
        results=tuple(runs),
        workbook=workbook,
        retry_files=retry_files,
        stopped_by=stopped,
        plan_run_id=record.plan_run_id if record is not None else None,
        portal_reads=reads,
        lookup_requests=lookups,
    )


class _PlanRecord:
    """The plan run in its plan journal: the journal opened and locked before anything is
    read from the portal; the run written down (`begin`) once the plan's checks and lookups
    passed, before its first write. A plan that stops before that is not a run of it."""

    def __init__(
        self,
        journal: PlanJournal,
        plan_run_id: str,
        run_ids: list[str],
        requests: int,
        steps: list[PlannedStep],
        portal: str | None,
    ) -> None:
        self.journal = journal
        self.plan_run_id = plan_run_id
        self.run_ids = run_ids
        self.requests = requests
        """Requests sent to learn the portal (none once it is remembered)."""
        self._steps = steps
        self._portal = portal
        self._begun = False
        self._finished = False

    @classmethod
    def open(cls, plan: PlanFile, options: RunOptions, started: dt.datetime) -> _PlanRecord:
        state_dir = prepare_folder(options.state_dir or default_state_dir(), "--state-dir")
        client = client_for(options)
        try:
            portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
            requests = client.requests_sent
        finally:
            client.close()
        base = options.journal_base or options.base_url
        portal_id = portal.portal_id if portal is not None else None
        journal = PlanJournal(plan_journal_path(state_dir, base, plan.path, portal_id), lock=True)
        run_ids = [new_run_id(started) for _ in plan.steps]
        steps = [
            PlannedStep(
                name=step.name,
                object_type=step.mapping.object_type,
                input_file=str(step.input_file),
                sheet=step.sheet,
                mapping_file=str(step.mapping_file),
                journal=str(journal_path(state_dir, base, step.mapping.object_type, portal_id)),
                run_id=run_id,
            )
            for step, run_id in zip(plan.steps, run_ids, strict=True)
        ]
        return cls(
            journal,
            f"{PLAN_RUN_PREFIX}{new_run_id(started)}",
            run_ids,
            requests,
            steps,
            portal.describe() if portal is not None else None,
        )

    def begin(self, plan: PlanFile, options: RunOptions) -> None:
        """Write the plan run and every step's run id down, before the first write."""
        self.journal.start(
            self.plan_run_id,
            plan_file=plan.path,
            base_url=options.base_url,
            portal=self._portal,
            steps=self._steps,
        )
        self._begun = True

    def step_started(self, position: int) -> None:
        self.journal.step_started(self.plan_run_id, position)

    def step_ended(self, position: int, step: StepResult, *, ran: bool) -> None:
        self.journal.step_ended(
            self.plan_run_id,
            position,
            ran=ran,
            counts=step.summary.counts,
            requests=step.summary.requests,
            note=step.summary.stopped_by,
        )

    def finish(self, stopped: StopReason | None) -> None:
        self.journal.finish(self.plan_run_id, stopped_by=str(stopped) if stopped else None)
        self._finished = True

    def files(self, workbook: Path, retry_files: tuple[Path, ...]) -> None:
        self.journal.record_files(
            self.plan_run_id,
            workbook=str(workbook),
            retry_file=", ".join(str(p) for p in retry_files) or None,
        )

    def close(self, *, stopped_by: str | None = None) -> None:
        """Release the plan's lock; a plan that raised after it began is recorded as stopped
        by it."""
        try:
            if self._begun and not self._finished:
                self.journal.finish(self.plan_run_id, stopped_by=stopped_by)
        finally:
            self.journal.close()


def _check_first(
    plan: PlanFile, options: RunOptions
) -> tuple[list[Mapping], dict[int, Table], int]:
    """Every step's sheet read and its columns checked, and every mapping checked against the
    portal (each object type's properties read once), before the plan writes anything: a
    mistake in its last step stops it with nothing written. Returns the checked mappings, the
    sheets by step, and the requests sent."""
    tables: dict[int, Table] = {}
    for n, step in enumerate(plan.steps):
        try:
            table = load_table(step.input_file, sheet=step.sheet, encoding=options.encoding)
        except EmptySheetError as exc:
            # No orders today: in a plan, a sheet with its header alone is a step with
            # nothing to do, not a reason to stop the others.
            table = cast(Table, exc.table)
            log.info("step %s: %s has a header and no rows", step.name, table.where())
        step.mapping.check_columns(table.columns, table.where(), table.duplicate_headers)
        tables[n] = table
    if not options.portal_check:
        return [resolve_offline(step.mapping) for step in plan.steps], tables, 0
    schemas: dict[str, PortalSchema] = {}
    client = client_for(options)
    try:
        checked = [
            check_mapping(
                client,
                step.mapping,
                mode=options.mode or step.mapping.mode,
                source=str(step.mapping_file),
                schemas=schemas,
            )
            for step in plan.steps
        ]
        requests = client.requests_sent
    finally:
        client.close()
    return checked, tables, requests


def _look_up_first(
    plan: PlanFile, options: RunOptions, tables: dict[int, Table]
) -> tuple[dict[tuple[str, str], dict[str, list[str]]], int]:
    """(object type, property) -> stored key -> ids of every key a step refers to that no
    step's rows hold: records of object types no step imports (customers by email), and
    records of an imported type that its sheet does not list (a SKU imported last month). Each
    distinct key once; and the requests sent for them."""
    importers: dict[str, list[int]] = {}
    for n, step in enumerate(plan.steps):
        importers.setdefault(step.mapping.object_type, []).append(n)
    wanted: dict[tuple[str, str], set[str]] = {}
    for n, step in enumerate(plan.steps):
        for (to, by), keys in cell_keys(tables[n], step.mapping).items():
            held = _keys_in_steps(plan, tables, importers.get(to, []), to, by)
            if held is not None:
                wanted.setdefault((to, by), set()).update(keys - held)
    wanted = {target: keys for target, keys in wanted.items() if keys}
    if not wanted:
        return {}, 0
    state_dir = options.state_dir or default_state_dir()
    client = client_for(options)
    try:
        portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
        before = client.requests_sent
        base = options.journal_base or options.base_url
        resolver = Resolver(
            client,
            journals={
                to: journal_path(state_dir, base, to, portal.portal_id if portal else None)
                for to, _ in wanted
            },
        )
        found: dict[tuple[str, str], dict[str, list[str]]] = {}
        for (to, by), keys in wanted.items():
            answer = resolver.find(Reference(to=to, by=by), keys)
            found[(to, by)] = {k: ids for k, ids in answer.items() if ids is not None}
        log.info(
            "looked up %d keys that no step's rows hold, before anything is written",
            sum(len(k) for k in wanted.values()),
        )
        return found, client.requests_sent - before
    finally:
        client.close()


def _keys_in_steps(
    plan: PlanFile, tables: dict[int, Table], steps: list[int], to: str, by: str
) -> set[str] | None:
    """The `by` keys the rows of `steps` (those importing `to`) hold, as HubSpot stores them;
    None when one of them is not keyed by `by`: its rows may get `by` values that only exist
    once it has run, so keys of `to` by `by` cannot be looked up before it."""
    held: set[str] = set()
    for n in steps:
        mapping = plan.steps[n].mapping
        if mapping.key is None or mapping.key_property != by:
            return None
        held.update(stored_keys(tables[n].frame[mapping.key], to, by))
    return held


def _remember(
    step: Step,
    result: RunResult,
    known: dict[tuple[str, str], dict[str, str | None]],
    where: dict[tuple[str, str], dict[str, str]],
    *,
    dry_run: bool,
) -> None:
    """The step's keys -> record ids, for the steps after it (None: the row was not imported;
    in a dry run, rows that would be imported count as imported)."""
    mapping, table, outcome = step.mapping, result.table, result.outcome
    if mapping.key is None or mapping.key_property is None or table is None or outcome is None:
        return
    prop, kind = mapping.key_property, mapping.object_type
    ids: dict[str, str | None] = known.setdefault((kind, prop), {})
    cells: dict[str, str] = where.setdefault((kind, prop), {})
    imported = {s.value for s in _IMPORTED} | ({s.value for s in _WOULD_BE} if dry_run else set())
    keys = table.frame[mapping.key].tolist()
    for row, key, status, hid in zip(
        outcome.index.tolist(),
        keys,
        outcome["status"].tolist(),
        outcome["hubspot_id"].tolist(),
        strict=True,
    ):
        if not isinstance(key, str) or not key.strip():
            continue
        stored = stored_value(kind, prop, key.strip())
        ids[stored] = (hid or "(new)") if status in imported else None
        cells[stored] = table.cell_ref(row, mapping.key)


def _not_run(
    step: Step, options: RunOptions, why: Any, *, itself: bool = False, table: Table | None = None
) -> StepResult:
    """A step after one that stopped (or, `itself`, a step that could not start after earlier
    steps had written): every row of its sheet `not_sent`. A sheet that cannot be read at all
    is a line of the Summary with no rows, saying why."""
    if itself and isinstance(why, RunInterrupted):
        message = f"not sent: {why}"
    elif itself:
        message = f"not sent: this step could not run ({why})"
    else:
        message = f"not sent: the plan stopped at an earlier step ({why})"
    try:
        table = table or load_table(step.input_file, sheet=step.sheet, encoding=options.encoding)
    except InputFileError:
        table = Table(
            frame=pd.DataFrame(index=pd.Index([], dtype="int64")),
            source=step.input_file,
            sheet=step.sheet,
            letters={},
        )
    outcome = results_frame({}, table.frame.index, otherwise=RowStatus.NOT_SENT)
    outcome["message"] = message
    counts = {s.value: 0 for s in RowStatus}
    counts[RowStatus.NOT_SENT.value] = len(outcome)
    now = dt.datetime.now(dt.UTC)
    summary = RunSummary(
        run_id=new_run_id(now),
        object_type=step.mapping.object_type,
        input_file=step.input_file,
        sheet=table.sheet,
        mapping_file=str(step.mapping_file),
        base_url=options.base_url,
        started=now,
        finished=now,
        counts=counts,
        rows=len(outcome),
        stopped_by=message,
    )
    return StepResult(name=step.name, summary=summary, outcome=outcome, table=table, issues=())
