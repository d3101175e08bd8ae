"""A key HubSpot does not hold unique never drives a batch read, update or upsert (#24 item 10).

HubSpot refuses a batch update or upsert by a property without `hasUniqueValue` ("Unable to
perform update/upsert by non-unique 0-7 property name in portal ID N"), and two records may
hold one value of it. Every place the tool finds a record by key looks a non-unique key up by
search instead, paged to the last result, and a key two records hold is never written: the
row names every candidate. Upsert cannot work without a unique key: it is refused before
anything is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from importer import RunOptions, RunResult, run_import
from importer.api.client import HubSpotClient, RetryPolicy
from importer.api.lookup import Finder
from importer.core.errors import ConfigError
from importer.mapping.guards import Guards, parse_limit
from importer.mapping.model import SyncMode
from importer.sandbox import Fault, Sandbox
from importer.sandbox.portal import PropertyDef
from importer.sandbox.sources import RecordSource

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)
V = "/crm/objects/2026-09"
BY_NAME = """\
object_type: products
key: Name
columns:
  Name: name
  Price: price
"""
BY_SKU = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
  Price: price
"""


def run(tmp_path: Path, box: Sandbox, mapping: str, rows: list[list[str]], **kw: Any) -> RunResult:
    return run_import(
        RunOptions(
            input_file=write_csv(tmp_path / "catalogue.csv", rows),
            mapping_file=write_mapping(tmp_path / "m.yaml", mapping),
            token=TOKEN,
            base_url=box.url,
            retry=FAST,
            out=tmp_path / "out.xlsx",
            state_dir=tmp_path / "state",
            search_settle=kw.pop("search_settle", 0.2),
            **kw,
        )
    )


def by_name(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {str(r["Name"]): r for r in read_sheet(tmp_path / "out.xlsx")}


def make(box: Sandbox, props: dict[str, str]) -> str:
    """A product a person made in HubSpot."""
    (record,) = box.store.create_many("products", [(props, [])], RecordSource.by_hand())
    return str(record["id"])


def live(box: Sandbox) -> dict[str, dict[str, Any]]:
    return {r["id"]: r["properties"] for r in box.records("products")}


def sent_by(box: Sandbox, prop: str) -> list[str]:
    """The paths of the batches sent addressed by `prop` (an `idProperty`), in order."""
    found = []
    for r in box.received:
        body = r.body
        inputs = body.get("inputs") if isinstance(body, dict) else None
        by = {body.get("idProperty")} if isinstance(body, dict) else set()
        by |= {i.get("idProperty") for i in inputs or [] if isinstance(i, dict)}
        if prop in by:
            found.append(r.path)
    return found


def searched(box: Sandbox) -> int:
    return sum(1 for r in box.received if r.path.endswith("/search"))


# --- the sandbox refuses as HubSpot does ---------------------------------------------------


@pytest.mark.parametrize("operation", ["update", "upsert"])
def test_the_sandbox_refuses_an_update_or_upsert_by_a_non_unique_property_as_hubspot_does(
    sandbox: Sandbox, operation: str
) -> None:
    hand = make(sandbox, {"name": "Mug", "price": "4"})
    reply = requests.post(
        f"{sandbox.url}{V}/products/batch/{operation}",
        json={"inputs": [{"id": "Mug", "idProperty": "name", "properties": {"price": "5"}}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json()["category"] == "VALIDATION_ERROR"
    assert reply.json()["message"] == (
        "Unable to perform update/upsert by non-unique 0-7 property name in portal ID 4242424"
    )
    assert live(sandbox)[hand]["price"] == "4"


def test_the_sandbox_refuses_an_update_by_hs_object_id_as_an_id_property(
    sandbox: Sandbox,
) -> None:
    # HubSpot (as Segment's destination met it): the record id goes in `id`, alone.
    hand = make(sandbox, {"name": "Mug", "price": "4"})
    reply = requests.post(
        f"{sandbox.url}{V}/products/batch/update",
        json={"inputs": [{"id": hand, "idProperty": "hs_object_id", "properties": {"price": "5"}}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json()["message"] == (
        "Unable to perform update/upsert by non-unique 0-7 property hs_object_id in portal ID "
        "4242424"
    )
    assert live(sandbox)[hand]["price"] == "4"


def test_the_sandbox_refuses_a_batch_read_by_a_non_unique_property(sandbox: Sandbox) -> None:
    make(sandbox, {"name": "Mug"})
    reply = requests.post(
        f"{sandbox.url}{V}/products/batch/read",
        json={"inputs": [{"id": "Mug"}], "idProperty": "name", "properties": ["name"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert "non-unique 0-7 property name" in reply.json()["message"]


# --- update mode ---------------------------------------------------------------------------


def test_update_mode_by_a_non_unique_key_updates_the_one_record_search_finds_by_its_id(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    hand = make(sandbox, {"name": "Mug", "price": "4"})
    result = run(
        tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]], mode=SyncMode.UPDATE
    )
    row = by_name(tmp_path)["Mug"]
    assert (row["status"], str(row["hubspot_id"])) == ("updated", hand)
    assert live(sandbox)[hand]["price"] == "5"
    assert sent_by(sandbox, "name") == []  # no batch read or update by name
    assert result.summary.counts["updated"] == 1


def test_update_mode_writes_no_record_whose_non_unique_key_two_hold_across_search_pages(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    # Two Mugs, 200 other products between them: a search page holds 200, so the second Mug
    # is on the second page of the search for the sheet's 201 names.
    first = make(sandbox, {"name": "Mug", "price": "4"})
    others = [make(sandbox, {"name": f"Cup {i:03d}", "price": "1"}) for i in range(200)]
    second = make(sandbox, {"name": "Mug", "price": "4"})
    sheet = [["Name", "Price"], ["Mug", "5"], *[[f"Cup {i:03d}", "2"] for i in range(200)]]
    result = run(tmp_path, sandbox, BY_NAME, sheet, mode=SyncMode.UPDATE)
    rows = by_name(tmp_path)
    mug = rows["Mug"]
    assert (mug["status"], mug["hubspot_id"]) == ("uncertain", None)
    assert f"2 products records have name 'Mug' ({first}, {second})" in mug["message"]
    assert "merge or delete the duplicates in HubSpot (or make name unique there)" in mug["message"]
    held = live(sandbox)
    assert held[first]["price"] == held[second]["price"] == "4"  # neither written
    assert {held[o]["price"] for o in others} == {"2"}
    assert result.summary.counts["updated"] == 200
    assert sent_by(sandbox, "name") == []
    assert searched(sandbox) >= 2  # 201 names: more than one search of 100 values


def test_update_mode_fails_a_row_whose_non_unique_key_no_record_holds(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    make(sandbox, {"name": "Mug", "price": "4"})
    run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Bowl", "5"]], mode=SyncMode.UPDATE)
    row = by_name(tmp_path)["Bowl"]
    assert row["status"] == "failed"
    assert row["message"] == (
        "not updated: no products record has name 'Bowl' (searched, as HubSpot does not hold "
        "name unique; a record made in the last seconds may not be searchable yet)"
    )
    assert len(live(sandbox)) == 1
    assert sent_by(sandbox, "name") == []


def test_update_mode_by_a_unique_key_still_updates_by_it_without_searching(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    (record,) = sandbox.store.create_many("products", [({"hs_sku": "A-1", "name": "Mug"}, [])])
    sheet = [["SKU", "Name", "Price"], ["A-1", "Mug", "5"]]
    run(tmp_path, sandbox, BY_SKU, sheet, mode=SyncMode.UPDATE)
    assert live(sandbox)[str(record["id"])]["price"] == "5"
    assert sent_by(sandbox, "hs_sku") == [f"{V}/products/batch/update"]
    assert searched(sandbox) == 0


def test_a_dry_run_of_update_mode_names_the_record_search_finds_and_the_ambiguous_ones(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    cup = make(sandbox, {"name": "Cup", "price": "1"})
    mugs = [make(sandbox, {"name": "Mug", "price": "4"}) for _ in range(2)]
    sheet = [["Name", "Price"], ["Cup", "2"], ["Mug", "5"]]
    run(tmp_path, sandbox, BY_NAME, sheet, mode=SyncMode.UPDATE, dry_run=True)
    rows = by_name(tmp_path)
    assert (rows["Cup"]["status"], str(rows["Cup"]["hubspot_id"])) == ("would_update", cup)
    assert rows["Cup"]["message"] == f"would update {cup}"
    assert rows["Mug"]["status"] == "uncertain"
    assert f"({', '.join(mugs)})" in rows["Mug"]["message"]
    assert sent_by(sandbox, "name") == []


def test_write_rules_read_an_update_by_a_non_unique_key_by_the_id_search_found(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    hand = make(sandbox, {"name": "Mug", "price": "4", "description": "by hand"})
    mapping = BY_NAME + "  Text: {property: description, write: if_empty}\n"
    sheet = [["Name", "Price", "Text"], ["Mug", "5", "from the sheet"]]
    run(tmp_path, sandbox, mapping, sheet, mode=SyncMode.UPDATE)
    row = by_name(tmp_path)["Mug"]
    assert row["status"] == "updated"
    assert (live(sandbox)[hand]["price"], live(sandbox)[hand]["description"]) == ("5", "by hand")
    assert sent_by(sandbox, "name") == []
    reads = [r.body for r in sandbox.received if r.path.endswith("/batch/read")]
    assert {i["id"] for body in reads for i in body["inputs"]} == {hand}


# --- upsert mode ---------------------------------------------------------------------------


def test_an_upsert_by_a_non_unique_key_is_refused_before_anything_is_sent(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    make(sandbox, {"name": "Mug", "price": "4"})
    data = write_csv(tmp_path / "c.csv", [["Name", "Price"], ["Mug", "5"]])
    mapping = write_mapping(tmp_path / "m.yaml", BY_NAME)
    for unchecked in ((), ("--no-portal-check",)):
        done = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--mode", "upsert",
                       "--state-dir", tmp_path / "state", *unchecked)  # fmt: skip
        assert done.code == 2, done.err
        assert "name" in done.message
        assert "unique" in done.message
    assert not [r for r in sandbox.received if "/batch/" in r.path]
    assert live(sandbox)[next(iter(live(sandbox)))]["price"] == "4"


def test_without_the_portal_check_the_upsert_refusal_says_how_to_fix_it(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    with pytest.raises(ConfigError) as refused:
        run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]],
            mode=SyncMode.UPSERT, portal_check=False)  # fmt: skip
    said = str(refused.value)
    assert "HubSpot does not hold name of products unique" in said
    assert "Make name unique in HubSpot" in said
    assert "--mode update" in said
    assert "--mode create" in said
    assert not [r for r in sandbox.received if "/batch/" in r.path]


# --- lookups after a lost answer, references -----------------------------------------------


def test_a_lost_create_by_a_non_unique_key_is_looked_up_by_search_never_by_a_batch_read(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    assert by_name(tmp_path)["Mug"]["status"] == "created"
    assert sent_by(sandbox, "name") == []
    assert searched(sandbox) >= 1
    assert len(live(sandbox)) == 1


def test_a_lost_create_by_a_unique_key_is_still_read_by_it(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    run(tmp_path, sandbox, BY_SKU, [["SKU", "Name", "Price"], ["A-1", "Mug", "5"]])
    assert {str(r["SKU"]): r for r in read_sheet(tmp_path / "out.xlsx")}["A-1"][
        "status"
    ] == "created"
    assert sent_by(sandbox, "hs_sku") == [f"{V}/products/batch/read"]
    assert searched(sandbox) == 0


def test_a_finder_asks_hubspot_whether_a_property_is_unique_once_per_client(
    sandbox: Sandbox,
) -> None:
    make(sandbox, {"name": "Mug"})
    client = HubSpotClient(token=TOKEN, base_url=sandbox.url, retry=FAST)
    try:
        for _ in range(3):
            finder = Finder(client, "products", "name", settle=0)
            assert finder.find(["Mug"]) is not None
            assert finder.holds_unique() is False
    finally:
        client.close()
    definitions = [r for r in sandbox.received if r.method == "GET" and "/properties/" in r.path]
    assert len(definitions) == 1
    assert sent_by(sandbox, "name") == []


def test_a_reference_by_a_non_unique_property_is_searched_never_read_by_it(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    mug = make(sandbox, {"name": "Mug"})
    mapping = write_mapping(
        tmp_path / "l.yaml",
        "object_type: line_items\ncolumns:\n  Line: name\n"
        "  Product: {property: hs_product_id, to: products, by: name}\n",
    )
    lines = write_csv(tmp_path / "lines.csv", [["Line", "Product"], ["one", "Mug"]])
    state, out = tmp_path / "state", tmp_path / "o.xlsx"
    done = run_cli("run", "-m", mapping, lines, "--base-url", sandbox.url, "--search-settle",
                   "0", "--state-dir", state, "--out", out)  # fmt: skip
    assert done.code == 0, done.err
    (line,) = sandbox.records("line_items")
    assert line["properties"]["hs_product_id"] == mug
    assert sent_by(sandbox, "name") == []


# --- paths that read by record id only -----------------------------------------------------


def test_verify_reads_back_a_non_unique_keys_records_by_their_ids(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (made,) = live(sandbox)
    sandbox.store.update("products", made, {"price": "9"})
    make(sandbox, {"name": "Mug", "price": "1"})  # a second Mug: the key is no guide
    sandbox.received.clear()
    run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]], verify=True)
    assert by_name(tmp_path)["Mug"]["status"] == "updated"
    assert live(sandbox)[made]["price"] == "5"
    assert sent_by(sandbox, "name") == []


def test_the_max_changed_guard_reads_nothing_by_a_non_unique_key(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    make(sandbox, {"name": "Mug", "price": "4"})
    data = write_csv(tmp_path / "c.csv", [["Name", "Price"], ["Mug", "5"], ["Cup", "1"]])
    mapping = write_mapping(tmp_path / "m.yaml", BY_NAME)
    done = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--state-dir",
                   tmp_path / "state", "--dry-run", "--max-changed", "0")  # fmt: skip
    assert done.code == 0, done.err  # a create by a non-unique key makes a record: no change
    assert sent_by(sandbox, "name") == []


def test_the_mirror_reads_a_non_unique_keys_records_by_their_ids(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    mapping = BY_NAME + "missing_rows: archive\n"
    sheet = [["Name", "Price"], ["Mug", "5"], ["Cup", "1"], ["Bowl", "2"]]
    run(tmp_path, sandbox, mapping, sheet, guards=_no_missing_limit())
    cup = next(i for i, p in live(sandbox).items() if p["name"] == "Cup")
    other = make(sandbox, {"name": "Cup", "price": "1"})  # made by hand, not this mapping's
    sandbox.received.clear()
    with caplog.at_level(logging.WARNING):
        run(tmp_path, sandbox, mapping, [sheet[0], sheet[1], sheet[3]], guards=_no_missing_limit())
    assert cup not in live(sandbox)  # archived: its key left the feed
    assert other in live(sandbox)  # the person's Cup is not the mapping's
    assert sent_by(sandbox, "name") == []


def _no_missing_limit() -> Guards:
    return Guards(max_missing=parse_limit("100%", "--max-missing"))


def test_an_update_keyed_on_the_record_id_sends_it_as_the_id_never_as_an_id_property(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    # Unchecked (the portal check refuses hs_object_id as a column: HubSpot sets it), the
    # update goes to the record by its id; HubSpot then refuses the read-only value itself.
    hand = make(sandbox, {"name": "Mug", "price": "4"})
    mapping = "object_type: products\nkey: Id\ncolumns:\n  Id: hs_object_id\n  Price: price\n"
    sheet = [["Id", "Price"], [hand, "5"], ["424242", "6"]]
    run(tmp_path, sandbox, mapping, sheet, mode=SyncMode.UPDATE, portal_check=False)
    rows = {str(r["Id"]): r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["424242"]["status"] == "failed"
    assert rows["424242"]["message"] == "not updated: no products record has hs_object_id '424242'"
    (update,) = [r.body for r in sandbox.received if r.path.endswith("/batch/update")]
    assert [i["id"] for i in update["inputs"]] == [hand]
    assert sent_by(sandbox, "hs_object_id") == []


def test_a_contacts_email_is_a_unique_key_whatever_its_definition_declares(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # HubSpot keeps one contact per email and documents reading and upserting contacts by it;
    # its definition need not declare hasUniqueValue for the tool to take it as unique.
    sandbox.portal.add_property("contacts", PropertyDef(name="email", label="Email"))
    mapping = write_mapping(
        tmp_path / "c.yaml",
        "object_type: contacts\nkey: Email\nmode: upsert\ncolumns:\n  Email: email\n"
        "  First: firstname\n",
    )
    data = write_csv(tmp_path / "c.csv", [["Email", "First"], ["ada@example.com", "Ada"]])
    said = run_cli("check", "-m", mapping, data, "--base-url", sandbox.url,
                   "--state-dir", tmp_path / "state")  # fmt: skip
    assert said.code == 0, said.message
    assert "1 would_create" in said.out, said.out
