"""Uploading through real HTTP to the sandbox: every row accounted for, whatever HubSpot answers."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer import AuthError, ConfigError, RowStatus, RunOptions, RunResult, run_import
from importer.api.client import (
    HubSpotClient,
    RateLimiter,
    RetryPolicy,
    Verdict,
    classify,
    error_message,
)
from importer.sandbox import Fault, Sandbox
from importer.stages.decide import Operation
from importer.stages.parallel import in_parallel

from .conftest import TOKEN, creates, read_sheet, write_csv, write_mapping

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)

MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
  Price: price
"""


def catalogue(tmp_path: Path, n: int, bad: dict[int, str] | None = None) -> Path:
    rows = [["SKU", "Name", "Price"]]
    for i in range(n):
        rows.append([f"{i:05d}", f"Product {i}", (bad or {}).get(i, f"{i}.50")])
    return write_csv(tmp_path / "catalogue.csv", rows)


def run(tmp_path: Path, box: Sandbox, data: Path, mapping: str = MAPPING, **kw: Any) -> RunResult:
    options = RunOptions(
        input_file=data,
        mapping_file=write_mapping(tmp_path / "m.yaml", mapping),
        token=kw.pop("token", TOKEN),
        base_url=box.url,
        retry=FAST,
        out=tmp_path / "out.xlsx",
        **kw,
    )
    return run_import(options)


def outcome(result: RunResult) -> dict[str, int]:
    return {k: v for k, v in result.summary.counts.items() if v}


def assert_ids_match_sandbox(tmp_path: Path, box: Sandbox) -> list[dict[str, Any]]:
    """Each created row's id is the sandbox record holding that row's SKU."""
    rows = read_sheet(tmp_path / "out.xlsx")
    by_sku = {r["properties"]["hs_sku"]: r["id"] for r in box.records("products")}
    for row in rows:
        if row["status"] == "created":
            assert by_sku[row["SKU"]] == row["hubspot_id"], row
    return rows


def test_shuffled_results_without_echoed_trace_ids_match_by_key(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = run(tmp_path, sandbox, catalogue(tmp_path, 250))
    assert outcome(result) == {"created": 250}
    assert_ids_match_sandbox(tmp_path, sandbox)
    bodies = creates(sandbox)
    assert sorted(len(b["inputs"]) for b in bodies) == [50, 100, 100]  # sent concurrently
    traces = [i["objectWriteTraceId"] for b in bodies for i in b["inputs"]]
    assert len(set(traces)) == 250


def test_without_key_results_match_by_the_values_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    mapping = MAPPING.replace("key: SKU\n", "")
    result = run(tmp_path, sandbox, catalogue(tmp_path, 120), mapping=mapping)
    assert outcome(result) == {"created": 120}
    assert_ids_match_sandbox(tmp_path, sandbox)


def test_echoed_trace_ids_are_used(tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(echo_trace_ids=True)
    mapping = MAPPING.replace("key: SKU\n", "")
    result = run(tmp_path, box, catalogue(tmp_path, 30), mapping=mapping)
    assert outcome(result) == {"created": 30}
    assert_ids_match_sandbox(tmp_path, box)


def test_207_partial_failure_fails_only_the_bad_rows(tmp_path: Path, sandbox: Sandbox) -> None:
    # Without the portal check, Price is sent as text: HubSpot (not validation) refuses it.
    result = run(
        tmp_path,
        sandbox,
        catalogue(tmp_path, 150, bad={3: "12,50", 120: "abc"}),
        portal_check=False,
    )
    assert outcome(result) == {"created": 148, "failed": 2}
    rows = assert_ids_match_sandbox(tmp_path, sandbox)
    failed = {r["source_row"]: r["message"] for r in rows if r["status"] == "failed"}
    assert failed == {
        5: 'HubSpot refused it: Property values were not valid: "12,50" was not a valid number.',
        122: 'HubSpot refused it: Property values were not valid: "abc" was not a valid number.',
    }
    assert len(sandbox.records("products")) == 148
    assert len(creates(sandbox)) == 2


def test_with_the_portal_check_the_same_values_are_caught_before_sending(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = run(tmp_path, sandbox, catalogue(tmp_path, 150, bad={3: "12,50", 120: "abc"}))
    assert outcome(result) == {"created": 148, "invalid": 2}  # price is a number in HubSpot
    assert [i.cell for i in result.issues] == ["C5", "C122"]
    assert all(len(b["inputs"]) <= 100 for b in creates(sandbox))
    assert len(sandbox.records("products")) == 148


def test_whole_batch_400_finds_the_bad_row_and_creates_the_rest(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(multi_status=False)
    result = run(tmp_path, box, catalogue(tmp_path, 100, bad={37: "n/a"}), portal_check=False)
    assert outcome(result) == {"created": 99, "failed": 1}
    rows = assert_ids_match_sandbox(tmp_path, box)
    assert rows[37]["status"] == "failed"
    assert '"n/a" was not a valid number' in rows[37]["message"]
    skus = sorted(r["properties"]["hs_sku"] for r in box.records("products"))
    assert skus == [f"{i:05d}" for i in range(100) if i != 37]  # each good row exactly once
    assert len(creates(box)) <= 1 + 2 * 7  # bisection: at most two requests per level


def test_unknown_property_in_a_whole_batch_400_fails_those_rows_without_bisecting(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(multi_status=False)
    mapping = MAPPING + "  Colour: colour\n"
    data = write_csv(
        tmp_path / "c.csv",
        [["SKU", "Name", "Price", "Colour"], ["1", "a", "1", "red"], ["2", "b", "2", ""]],
    )
    result = run(tmp_path, box, data, mapping=mapping, portal_check=False)
    assert outcome(result) == {"created": 1, "failed": 1}
    rows = read_sheet(tmp_path / "out.xlsx")
    assert rows[0]["message"] == (
        "HubSpot refused it: Property values were not valid: Property "
        '"colour" does not exist (check the property\'s internal name '
        "in the mapping)"
    )
    assert len(creates(box)) == 2


def test_429_then_success(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.inject(
        Fault(
            status=429,
            headers={"Retry-After": "0"},
            body={
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "x",
                "policyName": "TEN_SECONDLY_ROLLING",
            },
        )
    )
    result = run(tmp_path, sandbox, catalogue(tmp_path, 10))
    assert outcome(result) == {"created": 10}
    assert len(creates(sandbox)) == 2
    assert len(sandbox.records("products")) == 10


def test_rate_limit_headers_pace_the_uploader(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(rate_limit=3, rate_interval_ms=300)
    result = run(tmp_path, box, catalogue(tmp_path, 20), batch_size=2)
    assert outcome(result) == {"created": 20}
    assert len(creates(box)) == 10  # learned the limit from the headers: no 429 was needed


def test_5xx_is_retried(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(status=502, times=2))
    result = run(tmp_path, sandbox, catalogue(tmp_path, 5))
    assert outcome(result) == {"created": 5}
    assert len(sandbox.records("products")) == 5


def test_5xx_until_retries_run_out_stops_with_the_rows_sent_uncertain(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    # The batches were sent and answered 5xx (a create so answered may have been carried
    # out), and looking their rows up failed too: they are uncertain, never `not_sent`, and
    # the next run finds out what became of them (both batches were sent at once).
    sandbox.inject(Fault(status=503, times=100))
    result = run(tmp_path, sandbox, catalogue(tmp_path, 150))
    assert outcome(result) == {"uncertain": 150}
    assert "gave up after 4 attempts: HTTP 503" in str(result.stopped_by)
    rows = read_sheet(tmp_path / "out.xlsx")
    assert rows[0]["message"].startswith("uncertain: HubSpot answered 503")


def test_401_stops_at_once(tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(token="pat-other")
    with pytest.raises(AuthError) as err:
        run(tmp_path, box, catalogue(tmp_path, 150))
    assert len(box.received) == 1  # the preflight read; no retry storm
    assert TOKEN not in str(err.value)


def test_403_names_the_missing_scopes(tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(denied_object_types={"products"})
    result = run(tmp_path, box, catalogue(tmp_path, 3))
    assert str(result.stopped_by) == (
        "HubSpot denied access (403 MISSING_SCOPES): This app hasn't been granted all required "
        "scopes to make this call. Read more about required scopes here: "
        "https://developers.hubspot.com/scopes. Grant the private app one of these scopes: "
        "e-commerce, "
        "crm.objects.products.write."
    )


def test_canceled_batch_fails_the_rows_without_a_result(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(canceled=True))
    result = run(tmp_path, sandbox, catalogue(tmp_path, 10))
    assert outcome(result) == {"created": 5, "failed": 5}
    rows = assert_ids_match_sandbox(tmp_path, sandbox)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed[0]["message"] == (
        "not created: HubSpot ended the batch with status CANCELED; run the import again"
    )


def test_dropped_connection_is_looked_up_by_key_then_resent(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(drop=True))  # dropped before processing: nothing was created
    result = run(tmp_path, sandbox, catalogue(tmp_path, 120))
    assert outcome(result) == {"created": 120}
    assert_ids_match_sandbox(tmp_path, sandbox)
    assert len(sandbox.records("products")) == 120
    paths = [r.path.rsplit("/", 1)[-1] for r in sandbox.received]
    # Batches go out concurrently, so only the dropped batch's story has a fixed order:
    # it was sent, looked up by key (nothing found), then sent again.
    assert paths[:2] == ["details", "products"]
    assert sorted(paths[2:]) == ["create", "create", "create", "read"]
    read_at = paths.index("read")
    assert paths.index("create") < read_at < len(paths) - 1 - paths[::-1].index("create")


def test_answer_lost_after_processing_is_found_not_recreated(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(drop_rate=1.0)  # every POST is processed, then the answer is lost
    result = run(tmp_path, box, catalogue(tmp_path, 30))
    assert outcome(result) == {"uncertain": 30}  # the read-backs are lost too: cannot confirm
    assert len(box.records("products")) == 30
    box.config.drop_rate = 0.0
    again = run(tmp_path, box, catalogue(tmp_path, 30))
    assert outcome(again) == {"unchanged": 30}  # looked up first, found, not created again
    assert len(box.records("products")) == 30
    assert_ids_match_sandbox(tmp_path, box)


def test_timeout_after_processing_is_looked_up_not_recreated(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(hang_rate=0.3, hang_seconds=0.6, seed=4)
    result = run(tmp_path, box, catalogue(tmp_path, 200), batch_size=20, timeout=(5.0, 0.3))
    assert outcome(result) == {"created": 200}
    assert box.faults["hang"] >= 1  # answers really came too late
    assert len(box.records("products")) == 200
    assert_ids_match_sandbox(tmp_path, box)


def test_dropped_connection_without_a_key_is_uncertain_not_resent(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(drop=True))
    mapping = MAPPING.replace("key: SKU\n", "")
    result = run(tmp_path, sandbox, catalogue(tmp_path, 120), mapping=mapping)
    dropped = len(creates(sandbox)[0]["inputs"])  # batches race: the first to arrive is dropped
    assert outcome(result) == {"uncertain": dropped, "created": 120 - dropped}
    rows = read_sheet(tmp_path / "out.xlsx")
    uncertain = [r for r in rows if r["status"] == "uncertain"]
    assert "may or may not exist in HubSpot" in uncertain[0]["message"]
    assert len(creates(sandbox)) == 2


def test_unreachable_hubspot_is_a_clear_configuration_error(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    url = sandbox.url
    sandbox.stop()
    options = RunOptions(
        input_file=catalogue(tmp_path, 3),
        mapping_file=write_mapping(tmp_path / "m.yaml", MAPPING),
        token=TOKEN,
        base_url=url,
        retry=FAST,
        out=tmp_path / "out.xlsx",
    )
    with pytest.raises(ConfigError) as err:
        run_import(options)
    assert str(err.value) == (
        f"could not read the account details from {url}: gave up after 4 attempts: cannot "
        f"connect to {url} (connection refused). Try again later. Check --base-url (or "
        "HUBSPOT_BASE_URL) and the network."
    )


def test_unknown_object_type_is_a_config_error(tmp_path: Path, sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="HubSpot has no object type 'widgets'"):
        run(
            tmp_path,
            sandbox,
            catalogue(tmp_path, 3),
            mapping=MAPPING.replace("products", "widgets"),
        )


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (201, Verdict.SUCCESS),
        (204, Verdict.SUCCESS),
        (207, Verdict.PARTIAL),
        (400, Verdict.REJECTED),
        (404, Verdict.REJECTED),
        (409, Verdict.REJECTED),
        (401, Verdict.AUTH),
        (403, Verdict.AUTH),
        (429, Verdict.RATE_LIMITED),
        (423, Verdict.RETRY),
        (477, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (524, Verdict.RETRY),
    ],
    ids=str,
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "HTTP 400"),
        ({"message": "Bad"}, "Bad"),
        (
            {
                "message": 'Property values were not valid: [{"isValid":false}]',
                "errors": [{"message": "x is bad", "code": "INVALID_OPTION"}],
            },
            "Property values were not valid: x is bad (use one of the option values HubSpot lists)",
        ),
        ({"errors": ["not a dict", {"message": None}]}, "HTTP 400"),
    ],
    ids=["empty", "message", "listing-replaced", "junk"],
)
def test_error_message(body: dict[str, Any], message: str) -> None:
    assert error_message(body, 400) == message


def test_senders_run_every_batch_once_and_are_gone_when_the_upload_returns() -> None:
    jobs = [(Operation.CREATE, [i]) for i in range(40)]
    done: list[int] = []
    names: set[str] = set()

    def work(job: tuple[Operation, list[int]]) -> None:
        time.sleep(0.002)
        names.add(threading.current_thread().name)
        done.append(job[1][0])

    in_parallel(work, jobs, 8, threading.Event())
    assert sorted(done) == list(range(40))
    assert len(names) > 1
    assert not [t for t in threading.enumerate() if t.name.startswith("upload-")]


def test_a_sender_error_stops_the_rest_and_is_raised_once_all_have_ended() -> None:
    jobs = [(Operation.CREATE, [i]) for i in range(100)]
    started: list[int] = []

    def work(job: tuple[Operation, list[int]]) -> None:
        started.append(job[1][0])
        if job[1][0] == 3:
            raise ValueError("batch 3 broke")
        time.sleep(0.01)

    stop = threading.Event()
    with pytest.raises(ValueError, match="batch 3 broke"):
        in_parallel(work, jobs, 4, stop)
    assert stop.is_set()
    assert 3 in started
    assert len(started) < 50  # the rest were never taken (each takes 10 ms; 4 senders)
    assert not [t for t in threading.enumerate() if t.name.startswith("upload-")]


@pytest.mark.parametrize("attempt", range(5))
def test_a_signal_waits_for_every_batch_in_flight_to_settle(attempt: int) -> None:
    """SIGINT arrives while the senders wait for their answers: no new batch is taken, and
    the interrupt propagates only once every batch in flight has settled. (Python 3.11's
    Thread.join, interrupted by a signal, can mark a running thread as stopped, so joining
    it again returned at once and the run reported batches in flight as not sent.)"""
    from importer.core import shutdown

    jobs = [(Operation.CREATE, [i]) for i in range(40)]
    started: list[int] = []
    settled: list[int] = []

    def work(job: tuple[Operation, list[int]]) -> None:
        started.append(job[1][0])
        # An answer on its way; the first sender's (the one the interrupted join waited on)
        # takes longest.
        time.sleep(0.4 if job[1][0] == 0 else 0.1 + 0.02 * attempt)
        settled.append(job[1][0])

    restore = shutdown.install()
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        stop = threading.Event()
        with pytest.raises(shutdown.Stop):
            in_parallel(work, jobs, 4, stop)
        assert stop.is_set()
        assert sorted(settled) == sorted(started)  # every batch taken was settled
        assert len(started) < 40  # and no new one was taken
    finally:
        timer.cancel()
        restore()


def test_rate_limiter_bursts_to_the_limit_and_keeps_the_rolling_window() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    limiter = RateLimiter(10, 1.0, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(35):
        limiter.acquire()
        stamps.append(now[0])
    assert stamps[:10] == [0.0] * 10  # a full burst at once
    for i in range(len(stamps)):
        in_window = [t for t in stamps if stamps[i] <= t < stamps[i] + 1.0 + limiter.pad]
        assert len(in_window) <= 10
    assert stamps[-1] == pytest.approx(3 * (1.0 + limiter.pad), abs=0.01)  # no window wasted


def test_rate_limiter_counts_a_slot_from_when_its_bytes_left() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    limiter = RateLimiter(2, 1.0, clock=lambda: now[0], sleep=sleep)
    first = limiter.acquire()
    limiter.acquire()
    limiter.sent_at(first, 0.05)  # the first request was written 50 ms after its grant
    third = limiter.acquire()
    assert third == pytest.approx(1.0 + limiter.pad)
    fourth = limiter.acquire()  # may not follow until the late one has left the window
    assert fourth == pytest.approx(1.05 + limiter.pad)


def _grants(limiter: RateLimiter, senders: int, each: int) -> list[float]:
    """The slots `senders` threads were granted, `each` apiece, in time order."""
    grants: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        for _ in range(each):
            granted = limiter.acquire()
            with lock:
                grants.append(granted)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(grants) == senders * each
    return sorted(grants)


def _assert_within_window(grants: list[float], limiter: RateLimiter) -> None:
    limit, horizon = limiter.max_requests, limiter.interval + limiter.pad
    for first, next_window in zip(grants, grants[limit:], strict=False):
        assert next_window - first >= horizon - 1e-6


@pytest.mark.parametrize("gate", [False, True], ids=["no-gate", "start-gate"])
def test_rate_limiter_keeps_the_window_with_many_senders_waiting(gate: bool) -> None:
    """Senders that each sleep to their own place's slot, through the start gate or not,
    never put more than the limit in any window, and every one is served."""
    limiter = RateLimiter(4, 0.2)
    if gate:
        limiter.start_together(6, timeout=1.0)
    _assert_within_window(_grants(limiter, 6, 2), limiter)
    assert limiter._waiters == []


def test_rate_limiter_with_more_waiters_than_the_limit_during_a_pause() -> None:
    """More senders than the window holds, all waiting out a pause with nothing sent yet:
    each still finds its wake-up time, and the window holds."""
    limiter = RateLimiter(2, 0.2)
    limiter.pause(0.05)
    _assert_within_window(_grants(limiter, 5, 1), limiter)


class _RecordingLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__()
        self.granted: list[float] = []
        self.corrected: list[tuple[float, float]] = []

    def acquire(self) -> float:
        self.granted.append(super().acquire())
        return self.granted[-1]

    def sent_at(self, granted: float, sent: float) -> None:
        self.corrected.append((granted, sent))
        super().sent_at(granted, sent)


def test_each_request_reports_when_its_bytes_were_written(sandbox: Sandbox) -> None:
    limiter = _RecordingLimiter()
    client = HubSpotClient(token=TOKEN, base_url=sandbox.url, retry=FAST, limiter=limiter)
    client.request("GET", client.paths.properties("products"))
    client.request("GET", client.paths.properties("carts"))
    client.close()
    assert [g for g, _ in limiter.corrected] == limiter.granted
    assert all(g <= t for g, t in limiter.corrected)


def test_requests_to_one_url_carry_their_own_body_and_no_cookie(sandbox: Sandbox) -> None:
    # HubSpot's CDN sets cookies; the token alone authenticates, so none is sent back.
    sandbox.inject(Fault(status=503, headers={"Set-Cookie": "__cf_bm=abc; Path=/; HttpOnly"}))
    client = HubSpotClient(token=TOKEN, base_url=sandbox.url, retry=FAST)
    path = client.paths.batch("products", "create")
    first = {"inputs": [{"properties": {"name": "first"}}]}
    second = {"inputs": [{"properties": {"name": "a longer second name"}}, {"properties": {}}]}
    assert client.request("POST", path, first).status == 201  # after one 503
    assert client.request("POST", path, second).status == 201
    assert client.request("GET", client.paths.properties("products")).status == 200
    client.close()
    posts = [r for r in sandbox.received if r.method == "POST"]
    assert [r.body for r in posts] == [first, first, second]
    assert [int(r.headers["Content-Length"]) for r in posts] == [len(r.raw) for r in posts]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in sandbox.received)
    assert not any("Cookie" in r.headers for r in sandbox.received)
    get = sandbox.received[-1]
    assert (get.method, get.raw, get.headers.get("Content-Length")) == ("GET", b"", None)


def test_https_and_proxied_connections_report_their_write_time_too() -> None:
    client = HubSpotClient(token=TOKEN, base_url="https://api.hubapi.com")
    adapter = client.session.get_adapter("https://api.hubapi.com")
    direct = adapter.poolmanager.connection_from_url("https://api.hubapi.com/crm/v3/x")
    proxied = adapter.proxy_manager_for("http://proxy.example:3128").connection_from_url(
        "https://api.hubapi.com/crm/v3/x"
    )
    client.close()  # nothing was connected: pools only
    for pool in (direct, proxied):
        assert pool.ConnectionCls.__name__ == "_TimedHTTPSConnection"


def test_rate_limiter_cap_per_second() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    limiter = RateLimiter(100, 10.0, max_rps=4, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(9):
        limiter.acquire()
        stamps.append(now[0])
    assert stamps == pytest.approx([0, 0, 0, 0, 1, 1, 1, 1, 2], abs=0.01)


def test_rate_limiter_holds_off_when_another_app_spent_the_quota() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    limiter = RateLimiter(10, 1.0, clock=lambda: now[0], sleep=sleep)
    limiter.acquire()
    limiter.observe(0)  # HubSpot says nothing is left, though we sent one request
    limiter.acquire()
    assert now[0] == pytest.approx(1.0, abs=0.01)


def test_rate_limiter_does_not_take_its_own_full_window_for_another_app() -> None:
    """Under steady pacing HubSpot's window is full of our own requests when each arrives
    (Remaining 0). Read a little later, some of them have left our window: counted from then,
    that looked like another app's traffic and cost a whole window's pause."""
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    limiter = RateLimiter(10, 1.0, clock=lambda: now[0], sleep=sleep)
    for i in range(10):  # a window of sends spread over 0.9 s
        now[0] = i / 10
        limiter.acquire()
    now[0] = 1.0 + limiter.pad
    granted = limiter.acquire()  # the first slot of the next window
    now[0] = 1.35  # its answer, read late: HubSpot counted 0.1..0.9 and it, 10 of 10
    limiter.observe(0, granted)
    limiter.acquire()
    assert now[0] == pytest.approx(1.35, abs=0.01)


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=8, jitter=0.5)
    rng = random.Random(1)
    delays = [policy.delay(a, rng) for a in range(1, 7)]
    assert 1 <= delays[0] <= 1.5
    assert 2 <= delays[1] <= 3
    assert all(8 <= d <= 12 for d in delays[3:])


def test_client_refuses_an_empty_token() -> None:
    with pytest.raises(AuthError, match="set HUBSPOT_ACCESS_TOKEN"):
        HubSpotClient(token="")


def test_statuses_are_the_documented_ones() -> None:
    assert [s.value for s in RowStatus] == [
        "created",
        "updated",
        "unchanged",
        "skipped",
        "invalid",
        "failed",
        "incomplete",
        "not_sent",
        "uncertain",
        "would_create",
        "would_update",
    ]
