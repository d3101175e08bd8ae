"""--notify and a mapping's notify: the end of every run, failed or not, is posted to each
webhook as {"text", "summary"}; a webhook that fails is logged by its host alone and never
changes the exit code; the token is in nothing posted.

The webhook is a real HTTP server on 127.0.0.1, started by each test, that records every byte
it receives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from importer.cli import notify
from importer.sandbox import Sandbox
from importer.state.journal import Journal, journal_path

from .conftest import SKU_NAME_PRICE, TOKEN, CliRun, write_csv, write_mapping

Runner = Callable[..., CliRun]

MAPPING = SKU_NAME_PRICE
SECRET_PATH = "/services/T000/B000/webhook-secret-part"


@dataclass
class Received:
    """One request as the webhook received it: every byte of it."""

    method: str
    path: str
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.raw.split(b"\r\n\r\n", 1)[1])
        return found


@dataclass
class Webhook:
    """A webhook on 127.0.0.1 answering `status` (after `delay` seconds)."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"


@pytest.fixture(name="webhook")
def webhook_fixture() -> Iterator[Webhook]:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            head = f"{self.requestline}\r\n{self.headers}".encode("latin-1")
            body = self.rfile.read(length)
            hook.received.append(Received("POST", self.path, head + b"\r\n\r\n" + body))
            time.sleep(hook.delay)
            self.send_response(hook.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook = Webhook(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


def _args(tmp: Path, box: Sandbox, data: Path, *extra: Any, mapping: str = MAPPING) -> list[Any]:
    return [
        "run", "-m", write_mapping(tmp / "m.yaml", mapping), data, "--base-url", box.url,
        "--state-dir", tmp / "state", "--out", tmp / "out.xlsx",
        "--summary-json", tmp / "summary.json", *extra,
    ]  # fmt: skip


def _catalogue(tmp: Path, name: str = "c.csv", n: int = 2, *, invalid: bool = True) -> Path:
    rows = [["SKU", "Name", "Price"]] + [[f"{i:05d}", f"P {i}", f"{i}.5"] for i in range(n)]
    if invalid:
        rows.append(["99999", "Broken", "not a price"])
    return write_csv(tmp / name, rows)


def _no_secrets(hook: Webhook, run: CliRun, log: Path | None = None) -> None:
    """The token in no byte posted; the webhook's secret path in nothing the user sees."""
    for got in hook.received:
        assert TOKEN.encode() not in got.raw
    said = run.out + run.err + (log.read_text() if log is not None and log.exists() else "")
    assert SECRET_PATH not in said
    assert "webhook-secret-part" not in said


def test_a_run_posts_its_text_and_its_summary(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    log = tmp_path / "run.log"
    result = run_cli(
        *_args(tmp_path, sandbox, _catalogue(tmp_path), "--notify", webhook.url),
        "--log-file",
        log,
    )
    assert result.code == 1, result.err
    (posted,) = webhook.received
    assert posted.path == SECRET_PATH
    assert b"Content-Type: application/json" in posted.raw
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert posted.body["summary"] == summary
    assert posted.body["text"] == (
        "hubspot-import: c.csv -> products: 3 rows: 2 created, 1 invalid (exit 1).\n"
        f"Results: {tmp_path / 'out.xlsx'}"
    )
    assert f"notified the webhook at 127.0.0.1:{webhook.server.server_address[1]}" in (
        log.read_text()
    )
    _no_secrets(webhook, result, log)


def test_the_mappings_webhooks_are_told_too_each_once(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    mapping = MAPPING + f"notify: [{webhook.url}]\n"
    data = _catalogue(tmp_path, invalid=False)
    result = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url, mapping=mapping))
    assert result.code == 0, result.err
    assert len(webhook.received) == 1  # the same URL twice is told once
    second = run_cli(*_args(tmp_path, sandbox, data, mapping=mapping))
    assert second.code == 0
    assert len(webhook.received) == 2
    text = webhook.received[1].body["text"]
    assert text.startswith("hubspot-import: c.csv -> products: 2 rows: 2 unchanged (exit 0).")


def test_a_check_tells_the_command_lines_webhooks_only(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    mapping = MAPPING + f"notify: {webhook.url}\n"
    args = _args(tmp_path, sandbox, _catalogue(tmp_path), mapping=mapping)
    args[0] = "check"
    assert run_cli(*args).code == 1
    assert webhook.received == []  # a rehearsal does not tell the mapping's channel
    assert run_cli(*args, "--notify", webhook.url).code == 1
    (posted,) = webhook.received
    assert posted.body["text"].startswith(
        "hubspot-import: c.csv -> products: 3 rows: 1 invalid, 2 would_create (check, exit 1)."
    )


def test_a_failed_run_is_told_with_the_summary_main_writes(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    result = run_cli(*_args(tmp_path, sandbox, tmp_path / "missing.csv", "--notify", webhook.url))
    assert result.code == 2
    (posted,) = webhook.received
    summary = json.loads((tmp_path / "summary.json").read_text())
    told = posted.body["summary"]
    assert told["exit_code"] == summary["exit_code"] == 2
    assert told["error"] == summary["error"]
    assert told["error"].startswith("error: ")
    assert "missing.csv: no such file" in told["error"]
    assert told["run_id"] is None
    assert posted.body["text"] == (
        f"hubspot-import: missing.csv with m.yaml: {told['error']} (exit 2)."
    )
    _no_secrets(webhook, result)


def test_a_broken_mapping_and_a_missing_token_are_told(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _catalogue(tmp_path)
    broken = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url, mapping="columns:"))
    assert broken.code == 2
    assert "mistake" in webhook.received[0].body["summary"]["error"]
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    no_token = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url))
    assert no_token.code == 2
    assert "no access token" in webhook.received[1].body["text"]


def test_a_held_lock_is_told_with_exit_3(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    state = tmp_path / "state"
    holder = Journal(journal_path(state, sandbox.url, "products", sandbox.portal.portal_id))
    holder.lock()
    try:
        result = run_cli(*_args(tmp_path, sandbox, _catalogue(tmp_path), "--notify", webhook.url))
    finally:
        holder.close()
    assert result.code == 3
    (posted,) = webhook.received
    assert posted.body["summary"]["exit_code"] == 3
    assert "another import is running" in posted.body["text"]


def test_a_usage_error_tells_nobody(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps: []\n")
    args = _args(tmp_path, sandbox, _catalogue(tmp_path), "--notify", webhook.url)
    result = run_cli(*args, "--plan", plan)
    assert result.code == 2
    assert "--plan names the mappings and inputs itself" in result.err
    assert webhook.received == []


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://files.example.com/hook-secret", "must be an http(s) URL"),
        ("hooks.example.com/hook-secret", "has no scheme"),
        ("https:///hook-secret", "names no host"),
    ],
)
def test_a_webhook_that_is_not_http_is_a_usage_error_that_does_not_quote_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, url: str, said: str
) -> None:
    result = run_cli(*_args(tmp_path, sandbox, _catalogue(tmp_path), "--notify", url))
    assert result.code == 2
    assert said in result.err
    assert "hook-secret" not in result.err
    assert sandbox.received == []
    mapping = MAPPING + f"notify: [{json.dumps(url)}]\n"
    in_mapping = run_cli(*_args(tmp_path, sandbox, _catalogue(tmp_path), mapping=mapping))
    assert in_mapping.code == 2
    assert f"notify[0]: {said}" in in_mapping.err or said in in_mapping.err
    assert "hook-secret" not in in_mapping.err


def test_a_failing_webhook_is_logged_by_its_host_and_leaves_the_exit_code(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notify, "RETRY_PAUSE", 0.0)
    webhook.status = 500
    log = tmp_path / "run.log"
    data = _catalogue(tmp_path, invalid=False)
    result = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url, "--log-file", log))
    assert result.code == 0
    assert len(webhook.received) == 2  # one retry, no more
    port = webhook.server.server_address[1]
    assert (
        f"could not notify the webhook at 127.0.0.1:{port} (HTTP 500); the exit code is the run's"
        in log.read_text()
    )
    webhook.status = 404
    again = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url, "--log-file", log))
    assert again.code == 0
    assert len(webhook.received) == 3  # a 404 is not retried
    assert "(HTTP 404)" in log.read_text()
    _no_secrets(webhook, again, log)


def test_an_unreachable_or_slow_webhook_is_logged_and_leaves_the_exit_code(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notify, "RETRY_PAUSE", 0.0)
    monkeypatch.setattr(notify, "NOTIFY_TIMEOUT", 0.3)
    log = tmp_path / "run.log"
    data = _catalogue(tmp_path)
    webhook.delay = 1.0
    slow = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url, "--log-file", log))
    assert slow.code == 1
    assert len(webhook.received) == 2
    assert "(no answer within 0.3 s)" in log.read_text()
    closed = webhook.url.replace(str(webhook.server.server_address[1]), "1", 1)
    refused = run_cli(*_args(tmp_path, sandbox, data, "--notify", closed, "--log-file", log))
    assert refused.code == 1
    assert "could not notify the webhook at 127.0.0.1:1 (could not connect)" in log.read_text()
    _no_secrets(webhook, refused, log)


def test_the_token_is_left_out_of_what_is_posted_even_where_a_path_holds_it(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    # An input named like the token: the summary quotes its path, and the body must not.
    data = _catalogue(tmp_path, f"{TOKEN}.csv")
    result = run_cli(*_args(tmp_path, sandbox, data, "--notify", webhook.url))
    assert result.code == 1
    (posted,) = webhook.received
    assert TOKEN.encode() not in posted.raw
    assert posted.body["summary"]["input_file"] == str(tmp_path / "[token].csv")


def test_a_feed_unchanged_is_told_so(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, webhook: Webhook
) -> None:
    data = _catalogue(tmp_path)
    assert run_cli(*_args(tmp_path, sandbox, data)).code == 1
    run_id = json.loads((tmp_path / "summary.json").read_text())["run_id"]
    result = run_cli(*_args(tmp_path, sandbox, data, "--skip-unchanged", "--notify", webhook.url))
    assert result.code == 0
    (posted,) = webhook.received
    assert posted.body["summary"]["status"] == "skipped_unchanged"
    assert posted.body["text"].startswith(
        f"hubspot-import: c.csv -> products: the feed is unchanged since run {run_id} ("
    )
    assert posted.body["text"].endswith("): nothing to do (exit 0).")


def test_a_run_stopped_by_sigterm_is_told_with_exit_143(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, webhook: Webhook
) -> None:
    box = make_sandbox(latency=0.05, rate_limit=5, rate_interval_ms=1000)
    data = _catalogue(tmp_path, n=300)
    args = [str(a) for a in _args(tmp_path, box, data, "--notify", webhook.url)]
    victim = subprocess.Popen(
        [sys.executable, "-m", "importer", *args, "--batch-size", "10", "--concurrency", "2"],
        env={**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None:
        if any(r.path.endswith("/batch/create") for r in box.received):
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGTERM)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 143, (out, err)
    (posted,) = webhook.received
    assert posted.body["summary"]["exit_code"] == 143
    assert "(exit 143)." in posted.body["text"]
    assert "\nStopped: stopped by SIGTERM" in posted.body["text"]
    assert TOKEN.encode() not in posted.raw
