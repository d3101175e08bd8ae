"""`run`, `check` and `init`: one sheet or a plan, reported and summarised."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click

from ..api.client import DEFAULT_TIMEOUT, HubSpotClient, RetryPolicy
from ..core import shutdown
from ..core.errors import AuthError, ConfigError, InputFileError, LockHeld, RunInterrupted
from ..core.hubspot import MAX_ASSOCIATION_INPUTS, MAX_BATCH_INPUTS, canonical_object_type
from ..core.outcome import GOOD_STATUSES
from ..mapping.draft import draft_mapping
from ..mapping.model import SyncMode
from ..mapping.portal import read_schema
from ..plans.runner import PlanResult, run_plan
from ..sheets.load import load_table
from ..sheets.outputs import prepare_file, prepare_folder
from ..stages.run import RunOptions, RunResult, run_import
from ..stages.send import DEFAULT_CONCURRENCY
from ..state.journal import default_state_dir
from .common import (
    _SUMMARY_WRITTEN,
    EXIT_ERROR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_SIGNAL_BASE,
    IMPORT_OPTIONS,
    ISSUES_SHOWN,
    SANDBOX_DB,
    SANDBOX_JOURNAL,
    TARGET_OPTIONS,
    _progress,
    _target,
    _write_json,
    cli,
    log,
)


@cli.command()
@IMPORT_OPTIONS
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH_INPUTS),
    default=MAX_BATCH_INPUTS,
    show_default=True,
    help="Records per batch request (HubSpot allows at most 100).",
)
@click.option(
    "--association-batch-size",
    type=click.IntRange(1, MAX_ASSOCIATION_INPUTS),
    default=MAX_ASSOCIATION_INPUTS,
    show_default=True,
    help="Links per associations batch request (create or remove).",
)
@click.option(
    "--forget-uncertain",
    is_flag=True,
    help="Forget rows an earlier run left uncertain (after you checked HubSpot), so "
    "they are sent again.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(0, 64),
    default=DEFAULT_CONCURRENCY,
    help="Batches in flight at once; 0 (the default) sends as many as the rate limit allows "
    "in one window (8 to 64). The limit, learned from HubSpot's X-HubSpot-RateLimit-* "
    "headers, paces them whatever this is.",
)
@click.option(
    "--max-rps",
    type=click.FloatRange(0.1),
    help="Send at most this many requests per second (to leave room for other apps sharing "
    "the account's limit).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Do everything but send: load, map, validate against the portal, build every "
    "payload, and write the workbook with would_create / would_update.",
)
def run(
    dry_run: bool,
    batch_size: int,
    association_batch_size: int,
    forget_uncertain: bool,
    concurrency: int,
    max_rps: float | None,
    **options: Any,
) -> int:
    """Import INPUT (CSV, XLSX, XLSM, XLS, ODS) into HubSpot as MAPPING describes.

    Exit codes: 0 every row created, updated, unchanged or skipped; 1 some rows invalid,
    failed, incomplete, uncertain or not sent; 2 configuration, input or authentication
    error; 3 another run holds the lock.
    """
    return _execute(
        dry_run=dry_run,
        batch_size=batch_size,
        association_batch_size=association_batch_size,
        forget_uncertain=forget_uncertain,
        concurrency=concurrency,
        max_rps=max_rps,
        **options,
    )


@cli.command()
@IMPORT_OPTIONS
def check(**options: Any) -> int:
    """Check INPUT against MAPPING and the portal without writing anything to HubSpot.

    Writes the results workbook with the plan for every row (would_create, would_update,
    unchanged, invalid and why). Exit codes: 0 the import would be clean; 1 some rows are
    invalid (or uncertain); 2 configuration, input or authentication error.
    """
    return _execute(dry_run=True, **options)


@cli.command()
@click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--object",
    "object_type",
    required=True,
    help="The HubSpot object type to import into: products, carts, contacts, 0-7, "
    "a custom object ...",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write the mapping. Default: mappings/<input name>.yaml.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--sheet", help="Excel sheet name (or 1-based number). Default: the first sheet.")
@click.option("--encoding", help="CSV text encoding. Default: UTF-8 (with or without BOM).")
@TARGET_OPTIONS
def init(
    input_file: Path,
    object_type: str,
    out: Path | None,
    force: bool,
    sheet: str | None,
    encoding: str | None,
    base_url: str,
    api_version: str,
    sandbox: bool,
    log_file: Path | None,
    verbose: bool,
) -> int:
    """Draft a mapping for INPUT from its header row and the portal's properties."""
    out = out or Path("mappings") / f"{input_file.stem}.yaml"
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; choose another --out, or add --force to replace it")
    with contextlib.ExitStack() as stack:
        _, base_url, token = stack.enter_context(
            _target(stack, sandbox=sandbox, base_url=base_url, log_file=log_file, verbose=verbose)
        )
        table = load_table(input_file, sheet=sheet, encoding=encoding)
        client = stack.enter_context(
            contextlib.closing(
                HubSpotClient(token=token, base_url=base_url, api_version=api_version)
            )
        )
        schema = read_schema(client, canonical_object_type(object_type))
        where = str(input_file) + (f" (sheet {table.sheet})" if table.sheet else "")
        next_step = f"hubspot-import check --mapping {out} {input_file}" + (
            f" --sheet {json.dumps(sheet)}" if sheet else ""
        )
        text, matches, unmatched = draft_mapping(
            table, schema, source=where, command=next_step, base_url=base_url
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(
        f"Wrote {out}: {len(matches)} of {len(table.columns)} columns matched to "
        f"{schema.object_type} properties."
    )
    for m in matches:
        if m.score < 0.95:
            click.echo(f"  check: {m.column!r} -> {m.prop.name} ({m.how})")
    if unmatched:
        click.echo(f"  not matched: {', '.join(repr(c) for c in unmatched)}")
    click.echo(f"Next: {next_step}")
    return EXIT_OK


def _execute(
    *,
    dry_run: bool,
    input_file: Path | None,
    mapping_file: Path | None,
    plan_file: Path | None,
    sheet: str | None,
    encoding: str | None,
    out: Path | None,
    mode: str | None,
    state_dir: Path | None,
    portal_id: int | None,
    no_portal_check: bool,
    summary_json: Path | None,
    timeout: float,
    max_attempts: int,
    search_settle: float,
    import_again: bool,
    verify: bool,
    base_url: str,
    api_version: str,
    sandbox: bool,
    log_file: Path | None,
    verbose: bool,
    batch_size: int = MAX_BATCH_INPUTS,
    association_batch_size: int = MAX_ASSOCIATION_INPUTS,
    forget_uncertain: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_rps: float | None = None,
) -> int:
    if plan_file is not None and (mapping_file is not None or input_file is not None):
        raise ConfigError(
            "--plan names the mappings and inputs itself: give --plan alone, or --mapping "
            "and INPUT without it"
        )
    if plan_file is not None and sheet is not None:
        raise ConfigError("--sheet is for one sheet: in a plan, each step names its own `sheet:`")
    if plan_file is None and (mapping_file is None or input_file is None):
        missing = "--mapping" if mapping_file is None else "INPUT"
        raise ConfigError(
            f"{missing} is missing: give --mapping MAPPING and INPUT (the spreadsheet), or "
            "--plan PLAN"
        )
    if dry_run and forget_uncertain:
        raise ConfigError(
            "--dry-run changes nothing, so it cannot forget uncertain rows: run without "
            "--dry-run to forget them (or without --forget-uncertain to see the plan)"
        )
    reads = tuple(p for p in (input_file, mapping_file, plan_file) if p is not None)
    if summary_json is not None:
        prepare_file(summary_json, "--summary-json", keep=reads)
    sandbox_db = None
    if sandbox:
        # The demo keeps its sandbox's records beside its journal, so a second run tells the
        # truth (unchanged) and runs, show and undo work on it.
        state_dir = state_dir or default_state_dir()
        sandbox_db = prepare_folder(state_dir, "--state-dir") / SANDBOX_DB
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(
            _target(
                stack,
                sandbox=sandbox,
                base_url=base_url,
                log_file=log_file,
                verbose=verbose,
                sandbox_db=sandbox_db,
            )
        )
        console, base_url, token = target
        options = RunOptions(
            input_file=input_file or Path(),
            mapping_file=mapping_file or Path(),
            token=token,
            sheet=sheet,
            encoding=encoding,
            out=out,
            base_url=base_url,
            journal_base=SANDBOX_JOURNAL if sandbox else None,
            api_version=api_version,
            search_settle=search_settle,
            import_again=import_again,
            verify=verify,
            batch_size=batch_size,
            association_batch_size=association_batch_size,
            mode=SyncMode(mode) if mode else None,
            state_dir=state_dir,
            forget_uncertain=forget_uncertain,
            timeout=(DEFAULT_TIMEOUT[0], timeout),
            retry=RetryPolicy(max_attempts=max_attempts),
            portal_id=portal_id,
            portal_check=not no_portal_check,
            dry_run=dry_run,
            concurrency=concurrency,
            max_rps=max_rps,
        )
        if plan_file is not None:
            with _progress(console) as progress:
                planned = run_plan(plan_file, options, out=out, progress=lambda _: progress)
            with shutdown.deferred():
                code = _report_plan(planned)
                if summary_json is not None:
                    _write_plan_summary(summary_json, plan_file, planned, code)
                    _SUMMARY_WRITTEN.add(summary_json)
        else:
            with _progress(console) as progress:
                result = run_import(options, progress=progress)
            with shutdown.deferred():  # what was done is reported, whatever arrives meanwhile
                code = _report(result)
                if summary_json is not None:
                    _write_summary(summary_json, result, code)
                    _SUMMARY_WRITTEN.add(summary_json)
        late = shutdown.take_pending()
        if late is not None:
            log.warning(
                "%s arrived while the results were written; the run had finished",
                shutdown.signal_name(late),
            )
        return code


def _write_summary(path: Path, result: RunResult, code: int) -> None:
    s = result.summary
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
        "workbook": str(s.workbook) if s.workbook else None,
        "journal": str(s.journal) if s.journal else None,
        "retry_file": str(s.retry_file) if s.retry_file else None,
        "error": s.stopped_by,
    }
    _write_json(path, data)


def _report_plan(planned: PlanResult) -> int:
    """Each step's issues and counts, the workbook; the worst step's exit code."""
    codes = []
    for step in planned.steps:
        s = step.summary
        where = f"{s.input_file.name}" + (f", sheet {s.sheet}" if s.sheet else "")
        for issue in step.issues[:ISSUES_SHOWN]:
            click.echo(issue.describe(where), err=True)
        if len(step.issues) > ISSUES_SHOWN:
            click.echo(f"... and {len(step.issues) - ISSUES_SHOWN} more in {step.name}.", err=True)
        counts = ", ".join(f"{n} {status}" for status, n in s.counts.items() if n)
        click.echo(f"{step.name} ({s.object_type}): {s.rows} rows: {counts or 'nothing to do'}.")
        good = sum(n for status, n in s.counts.items() if status in GOOD_STATUSES)
        codes.append(EXIT_OK if good == s.rows else EXIT_ROWS)
    if planned.stopped_by is not None:
        click.echo(f"hubspot-import: stopped: {planned.stopped_by}", err=True)
        if isinstance(planned.stopped_by, AuthError | ConfigError | InputFileError):
            codes.append(EXIT_ERROR)
        if isinstance(planned.stopped_by, LockHeld):
            codes.append(EXIT_LOCKED)
        if isinstance(planned.stopped_by, RunInterrupted):
            return EXIT_SIGNAL_BASE + planned.stopped_by.signum
    click.echo(f"Results: {planned.workbook}")
    for retry in planned.retry_files:
        what = "for a CSV step" if retry.suffix == ".csv" else "a sheet per step"
        click.echo(f"Retry file (the rows to fix, {what}): {retry}")
    if planned.plan_run_id is not None:
        click.echo(f"Plan run: {planned.plan_run_id} (hubspot-import show {planned.plan_run_id})")
    return max(codes, default=EXIT_OK)


def _write_plan_summary(path: Path, plan_file: Path, planned: PlanResult, code: int) -> None:
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
        }
        for step in planned.steps
    ]
    _write_json(
        path,
        {
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
        },
    )


def _report(result: RunResult) -> int:
    s = result.summary
    where = f"{s.input_file.name}" + (f", sheet {s.sheet}" if s.sheet else "")
    for issue in result.issues[:ISSUES_SHOWN]:
        click.echo(issue.describe(where), err=True)
    if len(result.issues) > ISSUES_SHOWN:
        click.echo(
            f"... and {len(result.issues) - ISSUES_SHOWN} more problems: see the Issues sheet.",
            err=True,
        )
    if result.stopped_by is not None:
        click.echo(f"hubspot-import: stopped: {result.stopped_by}", err=True)
    counts = ", ".join(f"{n} {status}" for status, n in s.counts.items() if n)
    click.echo(f"{s.object_type}: {s.rows} rows: {counts or 'nothing to do'}.")
    click.echo(f"Results: {s.workbook}")
    if s.retry_file is not None:
        click.echo(
            f"Retry file (the invalid and failed rows, to fix and import again): {s.retry_file}"
        )
    if isinstance(result.stopped_by, AuthError):
        return EXIT_ERROR
    if isinstance(result.stopped_by, RunInterrupted):
        return EXIT_SIGNAL_BASE + result.stopped_by.signum
    good = sum(n for status, n in s.counts.items() if status in GOOD_STATUSES)
    return EXIT_OK if good == s.rows else EXIT_ROWS
