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
from typing import Any

import pandas as pd

from ..api.limiter import RateLimiter
from ..core import shutdown
from ..core.errors import HubSpotImportError, InputFileError, KeylessRerun, RunInterrupted
from ..core.hubspot import stored_number, stored_value
from ..core.outcome import RowStatus, results_frame
from ..mapping.model import Mapping, PropertyType
from ..sheets.load import Table, load_table
from ..sheets.outputs import prepare_file, prepare_workbook
from ..sheets.plan_results import StepResult, write_plan_results, write_plan_retry
from ..sheets.results import RunSummary
from ..stages.options import RunOptions, StepContext
from ..stages.resolve import Known
from ..stages.run import Progress, RunResult, new_run_id, run_import
from ..stages.shape import shape
from ..stages.write import not_written
from .check import (
    Fingerprints,
    changed_since_check,
    check_first,
    look_up_first,
    plan_numbers,
    type_identities,
)
from .file import PlanFile, Step, load_plan, reordered
from .record import PlanRecord

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
    retry_out: Path | None = None,
    progress: Callable[[str], Progress | None] | None = None,
) -> PlanResult:
    """Run every step of the plan (with `options` for all but the input, mapping and sheet),
    then write one results workbook (and a retry workbook when rows need fixing). The plan run
    is recorded in the plan's journal (see state.plan_journal), unless nothing is sent."""
    # One limiter for every step: HubSpot's window counts them all, and a step that started
    # with an empty window of its own would meet the last step's requests as 429s.
    limiter = RateLimiter(max_rps=options.max_rps)
    plan = load_plan(plan_file)
    # `pets` and `p4242424_pets` are one object type: a step referring to it by either name
    # runs after the step importing it, and finds the keys that step imported.
    kinds, type_reads = type_identities(plan, options, limiter)
    plan = reordered(plan, kinds)
    started = dt.datetime.now(dt.UTC)
    keep = (plan.path, *[s.input_file for s in plan.steps], *[s.mapping_file for s in plan.steps])
    stamp = started.astimezone().strftime("%Y%m%d-%H%M%S")
    out = prepare_workbook(out or plan.path.with_name(f"{plan.path.stem}-results-{stamp}.xlsx"),
                           keep=keep)  # fmt: skip
    retry = prepare_file(
        retry_out or out.with_name(f"{plan.path.stem}-retry-{stamp}.xlsx"),
        "the retry file",
        keep=keep,
    )
    run = _PlanRun(plan, options, started, limiter, progress)
    run.kinds, run.type_reads = kinds, type_reads
    run.record = None if options.dry_run else PlanRecord.open(plan, options, started, run.limiter)
    try:
        planned = run.run_steps(out, retry)
    except BaseException as exc:
        if run.record is not None:
            run.record.close(stopped_by=str(exc) or type(exc).__name__)
        raise
    if run.record is not None:
        run.record.close()
    return planned


class _PlanRun:
    """One run of a plan: its steps run in order, each handed the keys the steps before it
    imported; what each did recorded whole before the next starts."""

    def __init__(
        self,
        plan: PlanFile,
        options: RunOptions,
        started: dt.datetime,
        limiter: RateLimiter,
        progress: Callable[[str], Progress | None] | None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.started = started
        self.limiter = limiter
        self.progress = progress
        self.record: PlanRecord | None = None
        self.kinds: dict[str, str] = {}
        """Each object type name the plan uses -> one name for its type (type_identities)."""
        self.type_reads = 0
        """Requests sent to tell the plan's object types apart."""
        self.known: Known = {}
        self.where: dict[tuple[str, str], dict[str, str]] = {}
        self.done: list[StepResult] = []
        self.runs: list[RunResult | None] = []
        self.stopped: StopReason | None = None
        self.checked_files: Fingerprints = {}
        """Each step's input as the plan checked it: a step whose file changed since is not
        run."""

    def run_steps(self, out: Path, retry: Path) -> PlanResult:
        """The checks and lookups before the first write, every step, then the plan's files."""
        checked, tables, self.checked_files, portal_reads = check_first(
            self.plan, self.options, self.limiter, self.kinds
        )
        portal_reads += self.type_reads
        # Keys no step's rows hold (customers by email, say) are looked up before any
        # step writes: a lookup that fails stops the plan with nothing written.
        prefetched, lookups = look_up_first(
            self.plan,
            self.options,
            _as_steps_read(tables, checked),
            self.limiter,
            plan_numbers(checked, self.kinds),
            self.kinds,
        )
        if self.record is not None:
            self.record.begin(self.plan, self.options)
        for position, step in enumerate(self.plan.steps):
            table = tables.pop(position)  # each sheet is let go once its step is over
            pending = shutdown.take_pending()  # a signal kept while the last step was recorded
            if self.stopped is None and pending is not None:
                self.stopped = shutdown.interrupted(pending)
            if self.stopped is not None:
                with shutdown.deferred():
                    self._skip(position, _not_run(step, self.options, self.stopped, table=table))
                continue
            context = StepContext(
                run_id=self.record.run_ids[position] if self.record else new_run_id(self.started),
                table=table,
                mapping=checked[position],
                limiter=self.limiter,
                known=self.known,
                known_where=self.where,
                prefetched=prefetched,
            )
            self._run_step(position, step, context)
        pending = shutdown.take_pending()
        if self.stopped is None and pending is not None:
            # Came while the last step was recorded: every step ran; said, not acted on.
            log.warning("%s arrived as the last step ended", shutdown.signal_name(pending))
        reads = portal_reads + (self.record.requests if self.record is not None else 0)
        return self._finish(out, retry, lookups, reads)

    def _run_step(self, position: int, step: Step, context: StepContext) -> None:
        """One step, as a run of its own; a step that cannot start after earlier steps wrote
        is recorded as not run, saying why (raised when nothing of the plan was sent)."""
        log.info("step %s: %s from %s", step.name, step.mapping.object_type, step.input_file.name)
        options = dataclasses.replace(
            self.options, input_file=step.input_file, mapping_file=step.mapping_file,
            sheet=step.sheet, out=None,
        )  # fmt: skip
        try:
            changed = changed_since_check(step, self.checked_files.get(position))
            if changed is not None:
                raise InputFileError(changed)
            if self.record is not None:
                self.record.step_started(position)
            progress = self.progress(step.name) if self.progress is not None else None
            result = run_import(options, progress=progress, step=context)
        except KeylessRerun as exc:
            # This step alone is refused: the others are keyed, and their reruns are safe.
            log.warning("step %s: %s", step.name, exc)
            refused = _not_run(step, self.options, exc, itself=True, table=context.table)
            with shutdown.deferred():
                self._skip(position, refused)
            return
        except (HubSpotImportError, shutdown.Stop) as exc:
            self.stopped = (
                shutdown.interrupted(exc.signum) if isinstance(exc, shutdown.Stop) else exc
            )
            # Earlier steps wrote records (a signal, or a step that could not start): the
            # plan's workbook must say which, and that this step's rows were not sent.
            with shutdown.deferred():
                unsent = _not_run(
                    step, self.options, self.stopped, itself=True, table=context.table
                )
                self._skip(position, unsent)
            if not any(r is not None and r.summary.requests for r in self.runs):
                raise  # nothing of the plan was sent: said as a single run says it
            return
        # What the step did is recorded whole: a signal now waits for the next step.
        with shutdown.deferred():
            assert result.outcome is not None
            assert result.table is not None
            self.runs.append(result)
            self.done.append(
                StepResult(
                    name=step.name,
                    summary=result.summary,
                    outcome=result.outcome,
                    table=result.table,
                    issues=result.issues,
                )
            )
            if self.record is not None:
                self.record.step_ended(position, self.done[-1], ran=True)
            self._keep_keys(step, context.mapping, result)
            self.stopped = result.stopped_by

    def _keep_keys(self, step: Step, checked: Mapping, result: RunResult) -> None:
        """The keys the step imported, for the steps after it (`checked`: its mapping as the
        plan checked it, a number key typed so)."""
        _remember(
            dataclasses.replace(step, mapping=checked),
            result,
            self.known,
            self.where,
            dry_run=self.options.dry_run,
            names=self._names_of(step.mapping.object_type),
        )

    def _names_of(self, object_type: str) -> list[str]:
        """Every name the plan gives the object type `object_type` names (`pets`,
        `p4242424_pets`, `2-4242424`), `object_type` first."""
        kind = self.kinds.get(object_type, object_type)
        return [object_type, *(n for n, k in self.kinds.items() if k == kind and n != object_type)]

    def _skip(self, position: int, unsent: StepResult) -> None:
        """A step whose rows were not sent, in the workbook and the plan journal."""
        self.done.append(unsent)
        self.runs.append(None)
        if self.record is not None:
            self.record.step_ended(position, unsent, ran=False)

    def _finish(self, out: Path, retry: Path, lookups: int, reads: int) -> PlanResult:
        """The plan's end in its journal, then its workbook and retry files. What was sent is
        written down whatever arrives now: a signal waits until it is."""
        record, stopped = self.record, self.stopped
        plan_run_id = record.plan_run_id if record is not None else None
        with shutdown.deferred():
            if record is not None:
                # Before the files: a plan whose workbook cannot be written is still over.
                record.finish(stopped)
            try:
                workbook = write_plan_results(
                    out,
                    plan_file=self.plan.path,
                    started=self.started,
                    finished=dt.datetime.now(dt.UTC),
                    steps=self.done,
                    stopped_by=str(stopped) if stopped else None,
                    plan_run_id=plan_run_id,
                    before_steps=(lookups, reads),
                )
                retry_files = write_plan_retry(retry, self.done)
            except OSError as exc:
                raise not_written(exc, plan_run_id, "the plan's results") from exc
            if record is not None:
                record.files(workbook, retry_files)
        return PlanResult(
            steps=tuple(self.done),
            results=tuple(self.runs),
            workbook=workbook,
            retry_files=retry_files,
            stopped_by=stopped,
            plan_run_id=plan_run_id,
            portal_reads=reads,
            lookup_requests=lookups,
        )


def _as_steps_read(tables: dict[int, Table], mappings: list[Mapping]) -> dict[int, Table]:
    """The sheets as their steps will read them, for the lookups before the first write:
    groups filled down, the rows to skip left out (their keys are no step's)."""
    return {
        n: shape(table, mappings[n], quiet=True).kept
        if mappings[n].fill_down or mappings[n].skip_rows_without or mappings[n].skip_rows_where
        else table
        for n, table in tables.items()
    }


def _remember(
    step: Step,
    result: RunResult,
    known: dict[tuple[str, str], dict[str, str | None]],
    where: dict[tuple[str, str], dict[str, str]],
    *,
    dry_run: bool,
    names: list[str],
) -> None:
    """The step's keys -> record ids, for the steps after it (None: the row was not imported;
    in a dry run, rows that would be imported count as imported), under each of `names`,
    every name the plan gives the step's object type. A number key is kept as the number
    HubSpot stores (`8.0` as `8`), as a reference to it is looked up."""
    mapping, table, outcome = step.mapping, result.table, result.outcome
    if mapping.key is None or mapping.key_property is None or table is None or outcome is None:
        return
    prop, kind = mapping.key_property, mapping.object_type
    number = mapping.by_column[mapping.key].type is PropertyType.NUMBER
    ids: dict[str, str | None] = known.setdefault((kind, prop), {})
    cells: dict[str, str] = where.setdefault((kind, prop), {})
    for name in names:
        known[(name, prop)], where[(name, prop)] = ids, cells
    imported = {s.value for s in _IMPORTED} | ({s.value for s in _WOULD_BE} if dry_run else set())
    keys = table.frame[mapping.key].tolist()
    for row, key, status, hid in zip(
        outcome.index.tolist(),
        keys,
        outcome["status"].tolist(),
        outcome["hubspot_id"].tolist(),
        strict=True,
    ):
        # A skipped row is none of this run's: a reference to its key is looked up as any.
        if status == RowStatus.SKIPPED.value or not isinstance(key, str) or not key.strip():
            continue
        stored = stored_value(kind, prop, key.strip())
        stored = stored_number(stored) if number else stored
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
        table = table or load_table(
            step.input_file,
            sheet=step.sheet,
            encoding=options.encoding,
            header_row=step.mapping.header_row,
        )
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
