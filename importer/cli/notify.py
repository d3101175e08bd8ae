"""`--notify URL` and a mapping's `notify:`: at the end of every run, failed or not, a short
text and the summary JSON are posted to each webhook, as `{"text": ..., "summary": ...}`
(Slack's and Teams' incoming webhooks show the text as it is).

A webhook URL is a secret (whoever has it can post to the channel): the log names its host
only. A notification that fails (refused, timed out, an HTTP error) is logged as a warning
and never changes the exit code. The token is never in what is posted: nothing posted holds
it, and the body is searched for it before it leaves all the same."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import requests

from ..core import shutdown
from ..core.errors import (
    AuthError,
    ConfigError,
    HubSpotError,
    HubSpotImportError,
    InputFileError,
    LockHeld,
)
from ..mapping.model import Mapping
from ..mapping.webhooks import webhook_host
from .common import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_LOCKED,
    EXIT_ROWS,
    EXIT_SIGNAL_BASE,
    _counts_text,
)
from .unchanged import SKIPPED_UNCHANGED, unchanged_text

if TYPE_CHECKING:
    from ..plans.file import PlanFile

__all__ = [
    "NOTIFY_TIMEOUT",
    "Notifier",
    "failure",
    "mapping_webhooks",
    "summary_text",
    "what_is_read",
]

log = logging.getLogger("importer")

OUT_OF_MEMORY = (
    "ran out of memory (the machine, or a limit set on this process such as ulimit -v or a "
    "container's memory limit, allows too little for this input). Give it more memory, or "
    "split the input. If records were sent before, `hubspot-import runs` lists the run and "
    "`hubspot-import show RUN --out FILE.xlsx` writes its workbook."
)
NOTIFY_TIMEOUT = 10.0
"""Seconds to wait for a webhook to connect, and again for its answer."""
RETRY_PAUSE = 1.0
"""Seconds before the one retry of a webhook that was unreachable or answered 429 or 5xx."""
TEXT_ERROR_CHARS = 300
"""An error is cut to its first line, and to this many characters, in the text (the summary
holds it whole)."""
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def failure(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the error `main` gives a command that raised `exc`; None for what
    ends no run (SystemExit)."""
    signalled = exc.__cause__ or exc.__context__
    if isinstance(exc, click.Abort) and isinstance(signalled, shutdown.Stop):
        exc = signalled  # click's Abort for a signal's KeyboardInterrupt
    if isinstance(exc, shutdown.Stop):
        return EXIT_SIGNAL_BASE + exc.signum, f"stopped by {shutdown.signal_name(exc.signum)}"
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return EXIT_ERROR, "interrupted"
    if isinstance(exc, LockHeld):
        return EXIT_LOCKED, str(exc)
    if isinstance(exc, ConfigError | InputFileError | AuthError) or _redirect(exc):
        return EXIT_ERROR, f"error: {exc}"
    if isinstance(exc, HubSpotImportError):
        return EXIT_ROWS, f"error: {exc}"
    if isinstance(exc, click.ClickException):
        return EXIT_ERROR, exc.format_message()
    if isinstance(exc, MemoryError):  # not a bug: too little memory for this input
        return EXIT_ERROR, f"error: {OUT_OF_MEMORY}"
    if isinstance(exc, Exception):
        return EXIT_INTERNAL, (
            f"internal error ({type(exc).__name__}: {exc}): a bug in hubspot-import; the "
            "details are in the log file or a crash report"
        )
    return None


def _redirect(exc: BaseException) -> bool:
    """Whether `exc` is a redirect HubSpot's API never answers: --base-url is wrong (no
    request that changes records is sent after one)."""
    return isinstance(exc, HubSpotError) and 300 <= (exc.status or 0) < 400


def mapping_webhooks(read: Mapping | PlanFile, *, rehearsal: bool) -> tuple[str, ...]:
    """The webhooks the mapping (or each mapping of the plan) names in `notify:`; none for a
    rehearsal (a check, a dry run, a run against the demo sandbox), which tells --notify's
    alone (said in the log)."""
    mappings = [read] if isinstance(read, Mapping) else [step.mapping for step in read.steps]
    named = tuple(dict.fromkeys(url for m in mappings for url in m.notify))
    if named and rehearsal:
        log.info(
            "the mapping's notify: is told of imports, not of a check, a dry run or a run "
            "against the demo sandbox: give --notify URL to be told of this one"
        )
        return ()
    return named


def what_is_read(input_file: Path | None, mapping_file: Path | None, plan_file: Path | None) -> str:
    """`products.csv with products.yaml` or `plan shop.yaml`: what a run reads, for a
    notification with no summary to say it."""
    if plan_file is not None:
        return f"plan {plan_file.name}"
    return f"{Path(input_file or '?').name} with {Path(mapping_file or '?').name}"


class Notifier:
    """The webhooks a run tells of its end, and what it tells them."""

    def __init__(self, urls: Iterable[str], *, what: str) -> None:
        """`urls`: the command line's; `what`: what the run reads, for a text with no
        summary to say it (`products.csv with products.yaml`, `plan shop.yaml`)."""
        self.urls: list[str] = []
        self.what = what
        self.token = ""
        """Searched for in every body, and left out, should anything ever hold it."""
        self.summary: dict[str, Any] | None = None
        """What to post when the run ends without an error; set by the run."""
        self.started = dt.datetime.now(dt.UTC)
        self.add(urls)

    def add(self, urls: Iterable[str]) -> None:
        """More webhooks (a mapping's `notify:`); each once, an unencrypted one said."""
        for url in urls:
            if url in self.urls:
                continue
            self.urls.append(url)
            if url.lower().startswith("http:") and urlsplit(url).hostname not in _LOOPBACK:
                log.warning(
                    "the webhook at %s is http, not https: its URL and the summary travel "
                    "unencrypted",
                    webhook_host(url),
                )

    @contextlib.contextmanager
    def told(self) -> Iterator[None]:
        """Tell the webhooks how what runs inside ended: `summary` when it returns (nothing
        when it was not set), the error and its exit code when it raises."""
        try:
            yield
        except BaseException as exc:
            self.failed(exc)
            raise
        if self.summary is not None:
            self.post(summary_text(self.summary, self.what), self.summary)

    def failed(self, exc: BaseException) -> None:
        """Tell the webhooks the run failed: the summary `main` writes for it, and why."""
        said = failure(exc)
        if said is None or not self.urls:
            return
        code, error = said
        summary = {
            "run_id": None,
            "exit_code": code,
            "error": error,
            "started": self.started.isoformat(),
            "finished": dt.datetime.now(dt.UTC).isoformat(),
        }
        self.post(summary_text(summary, self.what), summary)

    def post(self, text: str, summary: dict[str, Any]) -> None:
        """POST `{"text", "summary"}` to every webhook; a failure is logged, never raised. A
        signal meanwhile is kept for the run to log (`shutdown.deferred`)."""
        if not self.urls:
            return
        body = json.dumps({"text": text, "summary": summary}, default=str)
        if self.token:
            body = body.replace(self.token, "[token]")
        with shutdown.deferred(), requests.Session() as session:
            for url in self.urls:
                try:
                    problem = _post(session, url, body.encode())
                except Exception as exc:  # whatever it is, the run's exit code stands
                    problem = type(exc).__name__
                if problem is None:
                    log.info("notified the webhook at %s", webhook_host(url))
                else:
                    log.warning(
                        "could not notify the webhook at %s (%s); the exit code is the run's",
                        webhook_host(url),
                        problem,
                    )


def _post(session: requests.Session, url: str, body: bytes) -> str | None:
    """POST `body` to `url`, once more if it was unreachable or answered 429 or 5xx; None
    when it took it, else what went wrong (never the exception's text: it quotes the URL)."""
    problem = ""
    for attempt in (1, 2):
        if attempt == 2:
            time.sleep(RETRY_PAUSE)
        try:
            reply = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=NOTIFY_TIMEOUT,
                allow_redirects=False,
            )
        except requests.Timeout:
            problem = f"no answer within {NOTIFY_TIMEOUT:g} s"
            continue
        except requests.ConnectionError:
            problem = "could not connect"
            continue
        except requests.RequestException as exc:
            return type(exc).__name__
        if 200 <= reply.status_code < 300:
            return None
        problem = f"HTTP {reply.status_code}"
        if reply.status_code != 429 and reply.status_code < 500:
            break
    return problem


def summary_text(summary: dict[str, Any], what: str) -> str:
    """One or two lines for people: what ran, its rows by status (or its error) and exit
    code; then why it stopped and where its results are."""
    code = summary.get("exit_code")
    check = "check, " if "plan only" in str(summary.get("mode") or "") else ""
    first = f"hubspot-import: {_outcome(summary, what)} ({check}exit {code})."
    later = []
    stopped = summary.get("stopped_by")
    if stopped:
        later.append(f"Stopped: {_first_line(str(stopped))}.")
    if summary.get("workbook"):
        later.append(f"Results: {summary['workbook']}")
    return first + ("\n" + " ".join(later) if later else "")


def _outcome(summary: dict[str, Any], what: str) -> str:
    """`products.csv -> products: 320 rows: 318 created, 2 invalid`, a plan's steps so, a
    feed unchanged, or an error."""
    since = summary.get("unchanged_since")
    unchanged = (
        unchanged_text(since)
        if summary.get("status") == SKIPPED_UNCHANGED and isinstance(since, dict)
        else None
    )
    if unchanged is not None and "steps" in summary:
        return f"plan {Path(str(summary.get('plan'))).name}: {unchanged}"
    if "steps" in summary:
        steps = "; ".join(
            f"{s['step']} ({s['object_type']}) {s['rows']} rows: {_counts_text(s['counts'])}"
            for s in summary["steps"]
        )
        return f"plan {Path(str(summary.get('plan'))).name}: {steps or 'no steps run'}"
    if "counts" not in summary:
        return f"{what}: {_first_line(str(summary.get('error')))}"
    sheet = f" (sheet {summary['sheet']})" if summary.get("sheet") else ""
    source = f"{Path(str(summary.get('input_file'))).name}{sheet} -> {summary.get('object_type')}"
    if unchanged is not None:
        return f"{source}: {unchanged}"
    return f"{source}: {summary.get('rows')} rows: {_counts_text(summary['counts'])}"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= TEXT_ERROR_CHARS else line[: TEXT_ERROR_CHARS - 3] + "..."
