"""`run` and `check`: one sheet or a plan, reported and summarised (`report`).

The work's modules load pandas and the spreadsheet libraries: the commands import them where
their work starts, so that help, the version and usage errors answer at once."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..api.client import DEFAULT_TIMEOUT, RetryPolicy
from ..core import shutdown
from ..core.errors import ConfigError
from ..core.hubspot import MAX_ASSOCIATION_INPUTS, MAX_BATCH_INPUTS
from ..mapping.guards import Guards, Limit, RowRange
from ..mapping.model import Mapping, SyncMode
from ..sheets.outputs import distinct_outputs, prepare_file, prepare_folder
from ..stages.options import DEFAULT_CONCURRENCY, RunOptions
from ..state.paths import default_state_dir, demo_files
from . import drafting  # noqa: F401  (adds `init` to `cli`)
from .common import (
    _SUMMARY_WRITTEN,
    IMPORT_OPTIONS,
    SANDBOX_DB,
    SANDBOX_JOURNAL,
    SKIP_UNCHANGED_OPTION,
    _progress,
    _target,
    _use_system_allocator,
    cli,
    log,
)
from .notify import Notifier, mapping_webhooks, what_is_read
from .report import plan_summary_json, report_plan, report_run, run_summary_json
from .sources import input_label, input_options, local_input, reading, shown_inputs
from .unchanged import skip_if_unchanged, skip_plan_if_unchanged, write_summary

if TYPE_CHECKING:
    from rich.console import Console

    from ..plans.file import PlanFile


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
@SKIP_UNCHANGED_OPTION
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

    With --plan PLAN instead of INPUT and --mapping, imports every step of a plan file.

    Exit codes: 0 every row created, updated, unchanged or skipped; 1 some rows invalid,
    failed, incomplete, uncertain or not sent; 2 configuration, input or authentication
    error; 3 the run stopped before it wrote anything: another run holds the lock, or a
    guard (--max-invalid, --max-changed, --max-missing, --expect-rows, or the mapping's
    guards:) stopped it; 4 a bug in hubspot-import (a crash report names its file); 130 and
    143 stopped by SIGINT or SIGTERM (batches in flight settled, the workbook written).
    """
    return _execute(
        _ImportArguments(
            dry_run=dry_run,
            batch_size=batch_size,
            association_batch_size=association_batch_size,
            forget_uncertain=forget_uncertain,
            concurrency=concurrency,
            max_rps=max_rps,
            **options,
        )
    )


@cli.command()
@IMPORT_OPTIONS
def check(**options: Any) -> int:
    """Check INPUT against MAPPING and the portal without writing anything to HubSpot.

    Writes the results workbook with the plan for every row (would_create, would_update,
    unchanged, invalid and why), and says what each guard would make of the run. Exit codes:
    0 the import would be clean; 1 some rows are invalid (or uncertain); 2 configuration,
    input or authentication error; 3 a guard would stop the run before it wrote anything.
    """
    return _execute(_ImportArguments(dry_run=True, **options))


@dataclass(frozen=True, kw_only=True)
class _ImportArguments:
    """What `run` or `check` was given on the command line."""

    dry_run: bool
    input_file: str | None
    """INPUT as given: a path, a glob or a URL (opened by `input_options`)."""
    mapping_file: Path | None
    plan_file: Path | None
    sheet: str | None
    encoding: str | None
    header_row: int | None
    out: Path | None
    mode: str | None
    state_dir: Path | None
    portal_id: int | None
    no_portal_check: bool
    summary_json: Path | None
    timeout: float
    max_attempts: int
    search_settle: float
    import_again: bool
    verify: bool
    base_url: str
    api_version: str | None
    sandbox: bool
    log_file: Path | None
    verbose: bool
    batch_size: int = MAX_BATCH_INPUTS
    association_batch_size: int = MAX_ASSOCIATION_INPUTS
    forget_uncertain: bool = False
    skip_unchanged: bool = False
    pick: str = "name"
    notify: tuple[str, ...] = ()
    fresh: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    max_rps: float | None = None
    max_invalid: Limit | None = None
    max_changed: Limit | None = None
    max_missing: Limit | None = None
    expect_rows: RowRange | None = None


def _execute(args: _ImportArguments) -> int:
    """Run one sheet or a plan as `run` or `check` was told to, report it, write its
    summary and tell the webhooks (--notify, the mapping's notify:) how it ended, whatever
    the exit after the arguments were checked; the exit code."""
    _check_arguments(args)
    state_dir, sandbox_db = _prepare_files(args)
    notifier = Notifier(
        args.notify,
        what=what_is_read(input_label(args.input_file), args.mapping_file, args.plan_file),
    )
    with contextlib.ExitStack() as stack:
        with notifier.told():  # a target that cannot be set up (no token) is told too
            console, base_url, token = stack.enter_context(
                _target(
                    stack,
                    sandbox=args.sandbox,
                    base_url=args.base_url,
                    log_file=args.log_file,
                    verbose=args.verbose,
                    sandbox_db=sandbox_db,
                )
            )
        notifier.token = token
        stack.callback(_log_late_signal)  # one that came while the webhooks were told
        stack.enter_context(notifier.told())  # told before the log closes
        stack.enter_context(reading(state_dir, args.pick))
        read = _read_mappings(args)
        notifier.add(mapping_webhooks(read, rehearsal=args.dry_run or args.sandbox))
        _use_system_allocator()
        options = input_options(
            _run_options(args, token=token, base_url=base_url, state_dir=state_dir),
            args.input_file,
        )
        if args.plan_file is not None:
            plan = read if args.skip_unchanged and not isinstance(read, Mapping) else None
            code, notifier.summary = _run_plan(
                args.plan_file, options, console, args.summary_json, plan
            )
        else:
            unchanged = read if args.skip_unchanged and isinstance(read, Mapping) else None
            code, notifier.summary = _run_sheet(options, console, args.summary_json, unchanged)
        _log_late_signal()
        if args.sandbox:
            click.echo(
                f"The demo sandbox keeps its records and journals in {state_dir}, as a nightly "
                "run keeps its journal: run again with --fresh to start over."
            )
        return code


def _read_mappings(args: _ImportArguments) -> Mapping | PlanFile:
    """The mapping (or the plan file and its mappings); its MappingError when it has a
    mistake, raised before the libraries the work needs load: a typo is answered at once.
    The run reads them again (they are small)."""
    if args.plan_file is not None:
        from ..plans.file import load_plan

        return load_plan(args.plan_file)
    from ..mapping.file import load_mapping

    assert args.mapping_file is not None, "_check_arguments asks for it"
    return load_mapping(args.mapping_file)


def _check_arguments(args: _ImportArguments) -> None:
    """Raise the ConfigError for arguments that do not go together, or a missing one."""
    if args.plan_file is not None and (
        args.mapping_file is not None or args.input_file is not None
    ):
        raise ConfigError(
            "--plan names the mappings and inputs itself: give --plan alone, or --mapping "
            "and INPUT without it"
        )
    if args.plan_file is not None and args.sheet is not None:
        raise ConfigError("--sheet is for one sheet: in a plan, each step names its own `sheet:`")
    if args.plan_file is None and (args.mapping_file is None or args.input_file is None):
        missing = "--mapping" if args.mapping_file is None else "INPUT"
        raise ConfigError(
            f"{missing} is missing: give --mapping MAPPING and INPUT (the spreadsheet), or "
            "--plan PLAN"
        )
    if args.dry_run and args.forget_uncertain:
        raise ConfigError(
            "--dry-run changes nothing, so it cannot forget uncertain rows: run without "
            "--dry-run to forget them (or without --forget-uncertain to see the plan)"
        )


def _prepare_files(args: _ImportArguments) -> tuple[Path | None, Path | None]:
    """Check the summary file can be written (and is not an input), and for the demo sandbox
    ready the state folder: (the state folder, the sandbox's records file or None)."""
    given = (local_input(args.input_file), args.mapping_file, args.plan_file)
    reads = tuple(p for p in given if p is not None)
    if args.summary_json is not None:
        try:
            distinct_outputs(
                {
                    "--summary-json": args.summary_json,
                    "--out": args.out,
                    "--log-file": args.log_file,
                }
            )
            prepare_file(args.summary_json, "--summary-json", keep=reads, replaced=True)
        except ConfigError:
            _SUMMARY_WRITTEN.add(args.summary_json)  # refused: `main` leaves it untouched too
            raise
    distinct_outputs({"--out": args.out, "--log-file": args.log_file})
    if args.log_file is not None:
        prepare_file(args.log_file, "--log-file", keep=reads)  # appended to: never an input
    if args.fresh and not args.sandbox:
        raise ConfigError(
            "--fresh starts the demo sandbox over (its records and journals): it goes with "
            "--sandbox; against HubSpot, a new --state-dir starts a journal over"
        )
    if not args.sandbox:
        return args.state_dir, None
    # The demo keeps its sandbox's records beside its journal, so a second run tells the
    # truth (unchanged) and runs, show and undo work on it.
    state_dir = prepare_folder(args.state_dir or default_state_dir(), "--state-dir")
    if args.fresh:
        gone = demo_files(state_dir, SANDBOX_DB, SANDBOX_JOURNAL)
        for path in gone:
            path.unlink(missing_ok=True)
        log.info("--fresh: removed the demo sandbox's %d files from %s", len(gone), state_dir)
    return state_dir, state_dir / SANDBOX_DB


def _run_options(
    args: _ImportArguments, *, token: str, base_url: str, state_dir: Path | None
) -> RunOptions:
    """The options of the run: the arguments, with the target's base URL and token."""
    return RunOptions(
        mapping_file=args.mapping_file,
        token=token,
        sheet=args.sheet,
        encoding=args.encoding,
        header_row=args.header_row,
        out=args.out,
        base_url=base_url,
        journal_base=SANDBOX_JOURNAL if args.sandbox else None,
        api_version=args.api_version,
        search_settle=args.search_settle,
        import_again=args.import_again,
        verify=args.verify,
        batch_size=args.batch_size,
        association_batch_size=args.association_batch_size,
        mode=SyncMode(args.mode) if args.mode else None,
        state_dir=state_dir,
        forget_uncertain=args.forget_uncertain,
        timeout=(DEFAULT_TIMEOUT[0], args.timeout),
        retry=RetryPolicy(max_attempts=args.max_attempts),
        portal_id=args.portal_id,
        portal_check=not args.no_portal_check,
        dry_run=args.dry_run,
        concurrency=args.concurrency,
        max_rps=args.max_rps,
        guards=Guards(
            max_invalid=args.max_invalid,
            max_missing=args.max_missing,
            max_changed=args.max_changed,
            expect_rows=args.expect_rows,
        ),
    )


def _run_sheet(
    options: RunOptions,
    console: Console | None,
    summary_json: Path | None,
    unchanged: Mapping | None = None,
) -> tuple[int, dict[str, Any]]:
    """Import one sheet, then report it and write its summary; the exit code and the summary.
    With `unchanged` (the mapping, for --skip-unchanged), a feed the last run imported with
    nothing left to do ends the run before the sheet is read."""
    from ..stages.run import run_import

    feed = None
    if unchanged is not None:
        feed, skipped = skip_if_unchanged(options, unchanged, summary_json)
        if skipped is not None:
            return skipped
    with _progress(console) as progress:
        result = run_import(options, progress=progress, feed=feed)
    with shutdown.deferred():  # what was done is reported, whatever arrives meanwhile
        code = report_run(result)
        summary = shown_inputs(run_summary_json(result.summary, code))
        write_summary(summary_json, summary)
    return code, summary


def _run_plan(
    plan_file: Path,
    options: RunOptions,
    console: Console | None,
    summary_json: Path | None,
    unchanged: PlanFile | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run a plan's steps, then report them and write the plan's summary; the exit code and
    the summary. With `unchanged` (the plan as read, for --skip-unchanged), a plan whose last
    run imported every step's feed as it is now, with nothing left to do, ends before any
    sheet is read."""
    if unchanged is not None:
        skipped = skip_plan_if_unchanged(unchanged, options, summary_json)
        if skipped is not None:
            return skipped
    from ..plans.runner import run_plan

    with _progress(console) as progress:
        planned = run_plan(plan_file, options, out=options.out, progress=lambda _: progress)
    with shutdown.deferred():  # what was done is reported, whatever arrives meanwhile
        code = report_plan(planned)
        summary = shown_inputs(plan_summary_json(plan_file, planned, code))
        write_summary(summary_json, summary)
    return code, summary


def _log_late_signal() -> None:
    """Log a signal that arrived while the results were written (it was held until then)."""
    late = shutdown.take_pending()
    if late is not None:
        log.warning(
            "%s arrived while the results were written; the run had finished",
            shutdown.signal_name(late),
        )
