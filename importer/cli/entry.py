"""`main`: every exit code, the summary file and the log line, whatever happens."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import click

from ..core import shutdown
from ..core.errors import HubSpotImportError, StateUnwritable
from ..core.private_files import open_private
from ..core.redact import forget_secrets, redact, redacted_logs
from ..state.paths import default_state_dir
from .common import (
    _SUMMARY_WRITTEN,
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_OK,
    _write_json,
    cli,
)
from .notify import failure


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly). Whatever the exit,
    --summary-json is written and the error line also goes to --log-file."""
    args = list(argv) if argv is not None else sys.argv[1:]
    # What the tool writes (journals, logs, workbooks, summaries, crash reports) holds
    # customer data: readable by its owner alone, whatever umask the scheduler left.
    umask = os.umask(0o077)
    try:
        return _main_writing_privately(args)
    finally:
        os.umask(umask)


def _main_writing_privately(args: list[str]) -> int:
    """`main`, once the umask keeps what it writes to its owner."""
    restore = shutdown.install()
    _SUMMARY_WRITTEN.clear()
    forget_secrets()  # each command keeps the secrets it is given (tests run many in one process)
    started = dt.datetime.now(dt.UTC)
    try:
        with redacted_logs():
            said_too: dict[str, object] = {}
            code, error = _main(args, said_too)
    finally:
        restore()
    error = redact(error) if error else error
    summary = _option_value(args, "--summary-json")
    if summary and Path(summary) not in _SUMMARY_WRITTEN:
        with contextlib.suppress(OSError, HubSpotImportError):  # a path refused is left alone
            _write_json(
                Path(summary),
                {
                    "run_id": None,
                    "exit_code": code,
                    "error": error,
                    "started": started.isoformat(),
                    "finished": dt.datetime.now(dt.UTC).isoformat(),
                    **said_too,
                },
            )
    log_file = _option_value(args, "--log-file")
    if error and log_file:
        with contextlib.suppress(OSError), open_private(log_file) as fh:
            stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
            fh.write(f"{stamp} ERROR {error}\n")
    return code


def _main(args: list[str], said_too: dict[str, object]) -> tuple[int, str | None]:
    """The exit code, and the error said to the user (None for a run that got to its end);
    what the error adds to the summary goes in `said_too` (a header-only feed's `missing`:
    what its mapping's missing_rows: did)."""

    def said(code: int, message: str) -> tuple[int, str]:
        message = redact(message)
        click.echo(message, err=True)
        return code, message.removeprefix("hubspot-import: ")

    try:
        shutdown.stop_wait()  # a bad HUBSPOT_IMPORT_STOP_WAIT is said now, not at a signal
        rv = cli.main(args=args, prog_name="hubspot-import", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code), None
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)
        click.echo(redact(shown.getvalue()), err=True, nl=False)
        return EXIT_ERROR, exc.format_message()
    except (click.Abort, shutdown.Stop, HubSpotImportError, MemoryError) as exc:
        # One reading of what ended a command, shared with the notification (`failure`). Not
        # enough memory is no bug: this machine, or a limit set on the process, allows too
        # little for the input.
        code, message = failure(exc) or (EXIT_ERROR, "interrupted")
        # stages.empty_feed.NoRows (not imported: it loads pandas, and help must answer at once)
        missing = getattr(exc, "missing", None)
        if isinstance(missing, dict):
            said_too["missing"] = missing
        if isinstance(exc, StateUnwritable) and exc.run_id is not None:
            said_too["run_id"] = exc.run_id  # the run the full journal stopped
        return said(code, f"hubspot-import: {message}")
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
    own in the state folder (--state-dir's, else the user's), readable by its owner alone
    (a traceback may quote rows; never the token: it is checked before any request)."""
    text = redact("".join(traceback.format_exception(exc)))
    log_file = _option_value(args, "--log-file")
    state_dir = _option_value(args, "--state-dir")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(state_dir) if state_dir else default_state_dir()
    target = Path(log_file) if log_file else folder / f"crash-{stamp}.txt"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_private(target) as fh:  # a log file an older version left 0644 too
            fh.write(f"{stamp} internal error in: hubspot-import {_shown_args(args)}\n{text}")
    except OSError:
        return "(no file could be written; run again with --verbose)"
    return str(target)


def _shown_args(args: list[str]) -> str:
    """The command line for a crash report: a webhook's URL (a secret: whoever has it can post
    to the channel) named by its host alone, and no secret kept."""
    shown: list[str] = []
    for arg in args:
        if (shown and shown[-1] == "--notify") or arg.startswith("--notify="):
            prefix = "--notify=" if arg.startswith("--notify=") else ""
            host = urlsplit(arg.removeprefix(prefix)).hostname or "?"
            arg = f"{prefix}https://{host}/…"
        elif "://" in arg:  # an INPUT URL or a base URL: its secret query values hidden
            arg = _hidden_url(arg)
        shown.append(arg)
    return redact(" ".join(shown))


def _hidden_url(arg: str) -> str:
    """A URL on the command line as messages show it (`sig=***`); one too broken to read
    (`http://[::1/x?sig=...`) without its query and fragment."""
    from ..sheets.sources import hide_secrets

    try:
        return hide_secrets(arg)
    except ValueError:
        return arg.split("?", 1)[0].split("#", 1)[0] + "?…"


def entry_point() -> None:
    code = main()
    try:
        if sys.stdout is not None:  # None when started with no standard output at all
            sys.stdout.flush()
    except OSError:
        # The reader is gone or the disk full: the run's outcome is in its files and its
        # exit code; Python must not report the failed flush as it exits.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
