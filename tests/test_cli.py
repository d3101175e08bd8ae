"""End to end: the CLI's main() against the sandbox over real HTTP, the workbook read back."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
import requests

from importer.sandbox import Fault, Sandbox

from .conftest import (
    PRODUCT_ROWS,
    PRODUCTS_MAPPING,
    ROOT,
    TOKEN,
    CliRun,
    creates,
    read_sheet,
    write_csv,
    write_mapping,
    write_xlsx,
)

Runner = Callable[..., CliRun]


@pytest.fixture
def products(tmp_path: Path) -> tuple[Path, Path]:
    data = write_xlsx(tmp_path / "products.xlsx", PRODUCT_ROWS, sheet="Catalogue")
    return data, write_mapping(tmp_path / "products.yaml", PRODUCTS_MAPPING)


def test_xlsx_import_end_to_end(
    run_cli: Runner, sandbox: Sandbox, products: tuple[Path, Path], tmp_path: Path
) -> None:
    data, mapping = products
    out = tmp_path / "results.xlsx"
    result = run_cli("run", "--mapping", mapping, data, "--base-url", sandbox.url, "--out", out)

    assert result.code == 1  # one row is invalid
    assert result.messages[:3] == [
        'products.xlsx, sheet Catalogue, cell C4 (Price): "12,50" is not a number; use a dot as '
        'decimal separator, or say number: {decimal: ","} in the mapping',
        'products.xlsx, sheet Catalogue, cell D4 (Launched): "2026-02-30" is not a date; write '
        "it as 2026-11-23 (format %Y-%m-%d) or use a date cell",
        'products.xlsx, sheet Catalogue, cell E4 (In stock): "maybe" is not a yes/no value; '
        "write true or false (yes/no and 1/0 work too)",
    ]
    assert result.out.splitlines() == [
        "products: 4 rows: 3 created, 1 invalid.",
        f"Results: {out}",
        "Retry file (the invalid, failed and incomplete rows, to fix and import again): "
        f"{next(tmp_path.glob('products-retry-*.xlsx'))}",
    ]

    (body,) = creates(sandbox)
    inputs = sorted(body["inputs"], key=lambda i: i["properties"]["hs_sku"])
    assert [i["properties"] for i in inputs] == [
        {
            "hs_sku": "00420",
            "name": "Hoodie, grey",
            "price": "45",
            "launch_date": "2026-11-23",
            "in_stock": "true",
        },
        {
            "hs_sku": "00421",
            "name": 'Mug "XL"',
            "price": "12.5",
            "launch_date": "2025-01-02",
            "in_stock": "false",
        },
        {"hs_sku": "00423", "name": "Écharpe", "price": "7"},  # empty cells are not sent
    ]
    assert all(i["associations"] == [] for i in inputs)
    assert len({i["objectWriteTraceId"] for i in inputs}) == 3
    request = next(r for r in sandbox.received if r.path.endswith("/batch/create"))
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"

    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Summary", "Results", "Issues"]
    rows = list(wb["Results"].iter_rows(values_only=True))
    assert rows[0] == (
        "source_row",
        "status",
        "hubspot_id",
        "message",
        "SKU",
        "Name",
        "Price",
        "Launched",
        "In stock",
    )
    ids = {r["properties"]["hs_sku"]: r["id"] for r in sandbox.records("products")}
    assert rows[1] == (
        2,
        "created",
        ids["00420"],
        None,
        "00420",
        "Hoodie, grey",
        "45",
        "2026-11-23",
        "TRUE",
    )
    assert rows[2][:5] == (3, "created", ids["00421"], None, "00421")
    assert rows[3][:3] == (4, "invalid", None)
    assert rows[3][3].startswith('C4 (Price): "12,50" is not a number; use a dot as decimal')
    assert rows[4][:5] == (5, "created", ids["00423"], None, "00423")
    issues = read_sheet(out, "Issues")
    assert [(i["cell"], i["problem"]) for i in issues] == [
        ("Catalogue!C4", "not_a_number"),
        ("Catalogue!D4", "not_a_date"),
        ("Catalogue!E4", "not_a_bool"),
    ]
    summary = dict(wb["Summary"].iter_rows(values_only=True))
    assert summary["Object type"] == "products"
    assert summary["Input file"] == str(data)
    assert summary["Sheet"] == "Catalogue"
    assert (summary["created"], summary["invalid"], summary["failed"]) == (3, 1, 0)
    assert summary["Started"]
    assert summary["Finished"]


def test_csv_with_associations(run_cli: Runner, sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "carts.csv",
        [
            ["Cart ref", "Total", "Created", "Paid", "Status", "Contact ids"],
            ["C-001", "19.90", "23/11/2026", "yes", "open", "1001;1004"],
            ["C-002", "5", "24/11/2026", "no", "abandoned", ""],
            ["C-003", "7.5", "25/11/2026", "no", "open", "12;abc"],
        ],
        delimiter=";",
    )
    mapping = write_mapping(
        tmp_path / "carts.yaml",
        (ROOT / "mappings" / "carts.yaml")
        .read_text(encoding="utf-8")
        .replace("  Cart name: hs_cart_name\n", "")
        .replace("  Store: hs_source_store\n", ""),
    )
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--out", tmp_path / "r.xlsx"
    )
    assert result.code == 1
    assert result.messages[0] == (
        'carts.csv, cell F4 (Contact ids): "abc" is not a record id; give HubSpot record ids '
        '(numbers such as 12345), separated by ";"'
    )
    (body,) = creates(sandbox)
    first = next(i for i in body["inputs"] if i["properties"]["hs_external_cart_id"] == "C-001")
    types = [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586},
        {"associationCategory": "USER_DEFINED", "associationTypeId": 12},
    ]
    assert first["associations"] == [
        {"to": {"id": "1001"}, "types": types},
        {"to": {"id": "1004"}, "types": types},
    ]
    assert first["properties"] == {
        "hs_external_cart_id": "C-001",
        "hs_total_price": "19.90",
        "hs_created_date": "2026-11-23",
        "paid": "true",
        "hs_cart_status": "open",
        "hs_currency_code": "EUR",
    }
    rows = read_sheet(tmp_path / "r.xlsx")
    assert [r["status"] for r in rows] == ["created", "created", "invalid"]
    assert sorted(
        link[1] for link in sandbox.store.associations("carts", rows[0]["hubspot_id"])
    ) == ["1001", "1001", "1004", "1004"]  # two types for each of two contacts


def test_shipped_demo_imports_every_row(run_cli: Runner, tmp_path: Path) -> None:
    out = tmp_path / "demo.xlsx"
    result = run_cli(
        "run",
        "--sandbox",
        "--mapping",
        ROOT / "mappings" / "products.yaml",
        ROOT / "data" / "products.xlsx",
        "--out",
        out,
    )
    assert result.code == 0, result.err
    assert result.out.startswith("products: 320 rows: 320 created.")
    rows = read_sheet(out)
    assert len(rows) == 320
    assert {r["status"] for r in rows} == {"created"}
    assert len({r["hubspot_id"] for r in rows}) == 320
    assert rows[0]["SKU"] == "000001"


def test_shipped_carts_import(run_cli: Runner, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--sandbox",
        "--mapping",
        ROOT / "mappings" / "carts.yaml",
        ROOT / "data" / "carts.csv",
        "--out",
        tmp_path / "c.xlsx",
    )
    assert result.code == 0, result.err
    assert result.out.startswith("carts: 60 rows: 60 created.")


def test_default_results_path_is_beside_the_input(
    run_cli: Runner, sandbox: Sandbox, products: tuple[Path, Path]
) -> None:
    data, mapping = products
    result = run_cli("run", "--mapping", mapping, data, "--base-url", sandbox.url)
    written = Path(result.out.split("Results: ")[1].splitlines()[0])
    assert written.parent == data.parent
    assert re.fullmatch(r"products-results-\d{8}-\d{6}\.xlsx", written.name)
    assert written.exists()


def test_base_url_from_the_environment(
    run_cli: Runner,
    sandbox: Sandbox,
    products: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBSPOT_BASE_URL", sandbox.url)
    data, mapping = products
    assert run_cli("run", "-m", mapping, data, "--out", tmp_path / "o.xlsx").code == 1
    assert len(sandbox.records("products")) == 3


def test_missing_token(
    run_cli: Runner, products: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    data, mapping = products
    result = run_cli("run", "-m", mapping, data)
    assert result.code == 2
    assert result.message == (
        "hubspot-import: error: no access token: set HUBSPOT_ACCESS_TOKEN to "
        "your private app's token (or add --sandbox to try the import "
        "locally)."
    )


def test_401_at_preflight_exits_2_before_anything_is_sent(
    run_cli: Runner,
    make_sandbox: Callable[..., Sandbox],
    products: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    box = make_sandbox(token="pat-someone-else")
    data, mapping = products
    log_file = tmp_path / "run.log"
    result = run_cli(
        "run",
        "-m",
        mapping,
        data,
        "--base-url",
        box.url,
        "--out",
        tmp_path / "o.xlsx",
        "--log-file",
        log_file,
    )
    assert result.code == 2
    assert result.message == (
        "hubspot-import: error: could not read the account details: HubSpot refused the "
        "access token (401 INVALID_AUTHENTICATION): check HUBSPOT_ACCESS_TOKEN; private app "
        "tokens start with 'pat-'."
    )
    assert [r.method for r in box.received] == ["GET"]  # no retry storm, no write
    for text in (result.out, result.err, log_file.read_text(encoding="utf-8")):
        assert TOKEN not in text


def test_401_mid_run_exits_2_and_accounts_for_every_row(
    run_cli: Runner, sandbox: Sandbox, products: tuple[Path, Path], tmp_path: Path
) -> None:
    sandbox.inject(
        Fault(
            status=401,
            path="/batch/create",
            body={
                "status": "error",
                "message": "The OAuth token used to make this call expired.",
                "category": "EXPIRED_AUTHENTICATION",
            },
        )
    )
    data, mapping = products
    log_file = tmp_path / "run.log"
    out = tmp_path / "o.xlsx"
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--out", out, "--log-file", log_file
    )
    assert result.code == 2
    assert (
        "hubspot-import: stopped: HubSpot refused the access token (401 "
        "EXPIRED_AUTHENTICATION): check HUBSPOT_ACCESS_TOKEN"
    ) in result.message
    assert [r["status"] for r in read_sheet(out)] == ["not_sent", "not_sent", "invalid", "not_sent"]
    assert sandbox.records("products") == []
    # The token never leaks into output, logs or the workbook.
    with zipfile.ZipFile(out) as z:
        workbook_text = b"".join(z.read(n) for n in z.namelist())
    for text in (result.out, result.err, log_file.read_text(encoding="utf-8")):
        assert TOKEN not in text
    assert TOKEN.encode() not in workbook_text


@pytest.mark.parametrize(
    ("mapping_text", "expected"),
    [
        (
            "object_type: products\ncolumns: {Prize: price}\n",
            "  - column 'Prize' is not in products.xlsx, sheet Catalogue; did you mean 'Price'?",
        ),
        ("object_type: products\ncolums: {}\n", "  - colums: unknown key; did you mean 'columns'?"),
    ],
    ids=["missing-column", "bad-key"],
)
def test_mapping_errors_exit_2(
    run_cli: Runner, products: tuple[Path, Path], tmp_path: Path, mapping_text: str, expected: str
) -> None:
    data, _ = products
    mapping = write_mapping(tmp_path / "bad.yaml", mapping_text)
    result = run_cli("run", "-m", mapping, data, "--sandbox")
    assert result.code == 2
    assert result.message.startswith(f"hubspot-import: error: {mapping}: ")
    assert any(line.startswith(expected) for line in result.messages), result.messages


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", b"SKU,Name,Price,Launched,In stock\n", "no data rows follow"),
        (
            "latin.csv",
            "SKU,Name,Price,Launched,In stock\n1,Café,1,,\n".encode("cp1252"),
            "run again with --encoding cp1252",
        ),
    ],
    ids=["missing", "empty", "header-only", "encoding"],
)
def test_input_errors_exit_2(
    run_cli: Runner, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    mapping = write_mapping(tmp_path / "m.yaml", PRODUCTS_MAPPING)
    result = run_cli("run", "-m", mapping, path, "--sandbox")
    assert result.code == 2
    assert result.message.startswith(f"hubspot-import: error: {path}")
    assert message in result.message


def test_cp1252_csv_with_encoding_option(run_cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("SKU;Name;Price;Launched;In stock\n1;Café;1;;\n".encode("cp1252"))
    mapping = write_mapping(tmp_path / "m.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "run",
        "-m",
        mapping,
        path,
        "--sandbox",
        "--encoding",
        "cp1252",
        "--out",
        tmp_path / "o.xlsx",
    )
    assert result.code == 0, result.err
    assert read_sheet(tmp_path / "o.xlsx")[0]["Name"] == "Café"


def test_formulas_in_cells_stay_text(run_cli: Runner, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "f.csv", [["SKU", "Name"], ["1", '=HYPERLINK("x")'], ["2", "+1"]])
    mapping = write_mapping(
        tmp_path / "m.yaml", "object_type: products\ncolumns:\n  SKU: hs_sku\n  Name: name\n"
    )
    out = tmp_path / "o.xlsx"
    assert run_cli("run", "-m", mapping, data, "--sandbox", "--out", out).code == 0
    ws = openpyxl.load_workbook(out)["Results"]
    assert (ws["F2"].value, ws["F2"].data_type) == ('=HYPERLINK("x")', "s")
    assert (ws["F3"].value, ws["F3"].data_type) == ("+1", "s")


def test_help_describes_every_option(run_cli: Runner) -> None:
    result = run_cli("run", "--help")
    assert result.code == 0
    for option in (
        "--mapping",
        "--sheet",
        "--encoding",
        "--out",
        "--base-url",
        "--sandbox",
        "--batch-size",
        "--log-file",
        "--verbose",
    ):
        assert option in result.out
    assert "Exit codes: 0 every row created" in result.out


def test_unknown_option_exits_2(run_cli: Runner) -> None:
    result = run_cli("run", "--mapp", "x")
    assert result.code == 2
    assert "Error: No such option '--mapp'." in result.err
    assert "'--mapping'" in result.err  # click suggests the nearest options


def test_module_entry_point_and_sandbox_command(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "importer", "sandbox", "--port", "0", "--db", tmp_path / "s.db"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert url, line
            r = requests.post(
                f"{url.group(0)}/crm/objects/2026-09/products/batch/create",
                json={"inputs": [{"properties": {"name": "x"}}]},
                headers={"Authorization": "Bearer t"},
                timeout=10,
            )
            assert r.status_code == 201
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert (tmp_path / "s.db").exists()


def test_the_demo_keeps_its_history_so_a_second_run_tells_the_truth(
    run_cli: Runner, tmp_path: Path
) -> None:
    demo = ("run", "--sandbox", "--mapping", ROOT / "mappings" / "products.yaml",
            ROOT / "data" / "products.xlsx")  # fmt: skip
    first = run_cli(*demo, "--out", tmp_path / "1.xlsx")
    assert first.out.startswith("products: 320 rows: 320 created."), first.err
    second = run_cli(*demo, "--out", tmp_path / "2.xlsx")
    assert second.out.startswith("products: 320 rows: 320 unchanged."), second.err
    listed = run_cli("runs").out
    ids = [line.split()[0] for line in listed.splitlines() if " products " in line]
    assert len(ids) == 2
    undone = run_cli("undo", ids[-1], "--yes")  # the first run, which created the records
    assert undone.code == 0, undone.err
    assert "Archived 320 products" in undone.out
    third = run_cli(*demo, "--out", tmp_path / "3.xlsx")
    assert third.out.startswith("products: 320 rows: 320 created."), third.err


def test_the_demo_says_where_it_keeps_its_state_and_fresh_starts_it_over(
    run_cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "p.csv", [["SKU", "Name"], ["0001", "Mug"], ["0002", "Cup"]])
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\nkey: SKU\n"
                            "columns:\n  SKU: hs_sku\n  Name: name\n")  # fmt: skip
    state = tmp_path / "state"

    def demo(*extra: str) -> CliRun:
        return run_cli("run", "--sandbox", "-m", mapping, data, "--state-dir", state,
                       "--out", tmp_path / "o.xlsx", *extra)  # fmt: skip

    first = demo()
    assert first.out.startswith("products: 2 rows: 2 created.")
    assert f"keeps its records and journals in {state}" in first.out
    assert "--fresh to start over" in first.out
    assert demo().out.startswith("products: 2 rows: 2 unchanged.")
    assert demo("--fresh").out.startswith("products: 2 rows: 2 created.")
    refused = run_cli("run", "-m", mapping, data, "--fresh", "--base-url", "http://127.0.0.1:9")
    assert refused.code == 2
    assert "--fresh starts the demo sandbox over" in refused.message


def test_the_sandbox_on_a_port_in_use_says_so(run_cli: Callable[..., CliRun]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("sandbox", "--port", str(port))
    assert result.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.message
    assert "choose another --port" in result.message
