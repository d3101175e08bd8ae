"""#26's remaining hostile cases: a signal during the mirror's requests and the write rules'
reads waits at most HUBSPOT_IMPORT_STOP_WAIT seconds, a second signal leaves the request
(what it sent uncertain, recorded for the next run); an old log file open to others is made
private; bzip2 and LZMA workbook parts are refused before anything is inflated; the retry
workbook keeps Excel's cell limit."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from importer.core.errors import InputFileError
from importer.sandbox import Sandbox
from importer.sheets.read_limits import check_unzipped, inflate_part
from importer.state.missing_table import MissingState

from .conftest import (
    SKU_NAME_PRICE,
    TOKEN,
    CliRun,
    read_sheet,
    write_csv,
    write_mapping,
    write_xlsx,
)
from .test_mirror import ARCHIVE, catalogue, entries, live, with_status
from .test_write_rules import HEADER
from .test_write_rules import MAPPING as RULES

Runner = Callable[..., CliRun]
EXCEL_MAX_CELL = 32_767
SET = SKU_NAME_PRICE + "missing_rows: {set: {status: discontinued}}\n"
"""The option's value, not its label: --no-portal-check reads no options to translate."""
ENDINGS = [("second-signal", 2, "30"), ("wait-spent", 1, "1")]
"""How the wait for a request in flight ends early: a second SIGTERM 0.3 s after the first,
or HUBSPOT_IMPORT_STOP_WAIT (1 s) spent."""


# --- signals --------------------------------------------------------------------------------


def _command(box: Sandbox, tmp: Path, mapping: Path, data: Path, out: str) -> list[str]:
    return [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(tmp / "state"), "--out", str(tmp / out),
        "--summary-json", str(tmp / "s.json"), "--no-portal-check",
        "--portal-id", str(box.portal.portal_id),
    ]  # fmt: skip


def _signalled_at(
    box: Sandbox, command: list[str], path: str, signals: int, wait: str
) -> tuple[int, str, float]:
    """Run `command`; once a request to `path` reached HubSpot, send it `signals` SIGTERMs
    0.3 s apart. Its exit code, its stderr, and the seconds from the last signal to its end."""
    before = len(box.received)
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_IMPORT_STOP_WAIT": wait}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as victim:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            r.path.endswith(path) for r in box.received[before:]
        ):
            time.sleep(0.01)
        assert victim.poll() is None, f"the run ended before it sent {path}"
        for _ in range(signals):
            time.sleep(0.3)
            victim.send_signal(signal.SIGTERM)
        last = time.monotonic()
        _, err = victim.communicate(timeout=60)
    return victim.returncode, err, time.monotonic() - last


@pytest.mark.parametrize(("ending", "signals", "wait"), ENDINGS, ids=[e[0] for e in ENDINGS])
def test_a_signal_during_an_archive_waits_at_most_stop_wait_and_leaves_it_uncertain(
    make_sandbox: Callable[..., Sandbox],
    run_cli: Runner,
    tmp_path: Path,
    ending: str,
    signals: int,
    wait: str,
) -> None:
    # HubSpot archives at once and answers 6 s later: the run leaves the request before the
    # answer, says the record uncertain (never archived, never not sent), keeps it `sending`
    # in the journal, and the next run settles it by reading what HubSpot holds.
    box = make_sandbox()
    mapping = write_mapping(tmp_path / "m.yaml", ARCHIVE)
    first = _command(box, tmp_path, mapping, catalogue(tmp_path / "c.csv", range(20)), "1.xlsx")
    assert run_cli(*first[3:]).code == 0
    gone = live(box)["00000"]["id"]
    box.config.latency = 3.0  # the mirror's read takes 3 s, its archive 3 s more: the signal
    data = catalogue(tmp_path / "c.csv", range(1, 20))
    code, err, took = _signalled_at(
        box, _command(box, tmp_path, mapping, data, "2.xlsx"), "/batch/archive", signals, wait
    )
    assert code == 143, err
    assert "Traceback" not in err
    assert took < 2.5, err  # the answer, 2.4 s away at the last signal, was not waited for
    (line,) = read_sheet(tmp_path / "2.xlsx", "Missing")
    assert (line["key"], line["hubspot_id"], line["action"]) == ("00000", gone, "failed")
    said = (
        "a second signal, SIGTERM"
        if ending == "second-signal"
        else "HubSpot had not answered within 1 s"
    )
    assert line["message"].startswith(
        f"uncertain: sent, then left unanswered as the run stopped ({said}"
    )
    assert line["message"].endswith("the next run finds out first whether it was archived")
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["error"].startswith(f"stopped by SIGTERM ({said}")
    assert "1 rows sent were left without HubSpot's answer" in report["error"]
    assert [e.state for e in entries(tmp_path)] == [MissingState.SENDING]
    assert "00000" not in live(box)  # HubSpot carried it out
    box.config.latency = 0.0
    again = run_cli(*_command(box, tmp_path, mapping, data, "3.xlsx")[3:])
    assert again.code == 0, again.message
    assert [e.state for e in entries(tmp_path)] == [MissingState.DONE]
    archives = [r for r in box.received if r.path.endswith("/batch/archive")]
    assert len(archives) == 1  # settled by reading, never sent twice


def test_a_signal_during_an_archive_records_its_answer(
    make_sandbox: Callable[..., Sandbox], run_cli: Runner, tmp_path: Path
) -> None:
    # One signal, the wait long enough: the answer is taken and recorded, as before.
    box = make_sandbox()
    mapping = write_mapping(tmp_path / "m.yaml", ARCHIVE)
    first = _command(box, tmp_path, mapping, catalogue(tmp_path / "c.csv", range(20)), "1.xlsx")
    assert run_cli(*first[3:]).code == 0
    box.config.latency = 1.5
    data = catalogue(tmp_path / "c.csv", range(1, 20))
    code, err, _ = _signalled_at(
        box, _command(box, tmp_path, mapping, data, "2.xlsx"), "/batch/archive", 1, "30"
    )
    assert code == 143, err
    assert "waiting up to 30 s for the batch in flight" in err
    (line,) = read_sheet(tmp_path / "2.xlsx", "Missing")
    assert line["action"] == "archived"
    assert [e.state for e in entries(tmp_path)] == [MissingState.DONE]


def test_a_signal_while_set_values_are_written_back_records_the_answer(
    make_sandbox: Callable[..., Sandbox], run_cli: Runner, tmp_path: Path
) -> None:
    # A key the rule had set is back: its earlier values are written back from the sender
    # thread, so a signal waits for that answer and the journal records it (`returned`),
    # instead of cutting the request off with the record left `returning`.
    box = make_sandbox()
    with_status(box)
    mapping = write_mapping(tmp_path / "m.yaml", SET)
    full = catalogue(tmp_path / "c.csv", range(20))
    assert run_cli(*_command(box, tmp_path, mapping, full, "1.xlsx")[3:]).code == 0
    for record in box.records("products"):
        box.store.update("products", record["id"], {"status": "active"})
    short = catalogue(tmp_path / "s.csv", range(1, 20))
    assert run_cli(*_command(box, tmp_path, mapping, short, "2.xlsx")[3:]).code == 0
    assert live(box)["00000"]["properties"]["status"] == "discontinued"
    box.config.latency = 1.5
    code, err, _ = _signalled_at(
        box, _command(box, tmp_path, mapping, full, "3.xlsx"), "/batch/update", 1, "30"
    )
    assert code == 143, err
    assert "waiting up to 30 s for the batch in flight" in err
    assert live(box)["00000"]["properties"]["status"] == "active"
    assert [e.state for e in entries(tmp_path)] == [MissingState.RETURNED]


@pytest.mark.parametrize(("ending", "signals", "wait"), ENDINGS, ids=[e[0] for e in ENDINGS])
def test_a_signal_during_the_write_rule_reads_waits_at_most_stop_wait(
    make_sandbox: Callable[..., Sandbox],
    run_cli: Runner,
    tmp_path: Path,
    ending: str,
    signals: int,
    wait: str,
) -> None:
    # The read of HubSpot's values for if_empty takes 8 s: the run leaves it, sends nothing,
    # and says every row not sent; the next run reads again and sends them.
    box = make_sandbox()
    mapping = write_mapping(tmp_path / "m.yaml", RULES)
    skus = [f"S-{i:03d}" for i in range(30)]
    rows = [[s, f"Name {i}", "1", f"text {i}", "Brand"] for i, s in enumerate(skus)]
    data = write_csv(tmp_path / "p.csv", [HEADER, *rows])
    assert run_cli(*_command(box, tmp_path, mapping, data, "1.xlsx")[3:]).code == 0
    write_csv(data, [HEADER, *[[s, n, "2", f"new {d}", b] for s, n, _, d, b in rows]])
    box.config.latency = 8.0
    before = len(box.received)
    code, err, took = _signalled_at(
        box, _command(box, tmp_path, mapping, data, "2.xlsx"), "/batch/read", signals, wait
    )
    assert code == 143, err
    assert "Traceback" not in err
    assert took < 5.0, err  # the answer, 7.4 s away at the last signal, was not waited for
    said = (
        "a second signal, SIGTERM"
        if ending == "second-signal"
        else "HubSpot had not answered within 1 s"
    )
    report = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert report["error"].startswith(f"stopped by SIGTERM ({said}")
    assert "the reads in flight were left" in report["error"]
    sheet = read_sheet(tmp_path / "2.xlsx")
    assert {r["status"] for r in sheet} == {"not_sent"}
    assert not [r for r in box.received[before:] if r.path.endswith("/batch/update")]
    box.config.latency = 0.0
    again = run_cli(*_command(box, tmp_path, mapping, data, "3.xlsx")[3:])
    assert again.code == 0, again.message
    assert {r["properties"]["price"] for r in box.records("products")} == {"2"}


# --- private log files ----------------------------------------------------------------------


def test_a_log_file_an_older_version_left_open_to_others_is_made_private(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "import.log"
    log.write_text("2026-01-01T00:00:00+0000 INFO an earlier run\n", encoding="utf-8")
    log.chmod(0o644)  # as an older version, under umask 022, made it
    data = catalogue(tmp_path / "c.csv", range(3))
    mapping = write_mapping(tmp_path / "m.yaml", ARCHIVE)
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--out", tmp_path / "o.xlsx", "--log-file", log)  # fmt: skip
    assert result.code == 0, result.message
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert text.startswith("2026-01-01T00:00:00+0000 INFO an earlier run\n")  # appended to
    assert "loaded 3 rows" in text


def test_a_log_file_given_to_a_run_refused_at_start_is_made_private(
    run_cli: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No token: the run ends before its logging starts, and only the error line is appended.
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    log = tmp_path / "import.log"
    log.write_text("", encoding="utf-8")
    log.chmod(0o644)
    data = catalogue(tmp_path / "c.csv", range(3))
    mapping = write_mapping(tmp_path / "m.yaml", ARCHIVE)
    result = run_cli("run", "-m", mapping, data, "--state-dir", tmp_path / "st",
                     "--log-file", log)  # fmt: skip
    assert result.code == 2, result.message
    assert " ERROR " in log.read_text(encoding="utf-8")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_log_file_that_is_a_pipe_is_left_as_it_is(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # /dev/stderr or a named pipe as the log file: nothing to tighten, the run goes on.
    pipe = tmp_path / "log.fifo"
    os.mkfifo(pipe, 0o644)
    lines: list[bytes] = []
    reader = subprocess.Popen(["cat", str(pipe)], stdout=subprocess.PIPE)
    data = catalogue(tmp_path / "c.csv", range(3))
    mapping = write_mapping(tmp_path / "m.yaml", ARCHIVE)
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--out", tmp_path / "o.xlsx", "--log-file", pipe)  # fmt: skip
    out, _ = reader.communicate(timeout=30)
    lines = out.splitlines()
    assert result.code == 0, result.message
    assert any(b"loaded 3 rows" in line for line in lines)
    assert stat.S_IMODE(pipe.lstat().st_mode) == 0o644


# --- bzip2 and LZMA workbook parts ----------------------------------------------------------


def _bomb(tmp: Path, method: int) -> Path:
    """A workbook whose sheet part is compressed with `method` and inflates to 64 MB while
    its zip directory (and its local header) declare 5,000 bytes, as a bomb's do."""
    base = write_xlsx(tmp / "base.xlsx", [["SKU", "Name"], ["1", "a"]])
    path = tmp / f"bomb-{method}.xlsx"
    name = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename == name:
                out.writestr(name, bytes(64 << 20), compress_type=method)
            else:
                out.writestr(info.filename, src.read(info))
    raw = bytearray(path.read_bytes())
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = raw.find(signature)
        while at >= 0:
            if raw[at + name_at : at + name_at + len(name)] == name.encode():
                raw[at + size_at : at + size_at + 4] = struct.pack("<I", 5_000)
            at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(
    ("method", "name"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")]
)
def test_a_bzip2_or_lzma_bomb_is_refused_before_it_is_inflated(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, method: int, name: str
) -> None:
    bomb = _bomb(tmp_path, method)
    part = zipfile.ZipFile(bomb).getinfo("xl/worksheets/sheet1.xml")
    assert (part.compress_type, part.file_size) == (method, 5_000)
    said = (
        f"{bomb}: its part xl/worksheets/sheet1.xml is compressed with {name} (zip method "
        f"{method}), which spreadsheet applications do not write and this tool does not read"
    )
    with pytest.raises(InputFileError) as checked:
        check_unzipped(bomb)  # the check made before any reader opens the workbook
    assert str(checked.value).startswith(said)
    with pytest.raises(InputFileError):
        inflate_part(bomb, part)  # the sheet's XML read for what calamine leaves out
    mapping = write_mapping(tmp_path / "m.yaml", ARCHIVE)
    result = run_cli("run", "-m", mapping, bomb, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--out", tmp_path / "o.xlsx")  # fmt: skip
    assert result.code == 2, result.message
    assert said in result.err
    assert "open it in Excel and save it again, or save it as CSV; nothing was sent" in result.err
    assert not sandbox.records("products")


# --- the retry workbook ---------------------------------------------------------------------


def test_a_retry_workbook_cuts_a_cell_too_long_for_excel_and_keeps_it_whole_beside(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # 20,000 emoji are 40,000 UTF-16 units: too long for a cell as Excel counts.
    emoji = "\N{GRINNING FACE}" * 20_000
    rows = [["SKU", "Name", "Price", "Notes"], ["1", "a", "1", "x"], ["2", emoji, "dear", emoji]]
    data = write_xlsx(tmp_path / "in.xlsx", rows)
    mapping = write_mapping(
        tmp_path / "m.yaml",
        "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
        "  Price: {property: price, type: number}\n",
    )
    summary = tmp_path / "s.json"
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                     tmp_path / "st", "--summary-json", summary)  # fmt: skip
    assert result.code == 1, result.message
    retry = Path(json.loads(summary.read_text(encoding="utf-8"))["retry_file"])
    sheet = openpyxl.load_workbook(retry).active
    assert sheet is not None
    cells = [str(c.value) for c in sheet[2]]  # the header, then the one row to fix
    note = (
        "… [cut: 20,000 characters (40,000 as Excel counts them), over Excel's 32,767; whole "
        f"in {retry.stem}-long-cells.csv]"
    )
    for cell in (cells[1], cells[3]):
        assert len(cell.encode("utf-16-le")) // 2 <= EXCEL_MAX_CELL
        assert cell.endswith(note)
    side = retry.with_name(f"{retry.stem}-long-cells.csv")
    with side.open(encoding="utf-8", newline="") as fh:
        kept = {(r["row"], r["column"]): r["value"] for r in csv.DictReader(fh)}
    assert kept == {("3", "Name"): emoji, ("3", "Notes"): emoji}
