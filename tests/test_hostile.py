"""A generated hostile suite: encodings, cell values, file shapes, paths, permissions,
environment variables, HubSpot misbehaving, and signals, a few hundred cases through `run`.

Every case is held to the same promises: no traceback, the documented exit code, nothing
wrong created in HubSpot (only the input's own keys, each once), and every row sent recorded
(each record HubSpot holds is in the workbook, `created`, or `uncertain` after a signal). The
cases share one sandbox, each keyed by a prefix of its own; most run in this process through
`run_cli`, and only the signals in a process of their own. The printed line counts them."""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest

from importer.sandbox import Fault, Sandbox, SandboxConfig

from .conftest import TOKEN, CliRun, read_sheet, write_mapping

Runner = Callable[..., CliRun]
SEED = int(os.environ.get("HUBSPOT_IMPORT_FUZZ_SEED", "20261207"))
MAPPING = """\
object_type: products
key: SKU
columns:
  SKU: {property: hs_sku, required: true}
  Name: name
  Price: {property: price, type: number}
  Launched: {property: launch_date, type: date}
"""
HEADER = ["SKU", "Name", "Price", "Launched"]
RAN = frozenset({0, 1})
"""A run that got to its end: every row created, or some row not."""
REFUSED = frozenset({2})
"""A mistake in the files, options or environment: nothing sent."""
NAMED = frozenset({"created", "updated", "unchanged", "incomplete", "uncertain"})
"""Statuses whose row names its record. (A record a server carried out and then answered as
refused is created again by the split, found to exist, and updated: `updated`, by its id.)"""
ROOT = os.geteuid() == 0
TALLY: Counter[str] = Counter()


@dataclass
class Case:
    """One hostile case: the files it writes, the command line, the environment, and the
    exit codes the documentation allows for it."""

    name: str
    expected: frozenset[int]
    rows: list[list[str]] = field(default_factory=list)
    """Data rows of the CSV written as `input.csv` (the header is HEADER), unless `raw`; their
    keys get the case's prefix first, so that what a case created is known to be its own."""
    raw: bytes | Callable[[list[list[str]]], bytes] | None = None
    """The input's bytes, or what makes them of the rows (once their keys are prefixed)."""
    suffix: str = ".csv"
    args: list[str] = field(default_factory=list)
    """Besides `run -m MAPPING INPUT` (`{input}`, `{dir}` are filled in)."""
    env: dict[str, str | None] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    """Makes what the case needs in its folder (links, folders, odd files)."""
    input_arg: str | None = None
    """What is given as INPUT when it is not the file written (`{dir}` filled in)."""
    faults: list[Fault] = field(default_factory=list)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(SandboxConfig(legacy_paths=False)).start()
    yield sandbox
    sandbox.stop()


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    """The process's environment with `changes` (None: unset) while the case runs."""
    before = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    lines = [",".join(_quoted(c) for c in row) for row in [HEADER, *rows]]
    return (newline.join(lines) + newline).encode(encoding)


def _quoted(cell: str) -> str:
    if any(c in cell for c in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _rows(prefix: str, n: int = 3) -> list[list[str]]:
    return [[f"{prefix}-{i}", f"Product {i}", f"{i}.5", f"2026-01-1{i % 10}"] for i in range(n)]


def _run_case(case: Case, n: int, box: Sandbox, run_cli: Runner, tmp_path: Path) -> str:
    """Run one case and hold it to every promise; returns how it ended, for the tally."""
    folder = tmp_path / f"case{n}"
    folder.mkdir()
    mapping = write_mapping(folder / "m.yaml", MAPPING)
    data = folder / f"input{case.suffix}"
    raw = case.raw(case.rows) if callable(case.raw) else case.raw
    data.write_bytes(raw if raw is not None else _csv_bytes(case.rows))
    if case.prepare is not None:
        case.prepare(folder)
    given = (case.input_arg or str(data)).format(dir=folder, input=data)
    out = folder / "o.xlsx"
    args = [a.format(dir=folder, input=data) for a in case.args]
    defaults = {"--out": str(out), "--state-dir": str(tmp_path / "state"),
                "--base-url": box.url}  # fmt: skip
    for option, value in defaults.items():
        if option not in args and not any(a.startswith(f"{option}=") for a in args):
            args += [option, value]
    # `--state-dir=` in a case: the default state folder (the environment decides it).
    args = [a for a in args if a != "--state-dir="]
    out = Path(args[args.index("--out") + 1]) if "--out" in args else out
    for fault in case.faults:
        box.inject(fault)
    before = _held(box)
    try:
        with _environment(case.env):
            result = run_cli("run", "-m", mapping, given, "--no-portal-check",
                             "--portal-id", str(box.portal.portal_id), *args)  # fmt: skip
    finally:
        box._faults.clear()  # a case's faults end with it
    _hold_to_promises(case, result, box, out, before)
    return f"{case.name.split(':')[0]} exit {result.code}"


def _held(box: Sandbox) -> dict[str, str]:
    """Record id -> key of every product HubSpot holds."""
    return {r["id"]: str(r["properties"].get("hs_sku")) for r in box.records("products")}


def _hold_to_promises(
    case: Case, result: CliRun, box: Sandbox, out: Path, before: dict[str, str]
) -> None:
    """No traceback, a documented exit code, nothing wrong created, every row sent recorded."""
    where = f"{case.name}: exit {result.code}\n{result.err[-3000:]}"
    assert "Traceback" not in result.err, where
    assert "internal error" not in result.err, where
    assert result.code in case.expected, where
    now = _held(box)
    mine = [{"id": hid, "sku": sku} for hid, sku in now.items() if hid not in before]
    skus = Counter(r["sku"] for r in mine)
    assert all(n == 1 for n in skus.values()), where  # nothing created twice
    assert not set(skus) & set(before.values()), where  # nor a key HubSpot held already
    if case.rows:
        assert set(skus) <= {_sku(row) for row in case.rows}, where  # the input's own keys
    if result.code in REFUSED:
        assert not mine, where
        return
    if not mine:
        return
    assert out.exists(), where
    held = {r["id"] for r in mine}
    rows = read_sheet(out)
    recorded = {str(r["hubspot_id"]) for r in rows if r["status"] in NAMED}
    # Every record HubSpot holds is in the workbook: by its id, or, for a batch a second
    # signal left unanswered, among its rows said uncertain (whose ids no answer gave).
    unsaid = sum(1 for r in rows if r["status"] == "uncertain" and not r["hubspot_id"])
    assert len(held - recorded) <= unsaid, where


def _sku(row: list[str]) -> str:
    return row[0].strip() if row else ""


def _tally(name: str, outcomes: Counter[str], cases: int) -> None:
    TALLY[name] += cases
    print(f"hostile {name}: {cases} cases: {dict(sorted(outcomes.items()))}")


def _run_all(
    name: str, cases: list[Case], box: Sandbox, run_cli: Runner, tmp_path: Path, start: int
) -> None:
    outcomes: Counter[str] = Counter()
    for n, case in enumerate(cases, start=start):
        case.rows = [[f"h{n}-{row[0]}", *row[1:]] if row else [] for row in case.rows]
        outcomes[_run_case(case, n, box, run_cli, tmp_path)] += 1
    _tally(name, outcomes, len(cases))


# --- encodings ---------------------------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252",
             "latin-1", "mac_roman", "cp850", "shift_jis", "gb18030"]  # fmt: skip
TEXTS = ["Café crème", "Zoë", "Łódź", "naïve", "日本語", "Ελληνικά", "plain"]


def _encoding_cases(rng: random.Random) -> list[Case]:
    cases = []
    for encoding in ENCODINGS:
        for given in (None, encoding, "utf-8"):
            text = rng.choice(TEXTS)
            try:
                text.encode(encoding)
            except UnicodeEncodeError:
                text = "plain"
            rows = [[f"{i}", text, "1", ""] for i in range(3)]
            newline = rng.choice(["\n", "\r\n"])
            args = ["--encoding", given] if given else []
            cases.append(Case(
                f"encoding:{encoding}:{given}", RAN | REFUSED, rows=rows, args=args,
                raw=lambda rows, e=encoding, nl=newline: _csv_bytes(rows, encoding=e, newline=nl),
            ))  # fmt: skip
    damaged = [
        b"\xff\xfe\x00garbage", b"SKU,Name\n1,\x00\x00\x00\n", b"SKU,Name\n1,\xc3\x28\n",
        codecs.BOM_UTF8 + codecs.BOM_UTF8 + b"SKU,Name\n1,a\n", b"SKU,Name\r1,a\r2,b\r",
        b"SKU,Name\n1,a\r\n2,b\r3,c\n", b"\x00S\x00K\x00U\x00\n\x001\x00\n",
        b"SKU;Name\n1;a\n", b"SKU\tName\n1\ta\n", b"SKU|Name\n1|a\n",
    ]  # fmt: skip
    for n, raw in enumerate(damaged):
        cases.append(Case(f"encoding:damaged{n}", RAN | REFUSED, raw=raw))
    return cases


def test_hostile_encodings(box: Sandbox, run_cli: Runner, tmp_path: Path) -> None:
    cases = _encoding_cases(random.Random(SEED))
    assert len(cases) >= 45
    _run_all("encodings", cases, box, run_cli, tmp_path, 1000)


# --- cell values -------------------------------------------------------------------------------

ODD = ["", " ", "\t", "=SUM(A1)", "+1", "-1", "@cmd", "=HYPERLINK(\"x\")", "'quoted", "\"", "a\"b",
       "line\nbreak", "cr\rhere", "\x07bell", "\x00nul", "\u202eevil", "a\u200bb", "\ufeffbom",
       "😀", "\U0001d518\U0001d52b\U0001d526", "Z" * 40_000, "Y" * 70_000, "NaN", "inf",
       "-inf", "1e309", "0x10", "1_000",
       "12,50", "1.234.567,89", "(12)", "$5", "5€", "2026-02-30", "30/02/2026", "0000-00-00",
       "9999-12-31", "1970-01-01T00:00:00Z", "yesterday", "#N/A", "#DIV/0!", "NULL", "None",
       "TRUE", "false", "00420", " padded ", "ß", "İ", "ǅ", "\u00a0", "<script>", "&amp;",
       "]]>", "%s%s%n", "{{7*7}}", "${jndi:ldap://x}", "../../etc/passwd", "C:\\\\x"]  # fmt: skip


def _cell_cases(rng: random.Random) -> list[Case]:
    cases = []
    for n in range(90):
        rows = _rows("v", rng.randint(1, 6))
        for row in rows:
            for j in range(1, 4):
                if rng.random() < 0.5:
                    row[j] = rng.choice(ODD)
            if rng.random() < 0.2:
                row[0] += rng.choice(["", " ", "\t", "😀", "\u00a0", "x" * 200])
        cases.append(Case(f"cells:{n}", RAN, rows=rows))
    return cases


def test_hostile_cell_values(box: Sandbox, run_cli: Runner, tmp_path: Path) -> None:
    cases = _cell_cases(random.Random(SEED + 1))
    _run_all("cell values", cases, box, run_cli, tmp_path, 2000)


# --- file shapes -------------------------------------------------------------------------------


def _xlsx(rows: list[list[object]], *, sheets: int = 1, hidden: bool = False) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [HEADER, *rows]:
        sheet.append(row)
    for n in range(1, sheets):
        book.create_sheet(f"Other {n}").append(["x"])
    if hidden:
        sheet.sheet_state = "hidden"
        book.active = 1
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _damaged_zip(data: bytes, cut: int) -> bytes:
    return data[: len(data) * cut // 10]


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/worksheets/sheet1.xml", b"<" + b"A" * 30_000_000 + b">")
    return buffer.getvalue()


def _shape_cases(rng: random.Random) -> list[Case]:
    good = _rows("s", 3)
    book = _xlsx([list(r) for r in good])

    def titled(rows: list[list[str]]) -> bytes:
        return b"Export of the catalogue\n\n" + _csv_bytes(rows)

    def workbook(rows: list[list[str]]) -> bytes:
        return _xlsx([list(r) for r in rows])

    shapes: list[Case] = [
        Case("shape:empty", REFUSED, raw=b""),
        Case("shape:header-only", RAN | REFUSED, raw=b"SKU,Name,Price,Launched\n"),
        Case("shape:blank-lines", REFUSED, raw=b"\n\n\n\n"),
        Case("shape:spaces", REFUSED, raw=b"   \n \t \n"),
        Case("shape:title-rows", RAN, rows=[list(r) for r in good], raw=titled),
        Case("shape:no-header-match", REFUSED, raw=b"a,b,c\n1,2,3\n"),
        Case("shape:duplicate-headers", REFUSED, raw=b"SKU,SKU,Name\n1,2,a\n"),
        Case("shape:empty-header-cells", RAN | REFUSED, raw=b"SKU,,Name,\n1,,a,\n"),
        Case("shape:ragged-long", RAN, rows=[[*r, "extra", "more"] for r in good]),
        Case("shape:ragged-short", RAN, rows=[r[:1] for r in good]),
        Case("shape:200-columns", RAN,
             raw=(",".join(HEADER + [f"X{i}" for i in range(200)]) + "\nw-1,a,1,\n").encode()),
        Case("shape:stray-quote", RAN | REFUSED, raw=b'SKU,Name\n1,"a\n2,b\n'),
        Case("shape:binary", RAN | REFUSED, raw=bytes(rng.randrange(256) for _ in range(4000))),
        Case("shape:zip-named-csv", REFUSED, raw=book),
        Case("shape:xlsx", RAN, rows=[list(r) for r in good], raw=workbook, suffix=".xlsx"),
        Case("shape:xlsx-two-sheets", RAN, rows=[list(r) for r in good],
             raw=lambda rows: _xlsx(rows, sheets=2), suffix=".xlsx"),  # type: ignore[arg-type]
        Case("shape:xlsx-hidden-first", RAN | REFUSED, rows=[list(r) for r in good],
             raw=lambda rows: _xlsx(rows, sheets=2, hidden=True),  # type: ignore[arg-type]
             suffix=".xlsx"),
        Case("shape:xlsx-no-such-sheet", REFUSED, raw=book, suffix=".xlsx",
             args=["--sheet", "Nope"]),
        Case("shape:xlsx-is-text", REFUSED, raw=b"SKU,Name\n1,a\n", suffix=".xlsx"),
        Case("shape:xls-garbage", REFUSED, raw=b"\xd0\xcf\x11\xe0" + b"\x00" * 600, suffix=".xls"),
        Case("shape:xlsx-encrypted", REFUSED, raw=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600,
             suffix=".xlsx"),
        Case("shape:ods-garbage", REFUSED, raw=b"PK\x03\x04garbage", suffix=".ods"),
        Case("shape:zip-bomb", REFUSED, raw=_bomb(), suffix=".xlsx"),
        Case("shape:one-long-line", REFUSED, raw=b"x" * 2_000_000),
        Case("shape:csv-with-encoding-for-xlsx", REFUSED, raw=book, suffix=".xlsx",
             args=["--encoding", "latin-1"]),
        Case("shape:sheet-for-csv", REFUSED, rows=[list(r) for r in good], args=["--sheet", "1"]),
        Case("shape:header-row-beyond", REFUSED, rows=[list(r) for r in good],
             args=["--header-row", "99"]),
        Case("shape:header-row-2", RAN | REFUSED, rows=[list(r) for r in good],
             args=["--header-row", "2"]),
    ]  # fmt: skip
    for cut in range(1, 10):
        shapes.append(Case(f"shape:xlsx-cut-{cut}", REFUSED, raw=_damaged_zip(book, cut),
                           suffix=".xlsx"))  # fmt: skip
    for n in range(25):  # random truncation and noise in an otherwise good CSV
        raw = _csv_bytes([list(r) for r in good])
        at = rng.randrange(len(raw))
        raw = raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))
        shapes.append(Case(f"shape:noise-{n}", RAN | REFUSED, raw=raw))
    return shapes


def test_hostile_file_shapes(box: Sandbox, run_cli: Runner, tmp_path: Path) -> None:
    cases = _shape_cases(random.Random(SEED + 2))
    assert len(cases) >= 60
    _run_all("file shapes", cases, box, run_cli, tmp_path, 3000)


# --- paths and permissions ---------------------------------------------------------------------


def _link(name: str, target: str) -> Callable[[Path], None]:
    return lambda d: (d / name).symlink_to(target.format(dir=d))


def _folder(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).mkdir(parents=True)


def _file(name: str, text: str = "x") -> Callable[[Path], None]:
    return lambda d: (d / name).write_text(text, encoding="utf-8")


def _mode(name: str, mode: int) -> Callable[[Path], None]:
    return lambda d: (d / name).chmod(mode)


def _path_cases() -> list[Case]:
    good = _rows("p", 2)
    unreadable = REFUSED if not ROOT else RAN  # root reads what no one else may
    cases = [
        Case("path:missing-input", REFUSED, input_arg="{dir}/nope.csv"),
        Case("path:input-is-folder", REFUSED, input_arg="{dir}/sub", prepare=_folder("sub")),
        Case("path:input-through-link", RAN, rows=good, input_arg="{dir}/link.csv",
             prepare=_link("link.csv", "{dir}/input.csv")),
        Case("path:dangling-link", REFUSED, input_arg="{dir}/dead.csv",
             prepare=_link("dead.csv", "{dir}/nowhere.csv")),
        Case("path:link-loop", REFUSED, input_arg="{dir}/loop.csv",
             prepare=lambda d: ((d / "loop.csv").symlink_to(d / "loop2.csv"),
                                (d / "loop2.csv").symlink_to(d / "loop.csv"))),
        Case("path:dev-null", REFUSED, input_arg="/dev/null"),
        Case("path:proc-file", REFUSED, input_arg="/proc/self/status"),
        Case("path:unicode-name", RAN, rows=good, input_arg="{dir}/Zoë café 😀.csv",
             prepare=lambda d: (d / "input.csv").rename(d / "Zoë café 😀.csv")),
        Case("path:newline-name", RAN, rows=good, input_arg="{dir}/a\nb.csv",
             prepare=lambda d: (d / "input.csv").rename(d / "a\nb.csv")),
        Case("path:long-name", RAN, rows=good, input_arg="{dir}/" + "n" * 200 + ".csv",
             prepare=lambda d: (d / "input.csv").rename(d / ("n" * 200 + ".csv"))),
        Case("path:name-too-long", REFUSED, input_arg="{dir}/" + "n" * 300 + ".csv"),
        Case("path:dot-dot", RAN, rows=good, input_arg="{dir}/sub/../input.csv",
             prepare=_folder("sub")),
        Case("path:out-is-folder", REFUSED, rows=good, args=["--out", "{dir}/outdir"],
             prepare=_folder("outdir")),
        Case("path:out-is-input", REFUSED, rows=good, args=["--out", "{input}"]),
        Case("path:out-not-xlsx", REFUSED, rows=good, args=["--out", "{dir}/o.csv"]),
        Case("path:out-folder-is-file", REFUSED, rows=good, args=["--out", "{dir}/f/o.xlsx"],
             prepare=_file("f")),
        Case("path:out-deep-missing", RAN, rows=good, args=["--out", "{dir}/a/b/c/o.xlsx"]),
        Case("path:out-in-proc", REFUSED, rows=good, args=["--out", "/proc/hubspot/o.xlsx"]),
        Case("path:state-is-file", REFUSED, rows=good, args=["--state-dir", "{dir}/sf"],
             prepare=_file("sf")),
        Case("path:state-in-proc", REFUSED, rows=good, args=["--state-dir", "/proc/hubspot"]),
        Case("path:state-empty", REFUSED, rows=good, args=["--state-dir", ""]),
        Case("path:state-through-link", RAN, rows=good, args=["--state-dir", "{dir}/sl"],
             prepare=lambda d: ((d / "real").mkdir(), (d / "sl").symlink_to(d / "real"))),
        Case("path:summary-is-folder", REFUSED, rows=good, args=["--summary-json", "{dir}/sj"],
             prepare=_folder("sj")),
        Case("path:log-is-folder", REFUSED, rows=good, args=["--log-file", "{dir}/lf"],
             prepare=_folder("lf")),
        Case("path:log-in-missing-folder", RAN, rows=good, args=["--log-file", "{dir}/l/x.log"]),
        Case("path:unreadable-input", unreadable, rows=good, prepare=_mode("input.csv", 0)),
        Case("path:state-not-writable", unreadable, rows=good, args=["--state-dir", "{dir}/ro"],
             prepare=lambda d: ((d / "ro").mkdir(), (d / "ro").chmod(0o500))),
        Case("path:out-folder-not-writable", unreadable, rows=good,
             args=["--out", "{dir}/ro/o.xlsx"],
             prepare=lambda d: ((d / "ro").mkdir(), (d / "ro").chmod(0o500))),
        Case("path:lock-is-hard-link", REFUSED, rows=good, args=["--state-dir", "{dir}/st"],
             prepare=lambda d: _lock(d, "hard")),
        Case("path:lock-is-fifo", REFUSED, rows=good, args=["--state-dir", "{dir}/st"],
             prepare=lambda d: _lock(d, "fifo")),
        Case("path:lock-is-link", REFUSED, rows=good, args=["--state-dir", "{dir}/st"],
             prepare=lambda d: _lock(d, "link")),
        Case("path:lock-stale", RAN, rows=good, args=["--state-dir", "{dir}/st"],
             prepare=lambda d: _lock(d, "stale")),
        Case("path:journal-not-a-database", REFUSED, rows=good, args=["--state-dir", "{dir}/st"],
             prepare=lambda d: _lock(d, "journal")),
        Case("path:journal-open-to-all", RAN, rows=good, args=["--state-dir", "{dir}/st"],
             prepare=lambda d: (d / "st").mkdir(mode=0o777)),
    ]  # fmt: skip
    return cases


def _lock(folder: Path, kind: str) -> None:
    """A hostile lock (or journal) where the run's goes."""
    from importer.state.journal import journal_path

    state = folder / "st"
    state.mkdir()
    journal = journal_path(state, os.environ["HOSTILE_BASE_URL"], "products", 4242424)
    lock = journal.with_suffix(".lock")
    precious = folder / "precious.txt"
    precious.write_text("keep me", encoding="utf-8")
    if kind == "hard":
        os.link(precious, lock)
    elif kind == "fifo":
        os.mkfifo(lock)
    elif kind == "link":
        lock.symlink_to(precious)
    elif kind == "stale":
        lock.write_text("pid 999999999 on elsewhere since 2026-01-01T00:00:00+00:00")
    else:
        journal.write_bytes(b"not a database" * 100)


def test_hostile_paths_and_permissions(
    box: Sandbox, run_cli: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTILE_BASE_URL", box.url)
    cases = _path_cases()
    _run_all("paths and permissions", cases, box, run_cli, tmp_path, 4000)
    kept = [p.read_text(encoding="utf-8") for p in tmp_path.glob("case*/precious.txt")]
    assert kept == ["keep me"] * 5  # no lock was ever written through a link or another name


# --- environment variables ---------------------------------------------------------------------


def _environment_cases() -> list[Case]:
    good = _rows("e", 2)
    token = {
        "empty": "", "spaces": "   ", "crlf-inside": f"{TOKEN}\r\nX: 1", "tab": f"{TOKEN}\t",
        "latin-1": f"{TOKEN}é", "emoji": f"{TOKEN}😀", "bearer": f"Bearer {TOKEN}",
        "quoted": f'"{TOKEN}"', "long": "p" * 5_000, "nul": f"{TOKEN}\x00",
    }  # fmt: skip
    refused_tokens = {"empty", "spaces", "crlf-inside", "latin-1", "emoji", "bearer", "long"}
    cases = [
        Case(f"env:token-{name}", REFUSED if name in refused_tokens else RAN | REFUSED,
             rows=good, env={"HUBSPOT_ACCESS_TOKEN": value})
        for name, value in token.items()
        if name != "nul"  # the environment cannot hold a NUL
    ]  # fmt: skip
    cases.append(Case("env:token-trailing-newline", RAN, rows=good,
                      env={"HUBSPOT_ACCESS_TOKEN": f"{TOKEN}\n"}))  # fmt: skip
    for url in ["ftp://x", "file:///etc", "javascript:alert(1)", "api.hubapi.com",
                "http://127.0.0.1:99999", "http://[::1", "https://u:p@api.hubapi.com",
                "http://x/?q=1", "", "http://"]:  # fmt: skip
        cases.append(Case(f"env:base-url-{url!r}", REFUSED, rows=good,
                          args=["--base-url", url] if url else ["--base-url="],
                          env={"HUBSPOT_BASE_URL": url}))  # fmt: skip
    for version in ["v99", "../../x", "2026-13", "😀", "2026-09/../x"]:
        cases.append(Case(f"env:api-version-{version!r}", REFUSED, rows=good,
                          env={"HUBSPOT_API_VERSION": version}))  # fmt: skip
    settings = {
        "HUBSPOT_IMPORT_STOP_WAIT": ["-1", "soon", "99999", "nan"],
        "HUBSPOT_IMPORT_MAX_UNZIPPED_MB": ["0", "lots", "-5"],
        "HUBSPOT_IMPORT_MAX_ZIP_RATIO": ["0", "x"],
    }
    for name, values in settings.items():
        for value in values:
            expected = REFUSED if name == "HUBSPOT_IMPORT_STOP_WAIT" else RAN | REFUSED
            cases.append(Case(f"env:{name}={value}", expected, rows=good, env={name: value}))
    cases += [
        Case("env:proxy-unreadable", REFUSED, rows=good,
             env={"HTTP_PROXY": "http://ops:hunter2@[::1", "NO_PROXY": ""}),
        Case("env:proxy-bad-port", REFUSED, rows=good,
             env={"HTTP_PROXY": "http://proxy:port", "NO_PROXY": ""}),
        Case("env:xdg-data-is-a-file", RAN | REFUSED, rows=good, args=["--state-dir="],
             env={"XDG_DATA_HOME": "/etc/hostname"}),
        Case("env:home-unset", RAN, rows=good, env={"HOME": None}),
        Case("env:tmpdir-missing", RAN, rows=good, env={"TMPDIR": "/nonexistent"}),
        Case("env:stop-wait-zero", RAN, rows=good, env={"HUBSPOT_IMPORT_STOP_WAIT": "0"}),
    ]  # fmt: skip
    return cases


def test_hostile_environment_variables(box: Sandbox, run_cli: Runner, tmp_path: Path) -> None:
    cases = _environment_cases()
    assert len(cases) >= 35
    _run_all("environment", cases, box, run_cli, tmp_path, 5000)


# --- HubSpot misbehaving -----------------------------------------------------------------------


def _server_cases(rng: random.Random) -> list[Case]:
    bodies: list[dict[str, object] | None] = [
        None, {}, {"message": None}, {"message": ["a"]}, {"results": "x"}, {"results": [1, None]},
        {"results": [{"id": None}]}, {"status": "COMPLETE"}, {"errors": "x"},
        {"message": f"echo Bearer {TOKEN}"}, {"message": "x" * 100_000},
    ]  # fmt: skip
    statuses = [200, 201, 204, 207, 400, 404, 409, 413, 418, 423, 429, 500, 502, 503, 504]
    cases = []
    for _ in range(45):
        status, body = rng.choice(statuses), rng.choice(bodies)
        path = rng.choice(["/batch/create", "/batch/", "/search"])
        # Carried out, then answered: as a gateway's 5xx may be (a refusal never is).
        after = status >= 500 and rng.random() < 0.5
        fault = Fault(status=status, body=body, path=path, times=rng.randint(1, 3), after=after)
        cases.append(Case(f"server:{status}:{path}:{str(body)[:40]}", RAN | REFUSED,
                          rows=_rows("f", rng.randint(1, 4)), faults=[fault],
                          args=["--max-attempts", rng.choice(["1", "2"])]))  # fmt: skip
    for n, fault in enumerate([Fault(drop=True), Fault(drop=True, after=True),
                               Fault(canceled=True), Fault(drop=True, times=5)]):  # fmt: skip
        cases.append(Case(f"server:connection-{n}", RAN | REFUSED, rows=_rows("d", 3),
                          faults=[fault], args=["--max-attempts", "2"]))  # fmt: skip
    return cases


def test_hostile_server(box: Sandbox, run_cli: Runner, tmp_path: Path) -> None:
    cases = _server_cases(random.Random(SEED + 4))
    _run_all("server", cases, box, run_cli, tmp_path, 6000)


# --- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "signum", "senders"),
    [
        ("before-upload", signal.SIGTERM, "1"),
        ("mid-batch", signal.SIGTERM, "1"),
        ("mid-batch", signal.SIGINT, "1"),
        ("mid-batch", signal.SIGTERM, "4"),
        ("mid-batch", signal.SIGINT, "4"),
        ("twice", signal.SIGTERM, "1"),
        ("twice", signal.SIGINT, "4"),
        ("twice-mixed", signal.SIGINT, "1"),
    ],
)
def test_hostile_signals(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, when: str, signum: int, senders: str
) -> None:
    box = make_sandbox(latency=1.0)
    rows = [[f"g-{i:04d}", f"P {i}", "1", ""] for i in range(150)]
    data = tmp_path / "c.csv"
    data.write_bytes(_csv_bytes(rows))
    mapping = write_mapping(tmp_path / "m.yaml", MAPPING)
    out = tmp_path / "o.xlsx"
    command = [
        sys.executable, "-m", "importer", "run", "-m", str(mapping), str(data),
        "--base-url", box.url, "--state-dir", str(tmp_path / "st"), "--out", str(out),
        "--concurrency", senders, "--batch-size", "50",
    ]  # fmt: skip
    if when != "before-upload":  # no portal reads: the batches come at once
        command += ["--no-portal-check", "--portal-id", str(box.portal.portal_id)]
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as victim:
        # A loaded machine can take long to start Python and pandas: wait for the request
        # that shows the run is under way (its signal handlers installed), or fail saying so.
        deadline = time.monotonic() + 120
        wanted = "/account-info" if when == "before-upload" else "/batch/create"
        while not any(wanted in r.path for r in box.received):
            assert time.monotonic() < deadline, f"no {wanted} request within 120 s"
            assert victim.poll() is None, victim.communicate()[1]
            time.sleep(0.01)
        victim.send_signal(signum)
        if when.startswith("twice"):
            time.sleep(0.2)
            victim.send_signal(signal.SIGTERM if when == "twice-mixed" else signum)
        _, err = victim.communicate(timeout=60)
    case = Case(f"signal:{when}:{signal.Signals(signum).name}:{senders}",
                frozenset({128 + signum}), rows=rows)  # fmt: skip
    _hold_to_promises(case, CliRun(victim.returncode, "", err), box, out, {})
    if when != "before-upload":
        statuses = Counter(r["status"] for r in read_sheet(out))
        assert statuses["created"] + statuses["uncertain"] == len(box.records("products"))
        assert set(statuses) <= {"created", "uncertain", "not_sent"}
    TALLY["signals"] += 1


def test_the_hostile_suite_has_hundreds_of_cases() -> None:
    """Run last (file order): the families above counted their cases."""
    if len(TALLY) < 6:
        pytest.skip("run with the whole file to count the cases")
    print(f"hostile suite: {sum(TALLY.values())} cases: {dict(TALLY)}")
    assert sum(TALLY.values()) >= 300
