"""Numbers are compared as HubSpot stores them: a number property holds `7` whether `007`,
`7.0` or `7` was sent, so the sandbox answers `7`, and a key column of a number property is
one key per number (the duplicate-key check, the value sent, the journal and lookups)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.sandbox import Fault, Sandbox
from importer.sandbox.portal import PropertyDef
from importer.state.journal import Journal, journal_path

from .conftest import CliRun, read_sheet, write_csv, write_mapping
from .test_sandbox_fidelity import call

Runner = Callable[..., CliRun]
V = "/crm/objects/2026-03"
BY_CODE = """\
object_type: products
key: Code
columns:
  Code: code
  Name: name
"""
BY_SKU_WITH_PRICE = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
  Price: price
"""


def with_code(box: Sandbox) -> Sandbox:
    """The portal with `code`, a custom number property HubSpot holds unique."""
    box.portal.add_property(
        "products", PropertyDef(name="code", label="Code", type="number", unique=True)
    )
    return box


def run(run_cli: Runner, box: Sandbox, tmp_path: Path, mapping: str, rows: list[list[str]],
        out: str, *extra: str) -> CliRun:  # fmt: skip
    data = write_csv(tmp_path / f"{out}.csv", rows)
    m = write_mapping(tmp_path / f"{out}.yaml", mapping)
    return run_cli(
        "run", "-m", m, data, "--base-url", box.url, "--state-dir", tmp_path / "state",
        "--out", tmp_path / f"{out}.xlsx", *extra,
    )  # fmt: skip


def codes(box: Sandbox) -> dict[str, str]:
    """Code as HubSpot holds it -> the id of the live record holding it."""
    return {r["properties"]["code"]: r["id"] for r in box.records("products")}


def sent_values(box: Sandbox, prop: str, since: int = 0) -> list[str]:
    """The values of `prop` the importer sent in its batch writes after request `since`."""
    found = []
    for r in box.received[since:]:
        if r.method == "POST" and r.path.endswith(("/batch/create", "/batch/update")):
            found += [i["properties"][prop] for i in r.body["inputs"] if prop in i["properties"]]
    return found


# --- the sandbox stores numbers as HubSpot does ------------------------------------------------


def test_the_sandbox_answers_a_number_property_as_the_number_it_holds(sandbox: Sandbox) -> None:
    with_code(sandbox)
    sent = {"price": "0012.50", "weight_kg": "1000.000", "tax": "-0", "code": "007"}
    item = {"properties": {"name": "Mug", "hs_sku": "007", **sent}, "objectWriteTraceId": "t"}
    r = call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": [item]})
    assert r.status_code == 201, r.text
    (made,) = r.json()["results"]
    held = {"price": "12.5", "weight_kg": "1000", "tax": "0", "code": "7"}
    assert {k: made["properties"][k] for k in held} == held
    assert made["properties"]["hs_sku"] == "007"  # text is kept as sent
    props = ",".join(held)
    read = call(sandbox, "GET", f"{V}/products/{made['id']}?properties={props}").json()
    assert {k: read["properties"][k] for k in held} == held
    update = {"inputs": [{"id": made["id"], "properties": {"price": "7.50", "tax": "-0.00"}}]}
    changed = call(sandbox, "POST", f"{V}/products/batch/update", update).json()
    assert [(p["properties"]["price"], p["properties"]["tax"]) for p in changed["results"]] == [
        ("7.5", "0")
    ]
    query = {"filterGroups": [{"filters": [{"propertyName": "code", "operator": "EQ",
                                            "value": "7"}]}]}  # fmt: skip
    assert call(sandbox, "POST", f"{V}/products/search", query).json()["total"] == 1


def test_the_sandbox_holds_a_unique_number_once_whatever_its_form(sandbox: Sandbox) -> None:
    with_code(sandbox)
    first = {"properties": {"name": "Seven", "code": "7"}, "objectWriteTraceId": "a"}
    (made,) = call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": [first]}).json()[
        "results"
    ]
    again = {"properties": {"name": "Padded", "code": "007"}, "objectWriteTraceId": "b"}
    r = call(sandbox, "POST", f"{V}/products/batch/create", {"inputs": [again]})
    (err,) = r.json()["errors"]
    assert err["category"] == "CONFLICT"
    assert f'code "7" already exists. Existing ID: {made["id"]}' in err["message"]
    upsert = {"inputs": [{"id": "07.0", "idProperty": "code", "properties": {"name": "Upsert"}}]}
    (up,) = call(sandbox, "POST", f"{V}/products/batch/upsert", upsert).json()["results"]
    assert (up["id"], up["new"]) == (made["id"], False)
    update = {"inputs": [{"id": "0007", "idProperty": "code", "properties": {"name": "Upd"}}]}
    (upd,) = call(sandbox, "POST", f"{V}/products/batch/update", update).json()["results"]
    assert upd["id"] == made["id"]
    new = {"inputs": [{"id": "080", "idProperty": "code", "properties": {"name": "Eighty"}}]}
    (created,) = call(sandbox, "POST", f"{V}/products/batch/upsert", new).json()["results"]
    assert (created["new"], created["properties"]["code"]) == (True, "80")
    assert sorted(codes(sandbox)) == ["7", "80"]


# --- a number key is one key per number --------------------------------------------------------


def test_number_keys_written_two_ways_are_one_key_to_the_duplicate_check(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    rows = [["Code", "Name"], ["7", "A"], ["007", "B"], ["7.0", "C"], ["1e3", "D"], ["1000", "E"]]
    result = run(run_cli, sandbox, tmp_path, BY_CODE, rows, "a")
    assert result.code == 1
    seen = {r["Code"]: r for r in read_sheet(tmp_path / "a.xlsx")}
    assert {r["status"] for r in seen.values()} == {"invalid"}
    assert seen["007"]["message"] == (
        'A3 (Code): key "007" appears in more than one row (rows 2, 3, 4); make each key '
        "unique, or remove the duplicate rows"
    )
    assert seen["1000"]["message"] == (
        'A6 (Code): key "1000" appears in more than one row (rows 5, 6); make each key '
        "unique, or remove the duplicate rows"
    )
    assert sandbox.records("products") == []


def test_a_formatted_number_key_is_compared_as_the_number_it_reads(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    mapping = BY_CODE + 'number: {decimal: ",", thousands: "."}\n'
    rows = [["Code", "Name"], ["1.299,50", "A"], ["1299,5", "B"], ["12,5", "C"]]
    result = run(run_cli, sandbox, tmp_path, mapping, rows, "f")
    assert result.code == 1
    seen = {r["Code"]: r for r in read_sheet(tmp_path / "f.xlsx")}
    assert seen["1299,5"]["message"].startswith(
        'A3 (Code): key "1299,5" appears in more than one row (rows 2, 3)'
    )
    assert seen["12,5"]["status"] == "created"
    assert list(codes(sandbox)) == ["12.5"]


def test_a_unique_number_column_written_two_ways_is_refused_before_sending(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    mapping = "object_type: products\nkey: SKU\ncolumns:\n  SKU: hs_sku\n  Code: code\n"
    rows = [["SKU", "Code"], ["A", "42"], ["B", "042.00"]]
    result = run(run_cli, sandbox, tmp_path, mapping, rows, "u")
    assert result.code == 1
    seen = {r["SKU"]: r for r in read_sheet(tmp_path / "u.xlsx")}
    assert seen["B"]["message"] == (
        'B3 (Code): "042.00" appears in more than one row (rows 2, 3), but HubSpot requires '
        "code to be unique; give each row its own value, or remove the duplicate rows"
    )
    assert sandbox.records("products") == []


def test_a_number_key_is_sent_and_journaled_as_the_number_hubspot_stores(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    with_code(sandbox)
    first = run(run_cli, sandbox, tmp_path, BY_CODE, [["Code", "Name"], ["007", "Seven"]], "1")
    assert first.code == 0, first.err
    assert sent_values(sandbox, "code") == ["7"]
    made = codes(sandbox)["7"]
    journal = Journal(
        journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    )
    try:
        known = journal.known(["key:code=7", "key:code=007"])
    finally:
        journal.close()
    assert list(known) == ["key:code=7"]
    assert known["key:code=7"].hubspot_id == made
    for n, spelling in enumerate(["7", "7.00", "0007"], start=2):
        again = run(run_cli, sandbox, tmp_path, BY_CODE, [["Code", "Name"], [spelling, "Seven"]],
                    str(n))  # fmt: skip
        assert again.out.startswith("products: 1 rows: 1 unchanged."), (spelling, again.err)
    assert codes(sandbox) == {"7": made}


def test_a_lost_create_of_a_padded_number_key_is_found_by_the_number_hubspot_holds(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # HubSpot made the record and the answer was lost: the lookup must ask for `7`, the value
    # HubSpot holds, not `007`, or the row is sent again and refused as a duplicate.
    with_code(sandbox)
    sandbox.inject(Fault(drop=True, after=True, path="/batch/create"))
    first = run(run_cli, sandbox, tmp_path, BY_CODE, [["Code", "Name"], ["007", "Seven"]], "1")
    assert first.code == 0, first.err
    (row,) = read_sheet(tmp_path / "1.xlsx")
    assert (row["status"], row["hubspot_id"]) == ("created", codes(sandbox)["7"])
    assert len(sandbox.records("products")) == 1


def test_a_number_column_with_trailing_zeros_reruns_unchanged_and_verify_sees_no_drift(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # HubSpot answers 7.5 for the 7.50 sent: the journal's hash of what was sent, and the
    # comparison of --verify, must not take that for a change.
    rows = [["SKU", "Name", "Price"], ["A1", "Alpha", "7.50"], ["B2", "Beta", "1e3"]]
    first = run(run_cli, sandbox, tmp_path, BY_SKU_WITH_PRICE, rows, "1")
    assert first.code == 0, first.err
    assert sent_values(sandbox, "price") == ["7.50", "1000"]  # a non-key number: sent as today
    held = {
        r["properties"]["hs_sku"]: r["properties"]["price"] for r in sandbox.records("products")
    }
    assert held == {"A1": "7.5", "B2": "1000"}
    again = run(run_cli, sandbox, tmp_path, BY_SKU_WITH_PRICE, rows, "2")
    assert again.out.startswith("products: 2 rows: 2 unchanged."), again.err
    before = len(sandbox.received)
    checked = run(run_cli, sandbox, tmp_path, BY_SKU_WITH_PRICE, rows, "3", "--verify")
    assert checked.out.startswith("products: 2 rows: 2 unchanged."), checked.err
    assert sent_values(sandbox, "price", before) == []
    statuses: dict[str, Any] = {r["SKU"]: r["message"] for r in read_sheet(tmp_path / "3.xlsx")}
    assert not any(m and "changed in HubSpot" in m for m in statuses.values()), statuses
