"""What every command shares: exit codes, logging, the command group, options, the target
(HubSpot or the sandbox), progress, the summary file."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from ..api.client import DEFAULT_TIMEOUT, RetryPolicy
from ..api.lookup import DEFAULT_SEARCH_SETTLE
from ..api.settings import check_base_url, check_token
from ..core.errors import AuthError, ConfigError
from ..core.hubspot import (
    API_FALLBACKS,
    API_VERSION_ENV,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    LEGACY_API,
    ApiPaths,
)
from ..core.private_files import PrivateFileHandler
from ..mapping.model import SyncMode
from ..mapping.webhooks import webhook_problem
from ..sheets.outputs import prepare_file, replaced_or_written_into
from .guard_options import GUARD_OPTIONS
from .sources import PICK_OPTION

if TYPE_CHECKING:  # rich is imported once a command runs: help and usage errors do without
    from rich.console import Console

EXIT_OK = 0  # every row created
EXIT_ROWS = 1  # the run finished, but some rows are invalid, failed, uncertain or not sent
EXIT_ERROR = 2  # configuration, input or authentication error: not everything was attempted
EXIT_LOCKED = 3  # another run holds the journal's lock: this one sent nothing
EXIT_GUARD = 3  # a guard stopped the run before it wrote anything (check: would stop it)
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
    """A console for the progress bar when standard error is a terminal, else None (and
    None when the run was started with standard error closed: sys.stderr is None)."""
    if sys.stderr is None or not sys.stderr.isatty():
        return None
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def _logging(verbose: bool, log_file: Path | None, console: Console | None) -> Iterator[None]:
    """Timestamped lines to stderr or a file; on a terminal, printed above the progress bar."""
    handler: logging.Handler
    if log_file is None and console is not None:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, log_time_format="%H:%M:%S")
    else:
        if log_file is not None:
            handler = PrivateFileHandler(log_file)  # an older 0644 log is tightened
        elif sys.stderr is None:  # started with standard error closed: no one to tell
            handler = logging.NullHandler()
        else:
            handler = logging.StreamHandler()
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


def base_url_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--base-url checked as it is read: a mistake is a usage error (exit 2), not a failed
    request."""
    try:
        return check_base_url(value) if value is not None else None
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _api_version(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None  # 2026-09, falling back where HubSpot does not serve it
    try:
        return ApiPaths(value).version
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


API_VERSION_OPTION = click.option(
    "--api-version",
    envvar=API_VERSION_ENV,
    default=None,
    callback=_api_version,
    help=f"Pin HubSpot's API version: a date version (YYYY-MM) for the date-based paths, or "
    f"'{LEGACY_API}' for the numbered /crm/v3 and /crm/v4 paths (env {API_VERSION_ENV}). "
    f"Default: {DEFAULT_API_VERSION}, then {', '.join(API_FALLBACKS)} where HubSpot does not "
    "serve it at the base URL.",
)
TARGET_OPTIONS = _options(
    click.option(
        "--base-url",
        envvar="HUBSPOT_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        callback=base_url_option,
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


def _notify_urls(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """--notify checked as it is read: each an http(s) URL, else a usage error (exit 2) that
    does not quote it (a webhook URL is a secret)."""
    for n, url in enumerate(value, start=1):
        problem = webhook_problem(url)
        if problem is not None:
            raise click.BadParameter(f"URL number {n}: {problem}", ctx, param)
    return tuple(dict.fromkeys(url.strip() for url in value))


SKIP_UNCHANGED_OPTION = click.option(
    "--skip-unchanged",
    is_flag=True,
    help="End at once (exit 0, no workbook) when the last run in the journal imported this same "
    "INPUT (the same file, URL or glob, and the same size and SHA-256) with this mapping and "
    "these options, finished, with no row left failed, incomplete, not sent or uncertain. With "
    "--plan: when the plan's last run did so for every step, with the same plan file.",
)


def max_attempts_option(help: str) -> Callable[[F], F]:
    """`--max-attempts`: how many times a request is tried (`help` says of which)."""
    return click.option(
        "--max-attempts",
        type=click.IntRange(1, 20),
        default=RetryPolicy().max_attempts,
        show_default=True,
        help=help,
    )


def _state_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """--state-dir as a path; an empty value (`--state-dir "$STATE"` with STATE unset) is a
    usage error, never the working folder: the journals would land wherever the job runs."""
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter(
            "is empty: give the folder of the run journals (or leave the option out for the "
            "user's data directory)"
        )
    return Path(value)


IMPORT_OPTIONS = _options(
    # A path, a glob or a URL: opened once the command runs (cli/sources.py).
    click.argument("input_file", metavar="INPUT", required=False),
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
    click.option(
        "--sheet",
        help="Excel sheet name (or 1-based number). Default: the first visible sheet.",
    ),
    click.option(
        "--encoding",
        help="CSV text encoding, e.g. cp1252 or latin-1. Default: UTF-8 (with or without BOM).",
    ),
    click.option(
        "--header-row",
        type=click.IntRange(1),
        metavar="N",
        help="The row that holds the column names (1 is the first row); the rows above it are "
        "ignored. Overrides the mapping's header_row:. Default: found among the first rows, "
        "titles and notes above it skipped (and said).",
    ),
    click.option(
        "--out",
        type=click.Path(path_type=Path),
        help="Results workbook path. Default: <input>-results-<timestamp>.xlsx beside the input "
        "(in the working folder for a URL).",
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
        type=click.Path(),
        callback=_state_dir,
        help="Folder for the run journal (one SQLite file per portal and object "
        "type). Default: the user's data directory.",
    ),
    click.option(
        "--portal-id",
        type=click.IntRange(1),
        help="HubSpot portal (account) id: names the portal's journal and the links to records "
        "in the workbook without asking HubSpot (refused where HubSpot has named another "
        "portal for this token). Default: asked of HubSpot once and remembered.",
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
        "--notify",
        metavar="URL",
        multiple=True,
        callback=_notify_urls,
        help="At the end of the run, failed or not, POST a short text and the summary JSON to "
        "this webhook (Slack and Teams incoming webhooks show the text); repeatable, besides the "
        "mapping's notify:. A notification that fails is logged and leaves the exit code alone.",
    ),
    max_attempts_option(
        "Attempts per request before giving up on 429s, 5xx and refused connections (waits "
        "grow exponentially, with jitter)."
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
        "--fresh",
        is_flag=True,
        help="With --sandbox: start the demo over, its sandbox's records and journals removed "
        "from the state folder first.",
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
    PICK_OPTION,
    *GUARD_OPTIONS,
    TARGET_OPTIONS,
)


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
    console = _interactive()
    stack.enter_context(_logging(verbose, log_file, console))
    token = environment_token()
    if sandbox:
        from ..sandbox import Sandbox, SandboxConfig

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


def environment_token() -> str:
    """The access token from the environment, without the spaces or line break a copy from a
    secrets file leaves around it (said, never shown); a token with such characters inside is
    a ConfigError that does not show it either (`check_token`)."""
    raw = os.environ.get(TOKEN_ENV, "")
    token = raw.strip()
    if token != raw:
        log.warning("%s has spaces or a line break around the token: they were left out", TOKEN_ENV)
    if token:
        check_token(token)
    return token


_SUMMARY_WRITTEN: set[Path] = set()
"""Summaries a command wrote itself; on any other exit `main` writes one saying why."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: the scheduler never reads half a summary, nor last night's by mistake. A
    terminal, /dev/null or a pipe is written into, never replaced; a link or another file
    that is not a plain one is a ConfigError, and left untouched."""
    text = json.dumps(data, indent=2) + "\n"
    try:
        if replaced_or_written_into(path, "--summary-json") == "into":
            with path.open("w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            _replace_with(path, text)
    except OSError as exc:  # a full disk, /dev/full: said, not a bug
        raise ConfigError(
            f"--summary-json {path} could not be written ({exc.strerror or exc}); the run's "
            "outcome is in its results workbook and its log"
        ) from exc


def _replace_with(path: Path, text: str) -> None:
    """Write `text` to a new file beside `path` and put it in its place at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _progress(console: Console | None) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal, shown once uploading starts; else a log line per tenth."""
    if console is not None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskID,
            TextColumn,
            TimeRemainingColumn,
        )

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


def _use_system_allocator() -> None:
    """Arrow allocates with the C library's malloc from here on (`use_system_allocator`):
    called where a command's work starts, as it imports pyarrow, which help and usage errors
    do without."""
    from ..core.text import use_system_allocator

    use_system_allocator()


STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(),
    callback=_state_dir,
    help="Folder of the run journals (as given to `run`). Default: the user's data directory.",
)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no rows"
