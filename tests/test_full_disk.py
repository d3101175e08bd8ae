"""No room where the tool writes, and workbooks it cannot read, are the machine's or the file's
doing, never "a bug in hubspot-import" (exit 2, not 4): a journal that outgrows the process's
file size limit mid-run, a journal on a full disk, and a workbook part compressed by another
method than stored or deflate, or encrypted."""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import struct
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from importer.core.errors import ConfigError, InputFileError, StateUnwritable
from importer.sandbox import Sandbox
from importer.sheets.read_limits import check_unzipped
from importer.state.journal import BatchRow, Journal

from .conftest import SKU_NAME_PRICE, TOKEN, CliRun, write_csv, write_mapping, write_xlsx

Runner = Callable[..., CliRun]
ROWS = 3_000
FILE_SIZE_LIMIT = 1_000_000
"""Bytes any file of the run may grow to: its journal reaches it after some hundreds of rows
are created, well before the last (the write-ahead log grows by ~100 KB a batch)."""


# --- a journal that cannot be written -------------------------------------------------------


def _limited(limit: int) -> Callable[[], None]:
    """Set in the child before it runs: no file it writes may grow past `limit` bytes."""

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


def _run(box: Sandbox, tmp: Path, data: Path, tag: str, limit: int | None) -> tuple[int, str]:
    """A run of `data` in its own process (under a file size limit, if given): its exit code
    and standard error."""
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(tmp / "m.yaml"), str(data),
        "--base-url", box.url, "--state-dir", str(tmp / "state"), "--concurrency", "4",
        "--out", str(tmp / f"{tag}.xlsx"), "--summary-json", str(tmp / f"{tag}.json"),
    ]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited(limit) if limit is not None else None,
        check=False,
    )
    return done.returncode, done.stderr


def _skus(box: Sandbox) -> Counter[str]:
    return Counter(str(r["properties"].get("hs_sku")) for r in box.records("products"))


def _open_batches(journal: Path) -> int:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM batches WHERE state = 'sent'").fetchone()
    return int(count)


def test_a_journal_that_outgrows_the_file_size_limit_mid_run_is_exit_2_and_settled_next_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The journal stops taking writes after records were created (in a sender's thread):
    exit 2 naming the journal, its folder, the room there and the limit to raise, the summary
    written with the run's id; run again without the limit, the batches left open are
    settled and no record is made twice."""
    write_mapping(tmp_path / "m.yaml", SKU_NAME_PRICE)
    rows = [[f"{i:05d}", f"Product {i} {'x' * 40}", "9.50"] for i in range(ROWS)]
    data = write_csv(tmp_path / "p.csv", [["SKU", "Name", "Price"], *rows])
    code, err = _run(sandbox, tmp_path, data, "full", FILE_SIZE_LIMIT)
    assert code == 2, err
    assert "internal error" not in err
    assert "Traceback" not in err
    made = _skus(sandbox)
    assert 0 < sum(made.values()) < ROWS  # stopped mid-run, after records were created
    (journal,) = (tmp_path / "state").glob("*.sqlite")
    summary = json.loads((tmp_path / "full.json").read_text(encoding="utf-8"))
    run_id = summary["run_id"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", str(run_id)), summary
    said = [line for line in err.splitlines() if line.startswith("hubspot-import:")]
    state = tmp_path / "state"
    assert said == [
        f"hubspot-import: error: the journal {journal} cannot be written (disk I/O error): it "
        "has grown to the largest file this process may write, 1.0 MB (ulimit -f); "
        f"{state} has {said[0].split(f'{state} has ', 1)[1].split(' free. ', 1)[0]} free. "
        "Raise that limit (`ulimit -f unlimited` in the shell or script that starts the run; "
        "LimitFSIZE=infinity in a systemd unit), then run again: the next run settles what "
        f"run {run_id} sent before it sends anything (`hubspot-import show {run_id} --out "
        "FILE.xlsx` writes its results)."
    ]
    assert (summary["exit_code"], summary["error"]) == (2, said[0].removeprefix("hubspot-import: "))
    left_open = _open_batches(journal)
    assert left_open >= 1  # the senders' batches in flight, their answers never recorded

    code, err = _run(sandbox, tmp_path, data, "again", None)
    assert code == 0, err
    assert err.count(f"of run {run_id} left open by a crash") == left_open
    after = _skus(sandbox)
    assert len(after) == ROWS
    assert max(after.values()) == 1  # no record made twice
    counts = json.loads((tmp_path / "again.json").read_text(encoding="utf-8"))["counts"]
    assert counts["created"] + counts["unchanged"] == ROWS
    assert _open_batches(journal) == 0


def _row(n: int) -> BatchRow:
    return BatchRow(
        row_key=f"key:hs_sku={n:05d}",
        key_value=f"{n:05d}",
        trace_id=f"t{n}" + "x" * 200,
        sent_hash="h" * 64,
        source_row=n + 2,
    )


def _fill(journal: Journal, sent: list[int]) -> None:
    """Record batches of 100 rows until the journal refuses one; `sent` gets their ids."""
    for n in range(200):
        rows = [_row(n * 100 + i) for i in range(100)]
        sent.append(journal.begin_batch("run-1", "create", rows))


def test_a_journal_on_a_full_disk_names_its_folder_and_room_and_writes_again_once_there_is(
    tmp_path: Path,
) -> None:
    """SQLite's own "database or disk is full" (here its page limit, which fails as a full
    disk does) is StateUnwritable: a ConfigError (exit 2) naming the journal, its folder and
    the room there, the fix, and the run begun; the journal takes the next write once there
    is room (the failed transaction was ended, not left open)."""
    path = tmp_path / "state" / "j.sqlite"
    journal = Journal(path, lock=True)
    journal.start_run(
        "run-1", input_file="p.csv", sheet=None, mapping_file="m.yaml", mode="upsert",
        base_url="http://127.0.0.1", object_type="products",
    )  # fmt: skip
    (pages,) = journal._db.execute("PRAGMA page_count").fetchone()
    journal._db.execute(f"PRAGMA max_page_count = {pages + 4}")
    sent: list[int] = []
    with pytest.raises(StateUnwritable) as refused:
        _fill(journal, sent)
    assert isinstance(refused.value, ConfigError)
    assert refused.value.run_id == "run-1"
    folder = path.parent
    said = str(refused.value)
    assert said == (
        f"the journal {path} cannot be written (database or disk is full): {folder} has "
        f"{said.split(f'{folder} has ', 1)[1].split(' free. ', 1)[0]} free. Make room there, "
        f"or move {folder} (its journals with it) to a disk with room and give --state-dir "
        "its new place, then run again: the next run settles what run run-1 sent before it "
        "sends anything (`hubspot-import show run-1 --out FILE.xlsx` writes its results)."
    )
    journal._db.execute("PRAGMA max_page_count = 1073741823")
    more = journal.begin_batch("run-1", "create", [_row(999_999)])
    assert [b.batch_id for b in journal.open_batches()] == [*sent, more]
    journal.close()


# --- workbook parts that are not stored or deflated -----------------------------------------

SHEET = "xl/worksheets/sheet1.xml"


def _marked(tmp: Path, name: str, method: int | None, flag: int | None) -> Path:
    """A workbook whose sheet part says it is compressed with `method` and has the flags
    `flag` (in its local header and its zip directory both), as Windows' and 7-Zip's zip
    tools write them; its bytes stay deflated."""
    base = write_xlsx(tmp / "base.xlsx", [["SKU", "Name", "Price"], ["00001", "a", "1.5"]])
    raw = bytearray(base.read_bytes())
    for signature, flag_at, method_at, length_at, name_at in (
        (b"PK\x03\x04", 6, 8, 26, 30),
        (b"PK\x01\x02", 8, 10, 28, 46),
    ):
        at = raw.find(signature)
        while at >= 0:
            (length,) = struct.unpack("<H", raw[at + length_at : at + length_at + 2])
            if raw[at + name_at : at + name_at + length] == SHEET.encode():
                if method is not None:
                    raw[at + method_at : at + method_at + 2] = struct.pack("<H", method)
                if flag is not None:
                    raw[at + flag_at : at + flag_at + 2] = struct.pack("<H", flag)
            at = raw.find(signature, at + 4)
    path = tmp / name
    path.write_bytes(bytes(raw))
    return path


def _read_by(run_cli: Runner, box: Sandbox, tmp: Path, command: str, book: Path) -> CliRun:
    mapping = write_mapping(tmp / "m.yaml", SKU_NAME_PRICE)
    return run_cli(command, "-m", mapping, book, "--base-url", box.url, "--state-dir",
                   tmp / "st", "--out", tmp / f"{command}.xlsx")  # fmt: skip


def _writes(box: Sandbox) -> list[str]:
    return [r.path for r in box.received if r.method != "GET" and "/batch/read" not in r.path]


@pytest.mark.parametrize(
    ("method", "named"),
    [(9, "Deflate64 (zip method 9)"), (93, "Zstandard (zip method 93)"), (7, "zip method 7")],
    ids=["deflate64", "zstd", "unknown"],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_workbook_part_compressed_by_another_method_than_deflate_is_exit_2_before_sending(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, method: int, named: str, command: str
) -> None:
    book = _marked(tmp_path, f"m{method}.xlsx", method, None)
    said = (
        f"{book}: its part {SHEET} is compressed with {named}, which this tool does not read "
        "(it reads deflate, which Excel writes); it was not read. If the workbook is genuine, "
        "open it in Excel and save it again, or save it as CSV; nothing was sent."
    )
    with pytest.raises(InputFileError, match=re.escape(said)):
        check_unzipped(book)
    result = _read_by(run_cli, sandbox, tmp_path, command, book)
    assert result.code == 2, result.err
    assert result.messages == [f"hubspot-import: error: {said}"]
    assert "Traceback" not in result.err
    assert _writes(sandbox) == []
    # The same workbook with every part stored, not compressed, is read as ever.
    stored = tmp_path / "stored.xlsx"
    with zipfile.ZipFile(tmp_path / "base.xlsx") as src, zipfile.ZipFile(stored, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_STORED)
    assert _read_by(run_cli, sandbox, tmp_path, command, stored).code == 0


@pytest.mark.parametrize(
    ("method", "flag", "how"),
    [
        (None, 0x1, "a zip password"),
        (99, 0x1, "AES, zip method 99"),
        (99, None, "AES, zip method 99"),
    ],
    ids=["zip-password", "aes", "aes-unflagged"],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_an_encrypted_workbook_part_is_exit_2_saying_the_workbook_is_encrypted(
    run_cli: Runner,
    sandbox: Sandbox,
    tmp_path: Path,
    method: int | None,
    flag: int | None,
    how: str,
    command: str,
) -> None:
    book = _marked(tmp_path, "locked.xlsx", method, flag)
    result = _read_by(run_cli, sandbox, tmp_path, command, book)
    assert result.code == 2, result.err
    assert result.messages == [
        f"hubspot-import: error: {book}: its part {SHEET} is encrypted ({how}): the workbook "
        "is encrypted (password-protected), and this tool cannot read it; it was not read. "
        "Remove the password in Excel (or in the zip tool that set it), or save it as CSV; "
        "nothing was sent."
    ]
    assert "Traceback" not in result.err
    assert _writes(sandbox) == []
