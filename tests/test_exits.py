"""Every exit tells the scheduler the truth: signals settle what is in flight and write the
workbook, every output path is checked before anything is sent, the summary JSON is written
on every exit, contradictions are refused, and a bug is exit 4 with one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import importer.stages.run
from importer.sandbox import Fault, Sandbox
from importer.state.journal import journal_path

from .conftest import TOKEN, CliRun, creates, read_sheet, write_csv, write_mapping, write_xlsx

Runner = Callable[..., CliRun]
MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""


def catalogue(path: Path, n: int) -> Path:
    return write_csv(path, [["SKU", "Name"], *[[f"{i:05d}", f"Product {i}"] for i in range(n)]])


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return catalogue(tmp_path / "c.csv", 3), write_mapping(tmp_path / "m.yaml", MAPPING)


# --- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("senders", ["2", "1"], ids=["two-senders", "one-sender"])
def test_a_signal_mid_upload_settles_what_was_sent_and_writes_the_workbook(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, signum: int, senders: str
) -> None:
    box = make_sandbox(latency=0.2)
    data = catalogue(tmp_path / "c.csv", 300)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state, out, summary = tmp_path / "state", tmp_path / "o.xlsx", tmp_path / "s.json"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(state), "--out", str(out),
        "--summary-json", str(summary), "--batch-size", "10", "--concurrency", senders,
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(box.records("products")) < 40:
            time.sleep(0.02)
        victim.send_signal(signum)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 128 + signum, err
    rows = read_sheet(out)
    assert len(rows) == 300
    statuses = Counter(r["status"] for r in rows)
    assert set(statuses) == {"created", "not_sent"}
    # Every batch sent was settled: what HubSpot holds is exactly what the workbook says.
    assert statuses["created"] == len(box.records("products"))
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["exit_code"] == 128 + signum
    assert report["error"].startswith(f"stopped by {signal.Signals(signum).name}")
    assert report["counts"]["not_sent"] == statuses["not_sent"]
    # The next run sends the rest, and nothing twice.
    again = subprocess.run(
        [*command[:-4], "--out", str(tmp_path / "2.xlsx")], env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    skus = Counter(r["properties"]["hs_sku"] for r in box.records("products"))
    assert skus == Counter({f"{i:05d}": 1 for i in range(300)})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_before_the_upload_exits_with_the_signals_code(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, signum: int
) -> None:
    box = make_sandbox(latency=2.0)  # the portal check's reads take seconds
    data, mapping = catalogue(tmp_path / "c.csv", 3), write_mapping(tmp_path / "m.yaml", MAPPING)
    summary = tmp_path / "s.json"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(tmp_path / "state"),
        "--out", str(tmp_path / "o.xlsx"), "--summary-json", str(summary),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not box.received:
            time.sleep(0.02)
        victim.send_signal(signum)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert not box.records("products")
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 128 + signum


@pytest.mark.parametrize(
    ("ending", "signals", "wait"),
    [("answered", 1, "30"), ("second-signal", 2, "30"), ("wait-spent", 1, "1")],
)
def test_a_signal_during_the_only_batch_records_what_hubspot_did(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, ending: str, signals: int, wait: str
) -> None:
    # 100 rows are one batch, sent by one sender: the case that once reported 160 rows
    # HubSpot had created as not sent. The answer is waited for (created); a second signal, or
    # a wait longer than HUBSPOT_IMPORT_STOP_WAIT, leaves the batch: its rows are uncertain,
    # never not_sent, and the next run finds out what became of them (nothing twice).
    box = make_sandbox(latency=3.0)
    data = catalogue(tmp_path / "c.csv", 100)
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    state, out, summary = tmp_path / "state", tmp_path / "o.xlsx", tmp_path / "s.json"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(state), "--out", str(out),
        "--summary-json", str(summary), "--concurrency", "1", "--no-portal-check",
        "--portal-id", str(box.portal.portal_id),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_IMPORT_STOP_WAIT": wait}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not creates(box):
            time.sleep(0.02)
        time.sleep(0.2)
        for _ in range(signals):
            victim.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        _, err = victim.communicate(timeout=60)
    assert victim.returncode == 143, err
    assert "Traceback" not in err
    assert len(box.records("products")) == 100  # HubSpot carried the batch out
    statuses = Counter(r["status"] for r in read_sheet(out))
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["error"].startswith("stopped by SIGTERM")
    if ending == "answered":
        assert statuses == {"created": 100}
    else:
        assert statuses == {"uncertain": 100}
        assert report["counts"]["uncertain"] == 100
        said = "a second signal" if ending == "second-signal" else "had not answered within 1 s"
        assert said in report["error"]
    box.config.latency = 0.0
    again = subprocess.run(
        [*command[:-7], "--out", str(tmp_path / "2.xlsx")], env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert Counter(r["properties"]["hs_sku"] for r in box.records("products")) == Counter(
        {f"{i:05d}": 1 for i in range(100)}
    )
    assert {r["status"] for r in read_sheet(tmp_path / "2.xlsx")} <= {"created", "unchanged"}


def test_a_lost_answer_that_cannot_be_looked_up_is_uncertain_not_unsent(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    # HubSpot created the rows and its gateway answered 504; looking them up failed too.
    # Their fate is unknown to this run: uncertain, and the next run finds them.
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    for path in ("/search", "/batch/read"):
        sandbox.inject(Fault(status=503, path=path, times=10))
    data, mapping = inputs
    state, out = tmp_path / "state", tmp_path / "o.xlsx"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
                     "--out", out, "--max-attempts", "1")  # fmt: skip
    assert result.code == 1
    assert len(sandbox.records("products")) == 3
    rows = read_sheet(out)
    assert {r["status"] for r in rows} == {"uncertain"}
    assert "finding out what became of it failed" in rows[0]["message"]
    sandbox._faults.clear()  # HubSpot answers again
    again = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
                    "--out", tmp_path / "2.xlsx")  # fmt: skip
    assert again.code == 0, again.message
    assert sorted(r["properties"]["hs_sku"] for r in sandbox.records("products")) == [
        "00000",
        "00001",
        "00002",
    ]


# --- output paths, checked before anything is sent ----------------------------------------------


@pytest.mark.parametrize("which", ["input", "mapping"])
def test_out_may_not_be_the_input_or_the_mapping(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], which: str
) -> None:
    data, mapping = inputs
    target = data if which == "input" else mapping
    before = target.read_bytes()
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--out", target)
    assert result.code == 2
    assert "which this run reads: choose another path" in result.message
    assert target.read_bytes() == before
    assert sandbox.received == []


def test_out_must_be_an_xlsx(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--out", tmp_path / "r.csv"
    )
    assert result.code == 2
    assert "give a name ending in .xlsx" in result.message


def test_an_out_whose_folder_is_a_file_fails_before_sending(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    (tmp_path / "taken").write_text("a file", encoding="utf-8")
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url,
        "--out", tmp_path / "taken" / "r.xlsx",
    )  # fmt: skip
    assert result.code == 2
    assert "is a file, not a folder" in result.message
    assert sandbox.received == []


def test_missing_folders_for_outputs_are_made(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "c.csv", [["SKU", "Name"], ["1", "ok"], ["1", "duplicate"]])
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    out = tmp_path / "results" / "tonight" / "r.xlsx"
    log_file = tmp_path / "logs" / "import.log"
    summary = tmp_path / "json" / "s.json"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--out", out,
        "--log-file", log_file, "--summary-json", summary,
    )  # fmt: skip
    assert result.code == 1
    assert out.exists()
    assert list(out.parent.glob("c-retry-*.csv"))  # the retry file beside the workbook
    assert "results written to" in log_file.read_text(encoding="utf-8")
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 1


@pytest.mark.parametrize("option", ["--summary-json", "--log-file", "--state-dir"])
def test_an_output_that_cannot_be_one_is_refused(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path, option: str
) -> None:
    data, mapping = inputs
    if option == "--state-dir":
        target = tmp_path / "state-file"
        target.write_text("", encoding="utf-8")
        expected = "is a file, not a folder"
    else:
        target = tmp_path / "a-folder"
        target.mkdir()
        expected = "is a folder; give a file name"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, option, target)
    assert result.code == 2
    assert expected in result.message
    assert "Traceback" not in result.err
    assert sandbox.received == []


# --- the summary JSON and the log on every exit ---------------------------------------------------


def test_a_failing_run_replaces_last_nights_summary_and_logs_its_error(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    summary, log_file = tmp_path / "s.json", tmp_path / "import.log"
    summary.write_text('{"exit_code": 0, "run_id": "last night"}', encoding="utf-8")
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\ncolums: {}\n")
    result = run_cli(
        "run", "-m", mapping, catalogue(tmp_path / "c.csv", 2), "--base-url", sandbox.url,
        "--summary-json", summary, "--log-file", log_file,
    )  # fmt: skip
    assert result.code == 2
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["exit_code"] == 2
    assert report["run_id"] is None
    assert "did you mean 'columns'?" in report["error"]
    assert "ERROR error: " in log_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", ["link", "the-workbook", "the-log", "the-mapping"])
def test_a_summary_that_would_replace_another_file_is_refused_and_left_untouched(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path, kind: str
) -> None:
    data, mapping = inputs
    out, log_file, target = tmp_path / "o.xlsx", tmp_path / "i.log", tmp_path / "t.json"
    for path in (out, log_file, target):
        path.write_text("precious", encoding="utf-8")
    summary = {"link": tmp_path / "l.json", "the-workbook": out, "the-log": log_file,
               "the-mapping": mapping}[kind]  # fmt: skip
    if kind == "link":
        summary.symlink_to(target)
    before = summary.read_bytes()
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--out", out,
                     "--log-file", log_file, "--summary-json", summary)  # fmt: skip
    assert result.code == 2
    said = {"link": "is a link: the file is replaced whole",
            "the-workbook": "is also --out: give each output a path of its own",
            "the-log": "is also --log-file: give each output a path of its own",
            "the-mapping": "which this run reads: choose another path"}[kind]  # fmt: skip
    assert said in result.message
    assert summary.read_bytes().startswith(before)  # the log has its error line added
    assert kind == "the-log" or summary.read_bytes() == before
    assert target.read_text(encoding="utf-8") == "precious"
    assert kind != "link" or summary.is_symlink()
    assert sandbox.received == []


def test_a_summary_to_a_device_or_a_pipe_is_written_into_never_replacing_it(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    pipe = tmp_path / "s.fifo"
    os.mkfifo(pipe)
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_bytes()), daemon=True)
    reader.start()
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                     "--out", tmp_path / "o.xlsx", "--summary-json", pipe)  # fmt: skip
    reader.join(timeout=10)
    assert result.code == 0, result.message
    assert json.loads(read[0])["exit_code"] == 0
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    device = Path("/dev/full")
    if os.geteuid() == 0:  # root could replace /dev/full itself: a node of our own instead
        device = tmp_path / "full"
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 7))
    full = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                   "--out", tmp_path / "o2.xlsx", "--summary-json", device)  # fmt: skip
    assert full.code == 2
    assert f"--summary-json {device} could not be written (No space left on device)" in (
        full.message
    )
    assert "Traceback" not in full.err
    assert stat.S_ISCHR(device.lstat().st_mode)


def test_a_usage_error_still_writes_the_summary(run_cli: Runner, tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    result = run_cli("run", "--summary-json", summary, "--no-such-option")
    assert result.code == 2
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 2


def test_a_bug_is_exit_4_with_one_line_and_a_report(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(importer.stages.run, "validate", broken)  # a stand-in for a real bug
    data, mapping = inputs
    log_file = tmp_path / "import.log"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--log-file", log_file)
    assert result.code == 4
    assert result.messages == [
        "hubspot-import: internal error (ZeroDivisionError: a bug). This is a bug in "
        f"hubspot-import, not in your file; the details are in {log_file}."
    ]
    assert "Traceback (most recent call last)" in log_file.read_text(encoding="utf-8")


# --- contradictions and damaged state ------------------------------------------------------------


def test_sandbox_with_base_url_is_a_contradiction(
    run_cli: Runner, inputs: tuple[Path, Path]
) -> None:
    data, mapping = inputs
    result = run_cli("run", "-m", mapping, data, "--sandbox", "--base-url", "http://x")
    assert result.code == 2
    assert "--sandbox starts a HubSpot emulator of its own" in result.message


def test_dry_run_cannot_forget(run_cli: Runner, inputs: tuple[Path, Path]) -> None:
    data, mapping = inputs
    result = run_cli("run", "-m", mapping, data, "--dry-run", "--forget-uncertain")
    assert result.code == 2
    assert "--dry-run changes nothing" in result.message


def test_duplicate_keys_in_the_mapping_are_a_mistake(
    run_cli: Runner, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = inputs
    mapping = write_mapping(
        tmp_path / "dup.yaml",
        "object_type: products\ncolumns:\n  SKU: hs_sku\n  Name: name\n  SKU: description\n",
    )
    result = run_cli("check", "-m", mapping, data)
    assert result.code == 2
    assert "'SKU' is given twice (lines 3 and 5)" in result.message


def test_upsert_by_a_property_hubspot_does_not_hold_unique_is_refused_first(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    mapping = write_mapping(
        tmp_path / "m.yaml", "object_type: products\nkey: Name\ncolumns:\n  Name: name\n"
    )
    data = write_csv(tmp_path / "c.csv", [["Name"], ["A"], ["B"]])
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--mode", "upsert")
    assert result.code == 2
    assert "HubSpot holds name without unique values" in result.message
    assert not [r for r in sandbox.received if r.path.endswith("/batch/upsert")]


def test_a_damaged_journal_is_named_with_what_to_do(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    state = tmp_path / "state"
    damaged = journal_path(state, sandbox.url, "products", sandbox.portal.portal_id)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"this is not a database" * 100)
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state)
    assert result.code == 2
    assert f"the journal {damaged} cannot be read" in result.message
    assert "Move it aside" in result.message
    assert damaged.read_bytes().startswith(b"this is not a database")  # never deleted
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(damaged).execute("SELECT 1 FROM sqlite_master").fetchall()


def test_undo_of_a_run_whose_sandbox_is_gone_says_so_at_once(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    state = tmp_path / "state"
    assert run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                   "--state-dir", state, "--out", tmp_path / "o.xlsx").code == 0  # fmt: skip
    (run_id,) = [line.split()[0] for line in run_cli("runs", "--state-dir", state).out.split("\n")
                 if " products " in line]  # fmt: skip
    sandbox.stop()
    result = run_cli("undo", run_id, "--state-dir", state, "--yes")
    assert result.code == 2
    assert "which is no longer running" in result.message
    assert "retrying" not in result.err  # no minute of retries against a closed port


def test_one_lock_per_portal_and_object_type_whatever_the_state_folder(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    from importer.state.journal import Journal

    data, mapping = inputs
    holder = Journal(
        journal_path(tmp_path / "state-a", sandbox.url, "products", sandbox.portal.portal_id)
    )
    holder.lock()
    try:
        result = run_cli(
            "run", "-m", mapping, data, "--base-url", sandbox.url,
            "--state-dir", tmp_path / "state-b",
        )  # fmt: skip
    finally:
        holder.close()
    assert result.code == 3
    assert "another import is running against this portal and object type" in result.message
    assert not [r for r in sandbox.received if r.path.endswith("/batch/create")]


# --- the access token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (f"{TOKEN}\r\nX-Injected: 1", "holds a line break at position"),
        (f"{TOKEN[:4]} {TOKEN[4:]}", "holds a space at position 5"),
        (f"{TOKEN[:4]}\x07{TOKEN[4:]}", "holds a control character at position 5"),
        (f"{TOKEN}\u0142", "holds a character that is not plain ASCII"),
    ],
    ids=["crlf-inside", "space-inside", "control", "not-ascii"],
)
def test_a_malformed_token_is_refused_and_never_shown(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raw: str,
    said: str,
) -> None:
    data, mapping = inputs
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", raw)
    summary, log = tmp_path / "s.json", tmp_path / "run.log"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", tmp_path / "st",
        "--summary-json", summary, "--log-file", log, "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 2
    assert said in result.message
    assert "Traceback" not in result.err
    secret = TOKEN[4:]
    for text in (result.out, result.err, summary.read_text(), log.read_text()):
        assert secret not in text
    assert sandbox.received == []


def test_a_line_break_around_the_token_is_left_out_with_a_warning(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, mapping = inputs
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", f"{TOKEN}\n")
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", tmp_path / "st",
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 0, result.message
    assert "spaces or a line break around the token: they were left out" in result.err
    assert TOKEN not in result.err


def _files_holding(folder: Path, secret: str) -> list[str]:
    """The files under `folder` (the parts of workbooks too) whose bytes hold `secret`."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        parts = [data]
        if data.startswith(b"PK"):
            with zipfile.ZipFile(path) as book:
                parts += [book.read(name) for name in book.namelist()]
        if any(secret.encode() in part for part in parts):
            found.append(str(path.relative_to(folder)))
    return found


@pytest.mark.parametrize(
    ("status", "path", "echoed"),
    [
        (400, "/batch/create", True),
        (500, "/batch/", True),
        (400, "/properties", True),
        (401, "/batch/", False),
    ],
    ids=["refused-batch", "5xx-batch", "properties-read", "auth"],
)
def test_a_token_the_server_echoes_is_written_nowhere(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    status: int,
    path: str,
    echoed: bool,
) -> None:
    # A proxy or server that quotes the Authorization header in its error: the text reaches
    # row messages, the log, the summary, the journal and the workbook, but never the token.
    echo = f"you sent Authorization: Bearer {TOKEN}"
    sandbox.inject(
        Fault(
            status=status,
            body={"message": echo, "category": "VALIDATION_ERROR",
                  "errors": [{"message": f"header {TOKEN}", "code": "X"}]},
            path=path,
            times=20,
        )
    )  # fmt: skip
    data, mapping = inputs
    out = tmp_path / "out"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", out / "state",
        "--out", out / "o.xlsx", "--summary-json", out / "s.json", "--log-file", out / "l.log",
        "--max-attempts", "2",
    )  # fmt: skip
    assert result.code in (1, 2), result.message
    assert TOKEN not in result.out + result.err
    assert _files_holding(out, TOKEN) == []
    # The echo did reach what was written (the test would prove nothing otherwise).
    said = (out / "s.json").read_text(encoding="utf-8") + (out / "l.log").read_text("utf-8")
    if (out / "o.xlsx").exists():
        said += " ".join(str(r["message"]) for r in read_sheet(out / "o.xlsx"))
    assert ("[redacted]" in said) is echoed


def test_a_crash_report_holds_no_secret(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError(f"a bug that quotes Bearer {TOKEN}")

    monkeypatch.setattr(importer.stages.run, "validate", broken)  # a stand-in for a real bug
    data, mapping = inputs
    state = tmp_path / "state"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
        "--notify", "https://hooks.example.com/services/T000/B000/hook-secret",
    )  # fmt: skip
    assert result.code == 4
    (report,) = state.glob("crash-*.txt")
    text = report.read_text(encoding="utf-8")
    assert "ZeroDivisionError" in text
    assert TOKEN not in text + result.err
    assert "hook-secret" not in text
    assert report.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"HUBSPOT_ACCESS_TOKEN": "p" * 5000}, "is 5,000 characters long"),
        (
            {"HTTPS_PROXY": "http://ops:hunter2@[::1", "HTTP_PROXY": "http://ops:hunter2@[::1"},
            "the proxy the environment sets for",
        ),
        ({"HUBSPOT_IMPORT_STOP_WAIT": "soon"}, "HUBSPOT_IMPORT_STOP_WAIT='soon' is not"),
        ({"HUBSPOT_IMPORT_MAX_UNZIPPED_MB": "-1"}, "HUBSPOT_IMPORT_MAX_UNZIPPED_MB='-1' is not"),
    ],
    ids=["token-too-long", "proxy-unreadable", "stop-wait", "unzipped-limit"],
)
def test_an_environment_that_cannot_be_used_is_a_usage_error(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    said: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data, mapping = inputs
    if "UNZIPPED" in said:
        data = tmp_path / "c.xlsx"
        write_xlsx(data, [["SKU", "Name"], ["1", "a"]])
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", tmp_path / "st"
    )
    assert result.code == 2, result.err
    assert said in result.message
    assert "hunter2" not in result.err
    assert "Traceback" not in result.err
    assert not [r for r in sandbox.received if "/batch/" in r.path]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path, status: int
) -> None:
    # HubSpot's API never redirects: a POST followed elsewhere would carry the rows there.
    sandbox.inject(
        Fault(
            status=status,
            body={},
            headers={"Location": "https://elsewhere.example.com:8443/steal"},
            path="/batch/create",
        )
    )
    data, mapping = inputs
    out = tmp_path / "o.xlsx"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", tmp_path / "st",
        "--out", out,
    )  # fmt: skip
    assert result.code == 1
    assert f"answered {status}, a redirect to https://elsewhere.example.com:8443," in result.message
    assert "/steal" not in result.err
    assert {r["status"] for r in read_sheet(out)} == {"not_sent"}
    assert not sandbox.records("products")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://example.com", "is not an http:// or https:// address with a host"),
        ("file:///etc", "is not an http:// or https:// address with a host"),
        ("javascript:alert(1)", "is not an http:// or https:// address with a host"),
        ("api.hubapi.com", "is not an http:// or https:// address with a host"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://127.0.0.1:port", "cannot be read"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("https://api.hubapi.com/?x=1", "may not hold a query or fragment"),
        ("https://ops:hunter2@api.hubapi.com", "holds a user name or password"),
        ("https://ops:hunter2@api.hubapi.com:99999", "Port out of range"),
    ],
    ids=[
        "ftp",
        "file",
        "javascript",
        "no-scheme",
        "port-range",
        "port-word",
        "ipv6",
        "query",
        "credentials",
        "credentials-and-a-bad-port",
    ],
)
@pytest.mark.parametrize("command", ["check", "undo"])
def test_a_base_url_that_cannot_address_hubspot_is_a_usage_error(
    run_cli: Runner, inputs: tuple[Path, Path], tmp_path: Path, url: str, said: str, command: str
) -> None:
    data, mapping = inputs
    args = ["-m", mapping, data] if command == "check" else ["20261206T000000Z-abc123", "--yes"]
    result = run_cli(command, *args, "--base-url", url, "--state-dir", tmp_path / "st")
    assert result.code == 2
    assert said in result.err
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    assert "hunter2" not in result.out + result.err


# --- what the tool writes is its owner's alone ------------------------------------------------


def test_what_a_run_writes_is_readable_by_its_owner_alone_whatever_the_umask(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    state, log, summary, out = (
        tmp_path / "state", tmp_path / "run.log", tmp_path / "s.json", tmp_path / "o.xlsx"
    )  # fmt: skip
    previous = os.umask(0o022)  # a scheduler's usual umask: files 0644, folders 0755
    try:
        result = run_cli(
            "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
            "--log-file", log, "--summary-json", summary, "--out", out,
        )  # fmt: skip
        assert os.umask(0o022) == 0o022  # the caller's umask is given back
    finally:
        os.umask(previous)
    assert result.code == 0, result.message
    journals = list(state.glob("*.sqlite"))
    assert journals
    for path in (*journals, log, summary, out):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert state.stat().st_mode & 0o777 == 0o700


def test_every_file_a_run_or_plan_writes_is_its_owners_alone(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Retry files, the long cells' side file, locks, the portal list, a plan's journal,
    # workbook and retry workbook: all 0600 in folders of 0700, under a umask of 022.
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    rows = [["SKU", "Name", "Notes"], ["1", "ok", "n" * 40_000], ["1", "twice", ""]]
    data = write_csv(tmp_path / "c.csv", rows)
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps:\n  - mapping: m.yaml\n    input: c.csv\n", encoding="utf-8")
    out, state = tmp_path / "out", tmp_path / "out" / "state"
    previous = os.umask(0o022)
    try:
        first = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                        "--state-dir", state, "--out", out / "o.xlsx")  # fmt: skip
        second = run_cli("run", "--plan", plan, "--base-url", sandbox.url,
                         "--state-dir", state, "--out", out / "p.xlsx")  # fmt: skip
    finally:
        os.umask(previous)
    assert (first.code, second.code) == (1, 1), first.message + second.message
    written = sorted(p for p in out.rglob("*"))
    names = {p.name for p in written}
    assert {"o.xlsx", "o-long-cells.csv", "p.xlsx", "p-long-cells.csv", "portals.json"} <= names
    assert any(n.startswith("c-retry-") for n in names)
    assert any(n.startswith("plan-retry-") for n in names)
    assert any(n.endswith(".lock") for n in names)
    assert (state / "plans").is_dir()
    for path in written:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_a_link_where_the_lock_file_goes_is_refused_not_followed(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    # Someone put a link where the journal's lock file goes: writing who holds the lock
    # through it would overwrite its target.
    data, mapping = inputs
    state = tmp_path / "state"
    state.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me", encoding="utf-8")
    lock = journal_path(state, sandbox.url, "products", 4242424).with_suffix(".lock")
    lock.symlink_to(victim)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 2
    assert f"cannot open the lock file {lock} (it is a link, which is not followed)" in (
        result.message
    )
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert [r for r in sandbox.received if "/batch/" in r.path] == []


@pytest.mark.parametrize("kind", ["hard-link", "fifo", "folder"])
def test_a_lock_file_that_is_not_a_plain_file_of_ours_is_never_truncated(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path, kind: str
) -> None:
    data, mapping = inputs
    state = tmp_path / "state"
    state.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me", encoding="utf-8")
    lock = journal_path(state, sandbox.url, "products", 4242424).with_suffix(".lock")
    if kind == "hard-link":
        os.link(victim, lock)  # truncating the lock would empty the victim
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 2, result.message
    assert f"lock file {lock}" in result.message
    assert "Traceback" not in result.err
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not [r for r in sandbox.received if "/batch/" in r.path]


def test_a_lock_left_by_a_killed_run_is_said_and_taken_over(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    state = tmp_path / "state"
    state.mkdir()
    lock = journal_path(state, sandbox.url, "products", 4242424).with_suffix(".lock")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock.write_text(
        f"pid {dead.stdout.strip()} on {socket.gethostname()} since 2026-12-01T02:00:00.000+00:00"
    )
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 0, result.message
    assert f"{lock} was left by pid {dead.stdout.strip()}" in result.err
    assert "(no longer running), which ended without releasing it" in result.err
    assert len(sandbox.records("products")) == 3
    assert lock.read_text() == ""  # released, so the next run says nothing
    again = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
        "--out", tmp_path / "o2.xlsx",
    )  # fmt: skip
    assert again.code == 0
    assert "without releasing it" not in again.err


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
def test_another_users_lock_file_is_refused_naming_its_owner(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    state = tmp_path / "state"
    state.mkdir()
    lock = journal_path(state, sandbox.url, "products", 4242424).with_suffix(".lock")
    lock.write_text("pid 1 on elsewhere since then")
    os.chown(lock, 65534, 65534)
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state)
    assert result.code == 2
    assert "it is user 65534's, not yours" in result.message
    assert lock.read_text() == "pid 1 on elsewhere since then"


@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_a_stdout_that_cannot_be_written_does_not_hide_the_run(
    sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path, stdout: str
) -> None:
    # The report cannot be printed (a full disk under a redirect, the reader gone): the
    # records are written all the same, and the workbook, the journal and the summary say so.
    data, mapping = inputs
    summary = tmp_path / "s.json"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", sandbox.url, "--state-dir", str(tmp_path / "st"),
        "--out", str(tmp_path / "o.xlsx"), "--summary-json", str(summary),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    if stdout == "full":
        with open("/dev/full", "w", encoding="utf-8") as sink:
            done = subprocess.run(
                command, env=env, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=120
            )
    else:
        done = subprocess.run(
            command, env=env, stderr=subprocess.PIPE, text=True, timeout=120, close_fds=True,
            preexec_fn=lambda: os.close(1),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    assert "Exception ignored" not in done.stderr
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["exit_code"] == 0
    assert report["run_id"]
    assert len(sandbox.records("products")) == 3


@pytest.mark.parametrize("log", ["log-file", "no-log"])
def test_a_closed_stderr_does_not_stop_the_run(
    sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path, log: str
) -> None:
    # Started with `2>&-`: sys.stderr is None. The run runs; its lines go to --log-file.
    data, mapping = inputs
    summary, log_file = tmp_path / "s.json", tmp_path / "i.log"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", sandbox.url, "--state-dir", str(tmp_path / "st"),
        "--out", str(tmp_path / "o.xlsx"), "--summary-json", str(summary),
        *(["--log-file", str(log_file)] if log == "log-file" else []),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    done = subprocess.run(
        command, env=env, stdout=subprocess.PIPE, text=True, timeout=120, close_fds=True,
        preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert done.returncode == 0
    assert json.loads(summary.read_text(encoding="utf-8"))["exit_code"] == 0
    assert len(sandbox.records("products")) == 3
    assert log == "no-log" or "results written to" in log_file.read_text(encoding="utf-8")
    # A mistake is said in the log and the summary, with its own exit code.
    write_mapping(mapping, "object_type: products\ncolums: {}\n")
    failed = subprocess.run(
        command, env=env, stdout=subprocess.PIPE, text=True, timeout=120, close_fds=True,
        preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert failed.returncode == 2
    assert "did you mean 'columns'?" in json.loads(summary.read_text(encoding="utf-8"))["error"]
    assert log == "no-log" or "did you mean 'columns'?" in log_file.read_text(encoding="utf-8")


def test_a_redirect_before_anything_is_sent_is_a_usage_error(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    # The first request (the portal's properties) is redirected: --base-url is wrong.
    sandbox.inject(Fault(status=301, body={}, headers={"Location": "https://elsewhere.example.com/x"},
                         path="/", times=100))  # fmt: skip
    data, mapping = inputs
    summary = tmp_path / "s.json"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url,
                     "--state-dir", tmp_path / "st", "--summary-json", summary)  # fmt: skip
    assert result.code == 2, result.message
    assert "answered 301, a redirect to https://elsewhere.example.com," in result.message
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert (report["exit_code"], report["run_id"]) == (2, None)
    assert not sandbox.records("products")


@pytest.mark.parametrize(
    "context",
    ["a string", ["a", "list"], {"ids": "10001"}, {"objectWriteTraceId": [None, {"x": 1}]}, 7],
    ids=["string", "list", "single-id", "odd-values", "number"],
)
def test_a_malformed_error_context_is_read_as_none_never_a_crash(
    run_cli: Runner,
    sandbox: Sandbox,
    inputs: tuple[Path, Path],
    tmp_path: Path,
    context: object,
) -> None:
    # HubSpot documents `context` as lists of strings; an answer with anything else there
    # (a proxy, a new API version) must not end in exit 4.
    refused = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 1,
        "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "odd",
                    "context": context}],
    }  # fmt: skip
    sandbox.inject(Fault(status=207, body=refused, after=True, path="/batch/create"))
    data, mapping = inputs
    out = tmp_path / "o.xlsx"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--out", out)  # fmt: skip
    assert result.code in (0, 1), result.message
    assert "internal error" not in result.err
    held = len(sandbox.records("products"))
    statuses = [r["status"] for r in read_sheet(out)]
    assert statuses.count("created") + statuses.count("uncertain") >= held


def test_a_journal_an_older_version_left_open_to_others_is_made_private(
    run_cli: Runner, sandbox: Sandbox, inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = inputs
    state = tmp_path / "st"
    args = ("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir", state,
            "--out", tmp_path / "o.xlsx")  # fmt: skip
    assert run_cli(*args).code == 0
    journals = list(state.glob("*.sqlite"))
    assert journals
    for path in [*journals, *state.glob("*.sqlite-*")]:
        path.chmod(0o644)  # as an older version, under umask 022, made them
    state.chmod(0o755)
    assert run_cli(*args).code == 0
    for path in [*journals, *state.glob("*.sqlite-wal")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
