"""Command line: the only module that prints, reads the environment's token and picks exit codes."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from . import _shutdown
from ._errors import (
    AuthError,
    ConfigError,
    HubSpotImportError,
    HubSpotUnavailable,
    InputFileError,
    LockHeld,
    RunInterrupted,
)
from .api.client import DEFAULT_TIMEOUT, HubSpotClient, RetryPolicy
from .api.hubspot import (
    API_VERSION_ENV,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    LEGACY_API,
    MAX_ASSOCIATION_INPUTS,
    MAX_BATCH_INPUTS,
    SEARCH_RATE_PER_SECOND,
    ApiPaths,
    canonical_object_type,
)
from .api.reconcile import DEFAULT_SEARCH_SETTLE
from .pipeline.draft import draft_mapping
from .pipeline.mapping import SyncMode
from .pipeline.outcome import GOOD_STATUSES
from .pipeline.plans import PlanResult, run_plan
from .pipeline.run import RunOptions, RunResult, run_import
from .pipeline.schema import read_schema
from .pipeline.upload import DEFAULT_CONCURRENCY
from .sheets._text import use_system_allocator
from .sheets.load import load_table
from .sheets.outputs import prepare_file, prepare_folder, prepare_workbook
from .state.history import UndoPlan, list_runs, plan_undo, undo_run
from .state.journal import default_state_dir
from .state.rundata import rewrite_workbook

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_ROWS",
    "entry_point",
    "main",
]

EXIT_OK = 0  # every row created
EXIT_ROWS = 1  # the run finished, but some rows are invalid, failed, uncertain or not sent
EXIT_ERROR = 2  # configuration, input or authentication error: not everything was attempted
EXIT_LOCKED = 3  # another run holds the journal's lock: this one sent nothing
EXIT_INTERNAL = 4  # a bug: one line here, the details in the log or a crash report
EXIT_SIGNAL_BASE = 128  # + the signal: 130 for SIGINT (Ctrl-C), 143 for SIGTERM
TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_DB = "sandbox.sqlite"
"""The demo sandbox's records, in the state folder beside its journals."""
SANDBOX_JOURNAL = "sandbox"
"""What names the demo's journals: its sandbox answers on a new port each run."""
ISSUES_SHOWN = 10

log = logging.getLogger("importer")
F = TypeVar("F", bound=Callable[..., Any])


def _interactive() -> Console | None:
    """A console for the progress bar when standard error is a terminal, else None."""
    return Console(stderr=True) if sys.stderr.isatty() else None


@contextlib.contextmanager
def _logging(verbose: bool, log_file: Path | None, console: Console | None) -> Iterator[None]:
    """Timestamped lines to stderr or a file; on a terminal, printed above the progress bar."""
    handler: logging.Handler
    if log_file is not None:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    elif console is not None:
        handler = RichHandler(console=console, show_path=False, log_time_format="%H:%M:%S")
    else:
        handler = logging.StreamHandler()
    if not isinstance(handler, RichHandler):
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        )
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hubspot-import")
def cli() -> None:
    """Import CSV and Excel spreadsheets into HubSpot CRM, accounting for every row.

    The access token is read from the HUBSPOT_ACCESS_TOKEN environment variable.
    """


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply click decorators in the order they read."""

    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def _api_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return ApiPaths(value).version
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


API_VERSION_OPTION = click.option(
    "--api-version",
    envvar=API_VERSION_ENV,
    default=DEFAULT_API_VERSION,
    show_default=True,
    callback=_api_version,
    help=f"HubSpot API version: a date version (YYYY-MM) for the date-based paths, or "
    f"'{LEGACY_API}' for the numbered /crm/v3 and /crm/v4 paths (env {API_VERSION_ENV}).",
)
TARGET_OPTIONS = _options(
    click.option(
        "--base-url",
        envvar="HUBSPOT_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="HubSpot API base URL (env HUBSPOT_BASE_URL).",
    ),
    API_VERSION_OPTION,
    click.option(
        "--sandbox",
        is_flag=True,
        help="Start the local HubSpot sandbox on 127.0.0.1 and use it (a demo or "
        "rehearsal: nothing leaves this machine).",
    ),
    click.option(
        "--log-file",
        type=click.Path(path_type=Path),
        help="Write log lines to this file instead of standard error.",
    ),
    click.option("--verbose", "-v", is_flag=True, help="Log each batch and retry."),
)
IMPORT_OPTIONS = _options(
    click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path), required=False),
    click.option(
        "--mapping",
        "-m",
        "mapping_file",
        type=click.Path(path_type=Path),
        help="Mapping YAML: object type, column -> property, associations.",
    ),
    click.option(
        "--plan",
        "plan_file",
        type=click.Path(path_type=Path),
        help="Plan YAML: several mappings, each with its sheet or file, run in the order their "
        "references need, into one results workbook (instead of --mapping and INPUT).",
    ),
    click.option("--sheet", help="Excel sheet name (or 1-based number). Default: the first sheet."),
    click.option(
        "--encoding",
        help="CSV text encoding, e.g. cp1252 or latin-1. Default: UTF-8 (with or without BOM).",
    ),
    click.option(
        "--out",
        type=click.Path(path_type=Path),
        help="Results workbook path. Default: <input>-results-<timestamp>.xlsx beside the input.",
    ),
    click.option(
        "--mode",
        type=click.Choice([m.value for m in SyncMode]),
        help="Override the mapping's mode: create (default; changed rows are "
        "updated), upsert (on the key's unique property) or update (existing records "
        "only).",
    ),
    click.option(
        "--state-dir",
        type=click.Path(path_type=Path),
        help="Folder for the run journal (one SQLite file per portal and object "
        "type). Default: the user's data directory.",
    ),
    click.option(
        "--portal-id",
        type=click.IntRange(1),
        help="HubSpot portal (account) id, for links to records in the workbook. "
        "Default: asked of HubSpot once and remembered.",
    ),
    click.option(
        "--no-portal-check",
        is_flag=True,
        help="Do not read the portal's property definitions and association labels "
        "first (for a token without schema read access); the mapping alone decides.",
    ),
    click.option(
        "--summary-json",
        type=click.Path(path_type=Path),
        help="Also write a machine-readable summary (counts, run id, timings, workbook) here.",
    ),
    click.option(
        "--max-attempts",
        type=click.IntRange(1, 20),
        default=RetryPolicy().max_attempts,
        show_default=True,
        help="Attempts per request before giving up on 429s, 5xx and refused connections "
        "(waits grow exponentially, with jitter).",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(1),
        default=DEFAULT_TIMEOUT[1],
        show_default=True,
        help="Seconds to wait for HubSpot's answer to one request.",
    ),
    click.option(
        "--verify",
        is_flag=True,
        help="Before planning, read back every record the journal knows for these rows (100 a "
        "request): records deleted in HubSpot are created again, merged ones followed to the "
        "surviving record, and properties edited in HubSpot set back to the sheet's values.",
    ),
    click.option(
        "--import-again",
        is_flag=True,
        help="For a mapping without a key: create every row of INPUT again as new records, "
        "although an earlier run imported this file with this mapping (without a key, no run "
        "can tell which record a row is).",
    ),
    click.option(
        "--search-settle",
        type=click.FloatRange(0),
        default=DEFAULT_SEARCH_SETTLE,
        show_default=True,
        help="Seconds HubSpot's search may lag a write. After a lost answer, a record looked "
        "up by a key without unique values is searched for only once the write is this old, "
        "so that 'not found' means it was not created.",
    ),
    TARGET_OPTIONS,
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
        plan_only=dry_run,
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
    return _execute(plan_only=True, **options)


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


@contextlib.contextmanager
def _target(
    stack: contextlib.ExitStack,
    *,
    sandbox: bool,
    base_url: str,
    log_file: Path | None,
    verbose: bool,
    sandbox_db: Path | None = None,
) -> Iterator[tuple[Console | None, str, str]]:
    """Logging, the sandbox when asked (its records in `sandbox_db`, else in memory), and
    the token: (console, base URL, token)."""
    ctx = click.get_current_context(silent=True)
    if (
        sandbox
        and ctx is not None
        and (ctx.get_parameter_source("base_url") is ParameterSource.COMMANDLINE)
    ):
        raise ConfigError(
            f"--sandbox starts a HubSpot emulator of its own on 127.0.0.1, so --base-url "
            f"{base_url} would not be used: give one or the other"
        )
    if log_file is not None:
        prepare_file(log_file, "--log-file")
    token = os.environ.get(TOKEN_ENV, "")
    console = _interactive()
    stack.enter_context(_logging(verbose, log_file, console))
    if sandbox:
        from .sandbox import Sandbox, SandboxConfig

        box = stack.enter_context(Sandbox(SandboxConfig(db=sandbox_db)))
        base_url = box.url
        token = token or SANDBOX_TOKEN
        log.info("sandbox started at %s", base_url)
    if not token:
        raise AuthError(
            f"no access token: set {TOKEN_ENV} to your private app's token (or add "
            "--sandbox to try the import locally)."
        )
    yield console, base_url, token


def _execute(
    *,
    plan_only: bool,
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
    if plan_only and forget_uncertain:
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
            plan_only=plan_only,
            concurrency=concurrency,
            max_rps=max_rps,
        )
        if plan_file is not None:
            with _progress(console) as progress:
                planned = run_plan(plan_file, options, out=out, progress=lambda _: progress)
            with _shutdown.deferred():
                code = _report_plan(planned)
                if summary_json is not None:
                    _write_plan_summary(summary_json, plan_file, planned, code)
                    _SUMMARY_WRITTEN.add(summary_json)
        else:
            with _progress(console) as progress:
                result = run_import(options, progress=progress)
            with _shutdown.deferred():  # what was done is reported, whatever arrives meanwhile
                code = _report(result)
                if summary_json is not None:
                    _write_summary(summary_json, result, code)
                    _SUMMARY_WRITTEN.add(summary_json)
        late = _shutdown.take_pending()
        if late is not None:
            log.warning(
                "%s arrived while the results were written; the run had finished",
                _shutdown.signal_name(late),
            )
        return code


_SUMMARY_WRITTEN: set[Path] = set()
"""Summaries a command wrote itself; on any other exit `main` writes one saying why."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: the scheduler never reads half a summary, nor last night's by mistake."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
        if isinstance(planned.stopped_by, AuthError):
            codes.append(EXIT_ERROR)
        if isinstance(planned.stopped_by, RunInterrupted):
            return EXIT_SIGNAL_BASE + planned.stopped_by.signum
    click.echo(f"Results: {planned.workbook}")
    if planned.retry_file is not None:
        click.echo(f"Retry file (the rows to fix, a sheet per step): {planned.retry_file}")
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
            "exit_code": code,
            "steps": steps,
            "workbook": str(planned.workbook),
            "retry_file": str(planned.retry_file) if planned.retry_file else None,
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


@contextlib.contextmanager
def _progress(console: Console | None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal, shown once uploading starts; else a log line per tenth."""
    if console is not None:
        bar = Progress(
            TextColumn("uploading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        tasks: list[TaskID] = []

        def update(done: int, total: int) -> None:
            if not tasks:
                tasks.append(bar.add_task("upload", total=total))
                bar.start()
            bar.update(tasks[0], completed=done, total=total)

        try:
            yield update
        finally:
            bar.stop()
        return
    step = {"next": 0}

    def report(done: int, total: int) -> None:
        if done >= step["next"] or done == total:
            log.info("uploaded %d of %d rows", done, total)
            step["next"] = done + max(1, total // 10)

    yield report


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    help="Keep records in this SQLite file (default: in memory).",
)
@click.option("--token", help="Accept only this bearer token (default: any token).")
@click.option(
    "--echo-trace-ids",
    is_flag=True,
    help="Echo objectWriteTraceId in created results (unverified for HubSpot).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(1),
    default=190,
    show_default=True,
    help="Requests allowed per rolling window (10 s unless --rate-window-ms says otherwise).",
)
@click.option(
    "--latency",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Seconds each answer takes, the work included (as HubSpot's latency).",
)
@click.option(
    "--rate-window-ms",
    type=click.IntRange(100),
    default=10_000,
    show_default=True,
    help="The rolling window of --rate-limit, in milliseconds.",
)
@click.option(
    "--daily-limit",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Requests allowed per day.",
)
@click.option(
    "--search-lag",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Seconds before search sees a write (HubSpot's search lags writes by seconds).",
)
@click.option(
    "--search-rate-limit",
    type=click.IntRange(1),
    default=SEARCH_RATE_PER_SECOND,
    show_default=True,
    help="Search requests allowed per second per token (search's own limit).",
)
@click.option(
    "--no-legacy-paths",
    is_flag=True,
    help="Answer 404 on the numbered paths (/crm/v3, /crm/v4, /account-info/v3), as after "
    "HubSpot's sunset; only the date-based ones are served.",
)
def sandbox(
    host: str,
    port: int,
    db: Path | None,
    token: str | None,
    echo_trace_ids: bool,
    rate_limit: int,
    latency: float,
    rate_window_ms: int,
    daily_limit: int,
    search_lag: float,
    search_rate_limit: int,
    no_legacy_paths: bool,
) -> int:
    """Serve the local HubSpot emulator until interrupted (Ctrl-C)."""
    from .sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        db=db,
        token=token,
        echo_trace_ids=echo_trace_ids,
        rate_limit=rate_limit,
        rate_interval_ms=rate_window_ms,
        daily_limit=daily_limit,
        latency=latency,
        search_lag=search_lag,
        search_rate_limit=search_rate_limit,
        legacy_paths=not no_legacy_paths,
    )
    box = Sandbox(config, host=host, port=port)
    # systemd and schedulers stop services with SIGTERM: shut down as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    click.echo(f"HubSpot sandbox listening on {box.url}" + (f" (records in {db})" if db else ""))
    click.echo(f"Import into it with: HUBSPOT_BASE_URL={box.url} hubspot-import run ...")
    try:
        box.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        box.stop()
    return EXIT_OK


STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="Folder of the run journals (as given to `run`). Default: the user's data directory.",
)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no rows"


@cli.command()
@STATE_DIR_OPTION
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Show at most this many runs, newest first.",
)
def runs(state_dir: Path | None, limit: int) -> int:
    """List past runs from the journals: id, when, object, input, counts, workbook."""
    found = list_runs(state_dir or default_state_dir())
    if not found:
        click.echo("No runs recorded yet.")
        return EXIT_OK
    for r in found[:limit]:
        state = (
            f" [undone {r['undone']}]"
            if r.get("undone")
            else ("" if r.get("finished") else " [did not finish]")
        )
        portal = f"  portal {r['portal']}" if r.get("portal") else ""
        click.echo(
            f"{r['run_id']}  {r['started']}  {r['object_type']} ({r['mode']})  "
            f"{r['input_file']}{state}{portal}"
        )
        click.echo(f"    {_counts_text(r['counts'])}; workbook: {r.get('workbook') or '-'}")
    if len(found) > limit:
        click.echo(f"... and {len(found) - limit} older runs (--limit to see more)")
    return EXIT_OK


@cli.command()
@click.argument("run_id", metavar="RUN")
@STATE_DIR_OPTION
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the run's results workbook again, from its journal, to this .xlsx file "
    "(when the run's own could not be written, or the run was stopped).",
)
def show(run_id: str, state_dir: Path | None, out: Path | None) -> int:
    """Print one run's summary (RUN: its id, or the start of it)."""
    plan = plan_undo(state_dir or default_state_dir(), run_id)
    r = plan.run
    if out is not None:
        keep = (Path(r["input_file"]), Path(r["mapping_file"]))
        written, finished = rewrite_workbook(r, prepare_workbook(out, keep=keep))
        click.echo(
            f"Wrote the results workbook of run {r['run_id']} to {written}"
            + (
                ""
                if finished
                else " (the run did not finish: rows it sent have what the journal recorded "
                "of them, the rest are not_sent)"
            )
        )
        return EXIT_OK
    fields = [
        ("Run id", r["run_id"]),
        ("Object type", r["object_type"]),
        ("Mode", r["mode"]),
        ("HubSpot", r["base_url"]),
        ("Portal", r.get("portal") or "unknown (journal kept per base URL)"),
        ("Input file", r["input_file"]),
        ("Sheet", r["sheet"] or "(CSV)"),
        ("Mapping", r["mapping_file"]),
        ("Started", r["started"]),
        ("Finished", r["finished"] or "did not finish"),
        ("Rows", _counts_text(r["counts"])),
        ("Records created", len(plan.created)),
        ("Records updated", len(plan.updated)),
        ("Stopped early", r["stopped_by"] or "no"),
        ("Workbook", r["workbook"] or "-"),
        ("Journal", r["journal"]),
        (
            "Undone",
            f"{r['undone']} ({r['archived']} archived)"
            if r.get("undone")
            else f"part way: {r['archived']} archived, {len(plan.created)} left (run undo "
            "again to finish)"
            if r.get("archived")
            else "no",
        ),
    ]
    for name, value in fields:
        click.echo(f"{name + ':':17}{value}")
    return EXIT_OK


@cli.command()
@click.argument("run_id", metavar="RUN")
@STATE_DIR_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--base-url",
    envvar="HUBSPOT_BASE_URL",
    help="HubSpot API base URL. Default: the one the run used.",
)
@API_VERSION_OPTION
def undo(
    run_id: str, state_dir: Path | None, yes: bool, base_url: str | None, api_version: str
) -> int:
    """Archive the records RUN created and revert the links it changed on other records;
    the properties of records it updated are listed but not touched."""
    plan = plan_undo(state_dir or default_state_dir(), run_id)
    r = plan.run
    if r.get("undone"):
        click.echo(
            f"Run {r['run_id']} was already undone at {r['undone']} "
            f"({r['archived']} records archived)."
        )
        return EXIT_OK
    click.echo(
        f"Run {r['run_id']} ({r['started']}, {r['input_file']}) created "
        f"{len(plan.created) + plan.archived_before} {r['object_type']} and updated "
        f"{len(plan.updated)}."
    )
    if plan.archived_before:
        click.echo(
            f"An earlier undo archived {plan.archived_before} of them and stopped; "
            f"{len(plan.created)} are left to archive."
        )
    if plan.updated:
        ids = ", ".join(hid for _, hid in plan.updated[:20])
        more = f" and {len(plan.updated) - 20} more" if len(plan.updated) > 20 else ""
        click.echo(
            f"Updated records are left as they are (their earlier values are not "
            f"known): {ids}{more}."
        )
    if plan.links:
        added = sum(c["change"] == "add" for c in plan.links)
        click.echo(
            f"It also added {added} and removed {len(plan.links) - added} links of records it "
            "did not create: undo removes those it added and puts back those it removed."
        )
    if not plan.created and not plan.links:
        click.echo("Nothing to archive.")
        return EXIT_OK
    demo_db = Path(r["journal"]).parent / SANDBOX_DB
    demo = base_url is None and Path(r["journal"]).name.startswith(f"{SANDBOX_JOURNAL}-")
    target = base_url or ("the demo sandbox" if demo else r["base_url"])
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                "not on a terminal, so no one can confirm: add --yes to archive "
                f"{len(plan.created)} records"
            )
        what = f"Archive these {len(plan.created)} records" + (
            f" and revert {len(plan.links)} links" if plan.links else ""
        )
        if not click.confirm(f"{what} in {target}?"):
            click.echo("Nothing was archived.")
            return EXIT_OK
    with contextlib.ExitStack() as stack:
        if demo:
            if not demo_db.exists():
                raise ConfigError(
                    f"run {r['run_id']} imported into the demo sandbox, whose records "
                    f"({demo_db}) are gone: there is nothing left to undo"
                )
            from .sandbox import Sandbox, SandboxConfig

            target = stack.enter_context(Sandbox(SandboxConfig(db=demo_db))).url
        archived = _undo_at(plan, target, api_version, local_token=SANDBOX_TOKEN)
    click.echo(
        f"Archived {archived} {r['object_type']} created by run {r['run_id']}"
        + (f"; reverted {len(plan.links)} links." if plan.links else ".")
    )
    return EXIT_OK


def _undo_at(plan: UndoPlan, target: str, api_version: str, *, local_token: str) -> int:
    r = plan.run
    local = urlsplit(target).hostname in ("127.0.0.1", "localhost", "::1")
    token = os.environ.get(TOKEN_ENV, "") or (local_token if local else "")
    client = HubSpotClient(
        token=token,
        base_url=target,
        api_version=api_version,
        # A sandbox on this machine answers at once or is gone: no minute of retries.
        retry=RetryPolicy(max_attempts=1) if local else None,
    )
    try:
        archived = undo_run(plan, client)
    except HubSpotUnavailable as exc:
        if not local:
            raise
        raise ConfigError(
            f"run {r['run_id']} imported into the sandbox at {target}, which is no longer "
            f"running ({exc}). A sandbox keeps its records only while it runs (or in its "
            "--db file): start it again with `hubspot-import sandbox --db FILE` and give "
            "--base-url, or there is nothing left to undo."
        ) from exc
    finally:
        client.close()
    return archived


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly). Whatever the exit,
    --summary-json is written and the error line also goes to --log-file."""
    use_system_allocator()
    args = list(argv) if argv is not None else sys.argv[1:]
    restore = _shutdown.install()
    _SUMMARY_WRITTEN.clear()
    started = dt.datetime.now(dt.UTC)
    try:
        code, error = _main(args)
    finally:
        restore()
    summary = _option_value(args, "--summary-json")
    if summary and Path(summary) not in _SUMMARY_WRITTEN:
        with contextlib.suppress(OSError):
            _write_json(
                Path(summary),
                {
                    "run_id": None,
                    "exit_code": code,
                    "error": error,
                    "started": started.isoformat(),
                    "finished": dt.datetime.now(dt.UTC).isoformat(),
                },
            )
    log_file = _option_value(args, "--log-file")
    if error and log_file:
        with contextlib.suppress(OSError), Path(log_file).open("a", encoding="utf-8") as fh:
            stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
            fh.write(f"{stamp} ERROR {error}\n")
    return code


def _main(args: list[str]) -> tuple[int, str | None]:
    """The exit code, and the error said to the user (None for a run that got to its end)."""

    def said(code: int, message: str) -> tuple[int, str]:
        click.echo(message, err=True)
        return code, message.removeprefix("hubspot-import: ")

    try:
        rv = cli.main(args=args, prog_name="hubspot-import", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code), None
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR, exc.format_message()
    except click.Abort:
        return said(EXIT_ERROR, "hubspot-import: interrupted")
    except _shutdown.Stop as exc:
        # Before the upload (or in a lookup before it): nothing new was sent.
        name = _shutdown.signal_name(exc.signum)
        return said(EXIT_SIGNAL_BASE + exc.signum, f"hubspot-import: stopped by {name}")
    except LockHeld as exc:
        return said(EXIT_LOCKED, f"hubspot-import: {exc}")
    except (ConfigError, InputFileError, AuthError) as exc:
        return said(EXIT_ERROR, f"hubspot-import: error: {exc}")
    except HubSpotImportError as exc:
        return said(EXIT_ROWS, f"hubspot-import: error: {exc}")
    except Exception as exc:
        where = _crash_report(args, exc)
        return said(
            EXIT_INTERNAL,
            f"hubspot-import: internal error ({type(exc).__name__}: {exc}). This is a bug in "
            f"hubspot-import, not in your file; the details are in {where}.",
        )
    return (rv if isinstance(rv, int) else EXIT_OK), None


def _option_value(args: list[str], name: str) -> str | None:
    """An option's value from the command line as typed (--name VALUE or --name=VALUE)."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def _crash_report(args: list[str], exc: Exception) -> str:
    """The traceback, for whoever fixes the bug: appended to --log-file, else a file of its
    own in the state folder (never the token: it is not in a traceback's text)."""
    text = "".join(traceback.format_exception(exc))
    log_file = _option_value(args, "--log-file")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = Path(log_file) if log_file else default_state_dir() / f"crash-{stamp}.txt"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp} internal error in: hubspot-import {' '.join(args)}\n{text}")
    except OSError:
        return "(no file could be written; run again with --verbose)"
    return str(target)


def entry_point() -> None:
    sys.exit(main())
