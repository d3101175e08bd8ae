"""A row's identity survives a crash and a lost answer: a batch left open is settled by the key
it was sent with, whichever mapping runs next (also in journals of earlier versions); a keyless
update keeps its record id; an upsert row without a key value is invalid, never sent."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from importer import RunOptions, RunResult, run_import
from importer.api.client import RetryPolicy
from importer.core.prepared import journal_key, values_hash
from importer.mapping.model import SyncMode
from importer.sandbox import Fault, Sandbox
from importer.state.journal import BatchRow, Journal, Outcome, journal_path

from .conftest import TOKEN, creates, read_sheet, write_csv, write_mapping

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)
ONCE = RetryPolicy(max_attempts=1, backoff_base=0.01, backoff_max=0.05)

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
"""
KEYLESS = """\
object_type: products
columns:
  Name: name
  Price: price
"""
NAMES = [["Name", "Price"], *[[f"Product {i}", f"{i}.50"] for i in range(5)]]
OTHERS = [["SKU", "Name"], ["B-1", "Other"]]


def run(tmp_path: Path, box: Sandbox, mapping: str, rows: list[list[str]], **kw: Any) -> RunResult:
    """One run of `mapping` over `rows`; each mapping and input has files of its own."""
    name = kw.pop("name", "a")
    return run_import(
        RunOptions(
            input_file=write_csv(tmp_path / f"{name}.csv", rows),
            mapping_file=write_mapping(tmp_path / f"{name}.yaml", mapping),
            token=TOKEN,
            base_url=box.url,
            retry=kw.pop("retry", FAST),
            out=tmp_path / f"{name}.xlsx",
            state_dir=tmp_path / "state",
            search_settle=0.2,
            **kw,
        )
    )


def statuses(result: RunResult) -> dict[str, int]:
    return {k: v for k, v in result.summary.counts.items() if v}


def per_name(box: Sandbox) -> Counter[str]:
    return Counter(r["properties"]["name"] for r in box.records("products"))


def journal(tmp_path: Path, box: Sandbox) -> Journal:
    return Journal(journal_path(tmp_path / "state", box.url, "products", box.portal.portal_id))


def leave_open(tmp_path: Path, box: Sandbox) -> str:
    """A run of BY_NAME whose create HubSpot carried out, whose answer was lost, and whose
    lookups failed: its batch stays open, as a crash leaves it. Returns the run's id."""
    box.inject(Fault(status=504, after=True, path="/batch/create"))
    for path in ("/search", "/batch/read"):
        box.inject(Fault(status=503, path=path, times=10))
    first = run(tmp_path, box, BY_NAME, NAMES, retry=ONCE)
    assert statuses(first) == {"uncertain": 5}
    assert per_name(box) == Counter({f"Product {i}": 1 for i in range(5)})
    box._faults.clear()  # HubSpot answers again
    return first.summary.run_id


# --- #24 item 2: recovery settles by the batch's own key ---------------------------------------


def test_a_batch_left_open_is_settled_by_its_own_key_whichever_mapping_runs_next(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = leave_open(tmp_path, sandbox)
    # Another mapping of products, keyed on hs_sku, runs next on the same state: it settles
    # the open batch by `name`, the key it was sent with, not by its own.
    other = run(tmp_path, sandbox, BY_SKU, OTHERS, name="b")
    assert statuses(other) == {"created": 1}
    assert (
        "1 batch left open by an earlier run was sent keyed on name, not on this mapping's "
        "key, hs_sku: looked up by name"
    ) in caplog.text
    assert f"settled create batch 1 of run {crashed} left open by a crash: 5 found" in caplog.text
    opened = journal(tmp_path, sandbox)
    try:
        made = opened.written_by(crashed)["created"]
        assert opened.open_batches() == []
    finally:
        opened.close()
    assert sorted(key for key, _ in made) == [
        journal_key("products", "name", f"Product {i}") for i in range(5)
    ]
    # The first mapping's next run knows its records: nothing is created twice.
    again = run(tmp_path, sandbox, BY_NAME, NAMES)
    assert statuses(again) == {"unchanged": 5}
    assert per_name(sandbox) == Counter({**{f"Product {i}": 1 for i in range(5)}, "Other": 1})


def test_a_batch_sent_without_a_key_stays_uncertain_when_a_keyed_mapping_runs_next(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # A keyless mapping's run died with its create unanswered.
    old = journal(tmp_path, sandbox)
    old.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="create",
                  base_url=sandbox.url, object_type="products")  # fmt: skip
    sent_hash = values_hash({"name": "Padded", "price": "1"})
    row = BatchRow(
        row_key=f"row:old:{sent_hash}:1",
        key_value=None,
        trace_id="old-row-2",
        sent_hash=sent_hash,
        source_row=2,
    )
    old.begin_batch("old", "create", [row])
    stored = old._db.execute("SELECT key_property FROM batches").fetchall()
    old.close()
    assert stored == [("",)]
    sandbox.store.create_many("products", [({"name": "Padded", "price": "1"}, [])])
    # A keyed mapping cannot look a keyless row up: it stays uncertain, never "not created"
    # (which the keyless import's next run would create again).
    run(tmp_path, sandbox, BY_SKU, OTHERS, name="b")
    assert (
        "1 batch left open by an earlier run was sent without a key, unlike this mapping's key, "
        "hs_sku: creates among them stay uncertain (nothing to look them up by)"
    ) in caplog.text
    opened = journal(tmp_path, sandbox)
    try:
        assert opened.open_batches() == []
        assert opened.known([row.row_key])[row.row_key].state == "uncertain"
    finally:
        opened.close()


def test_an_open_batch_records_the_key_property_it_was_sent_with(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    leave_open(tmp_path, sandbox)
    opened = journal(tmp_path, sandbox)
    try:
        (batch,) = opened.open_batches()
        stored = opened._db.execute("SELECT key_property FROM batches").fetchall()
    finally:
        opened.close()
    assert batch.key_property == "name"
    assert stored == [("name",)]


def test_an_open_batch_of_a_journal_of_an_earlier_version_is_settled_by_its_row_keys(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    # An earlier version kept no key property with its batches: its open batch (row keys
    # `key:name=...`) is still settled by `name` when a mapping keyed on hs_sku runs next.
    old = journal(tmp_path, sandbox)
    old.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="create",
                  base_url=sandbox.url, object_type="products")  # fmt: skip
    old.set_meta("key_format", "2")  # its row keys name their property
    row = BatchRow(
        row_key=journal_key("products", "name", "Padded"),
        key_value="Padded",
        trace_id="old-row-2",
        sent_hash=values_hash({"name": "Padded", "price": "1"}),
        source_row=2,
    )
    old.begin_batch("old", "create", [row])
    old.close()
    path = journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    with sqlite3.connect(path) as db:  # the batches table as the earlier version made it
        columns = {c[1] for c in db.execute("PRAGMA table_info(batches)")}
        if "key_property" in columns:
            db.executescript(
                "CREATE TABLE earlier AS SELECT batch_id, run_id, operation, state, created, "
                "settled, items FROM batches; DROP TABLE batches; "
                "ALTER TABLE earlier RENAME TO batches;"
            )
    # The run created the record (this app's, inside the send window), then died.
    (made,) = sandbox.store.create_many("products", [({"name": "Padded", "price": "1"}, [])])
    other = run(tmp_path, sandbox, BY_SKU, OTHERS, name="b")
    assert statuses(other) == {"created": 1}
    reopened = journal(tmp_path, sandbox)
    try:
        assert reopened.written_by("old")["created"] == [(row.row_key, made["id"])]
    finally:
        reopened.close()
    again = run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Padded", "1"]])
    assert statuses(again) == {"unchanged": 1}
    assert per_name(sandbox)["Padded"] == 1


# --- #24 item 4: a keyless update keeps its record id through a lost answer ------------------


def keyless_import(tmp_path: Path, box: Sandbox) -> dict[str, str]:
    """A finished keyless import of NAMES; returns each row key's record id."""
    assert statuses(run(tmp_path, box, KEYLESS, NAMES)) == {"created": 5}
    return journaled(tmp_path, box)


def journaled(tmp_path: Path, box: Sandbox) -> dict[str, str]:
    """Each row key's record id, for the rows the journal holds synced."""
    opened = journal(tmp_path, box)
    try:
        rows = opened._db.execute("SELECT row_key, state, hubspot_id FROM rows").fetchall()
    finally:
        opened.close()
    return {key: hid for key, state, hid in rows if state == "synced"}


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=504, after=True, path="/batch/update", times=20),
        Fault(drop=True, after=True, path="/batch/update", times=20),
    ],
    ids=["504-after-commit", "dropped-after-commit"],
)
def test_a_keyless_update_whose_answer_is_lost_keeps_its_record_id(
    tmp_path: Path, sandbox: Sandbox, fault: Fault
) -> None:
    ids = keyless_import(tmp_path, sandbox)
    edited = sandbox.records("products")[0]
    sandbox.store.update("products", edited["id"], {"price": "99"})  # by hand, in HubSpot
    sandbox.inject(fault)
    lost = run(tmp_path, sandbox, KEYLESS, NAMES, mode=SyncMode.UPDATE, verify=True)
    assert lost.summary.counts["unchanged"] == 4
    sent = [r.body for r in sandbox.received if r.path.endswith("/batch/update")]
    assert {i["id"] for body in sent for i in body["inputs"]} == {edited["id"]}
    assert journaled(tmp_path, sandbox) == ids  # every row keeps its record
    sandbox._faults.clear()
    # The user clears what is uncertain: nothing an update touched is uncertain, nothing is
    # created, and each row is its record still.
    again = run(tmp_path, sandbox, KEYLESS, NAMES, mode=SyncMode.UPDATE, verify=True,
                forget_uncertain=True)  # fmt: skip
    assert statuses(again) == {"unchanged": 5}
    assert {str(r["hubspot_id"]) for r in read_sheet(tmp_path / "a.xlsx")} == set(ids.values())
    assert len(creates(sandbox)) == 1
    assert per_name(sandbox) == Counter({f"Product {i}": 1 for i in range(5)})


@pytest.mark.parametrize(
    ("fault", "status", "said"),
    [
        (Fault(status=504, after=True, path="/batch/update", times=20), "not_sent",
         "not sent: the run stopped before this row (gave up after 4 attempts: HTTP 504"),
        (Fault(drop=True, after=True, path="/batch/update", times=20), "failed",
         "the connection broke before HubSpot answered (ConnectionError) 4 times; not updated "
         "(safe to run again)"),
    ],
    ids=["504-after-commit", "dropped-after-commit"],
)  # fmt: skip
def test_the_workbook_row_of_a_lost_update_names_its_record(
    tmp_path: Path, sandbox: Sandbox, fault: Fault, status: str, said: str
) -> None:
    keyless_import(tmp_path, sandbox)
    edited = sandbox.records("products")[0]
    sandbox.store.update("products", edited["id"], {"price": "99"})
    sandbox.inject(fault)
    run(tmp_path, sandbox, KEYLESS, NAMES, mode=SyncMode.UPDATE, verify=True)
    (lost,) = [r for r in read_sheet(tmp_path / "a.xlsx") if r["status"] != "unchanged"]
    assert (lost["status"], str(lost["hubspot_id"])) == (status, edited["id"])
    assert lost["message"].startswith(said)


def test_a_keyless_update_left_open_by_a_crash_is_sent_again_to_its_record(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    ids = keyless_import(tmp_path, sandbox)
    opened = journal(tmp_path, sandbox)
    opened.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="update",
                     base_url=sandbox.url, object_type="products")  # fmt: skip
    hashes = dict(opened._db.execute("SELECT row_key, sent_hash FROM rows").fetchall())
    batch = [
        BatchRow(
            row_key=key,
            key_value=None,
            trace_id=f"old-row-{n + 2}",
            sent_hash=hashes[key],
            source_row=n + 2,
            record_id=hid,
        )
        for n, (key, hid) in enumerate(ids.items())
    ]
    opened.begin_batch("old", "update", batch)
    opened.close()
    again = run(tmp_path, sandbox, KEYLESS, NAMES, mode=SyncMode.UPDATE, forget_uncertain=True)
    assert statuses(again) == {"unchanged": 5}
    assert journaled(tmp_path, sandbox) == ids
    assert len(creates(sandbox)) == 1
    assert len(sandbox.records("products")) == 5


def test_an_update_whose_outcome_is_unknown_keeps_its_record_in_the_journal(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    ids = keyless_import(tmp_path, sandbox)
    key, hid = next(iter(ids.items()))
    opened = journal(tmp_path, sandbox)
    try:
        (sent_hash,) = opened._db.execute(
            "SELECT sent_hash FROM rows WHERE row_key = ?", (key,)
        ).fetchone()
        row = BatchRow(row_key=key, key_value=None, trace_id="t-row-2", sent_hash="changed",
                       source_row=2, record_id=hid)  # fmt: skip
        batch = opened.begin_batch("later", "update", [row])
        opened.settle(batch, "later", [(row, Outcome.UNCERTAIN, None)])
        assert opened.forget_uncertain() == 0
        kept = opened.known([key])[key]
    finally:
        opened.close()
    # The record is the row's still, and the update is sent again (its values are not known
    # to be HubSpot's: the journal keeps what it knew before).
    assert (kept.state, kept.hubspot_id, kept.sent_hash) == ("synced", hid, sent_hash)


# --- #24 item 9: an upsert row without a key value is invalid ----------------------------------


def test_an_upsert_row_with_an_empty_key_cell_is_invalid_and_never_sent(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    rows = [["SKU", "Name"], ["00001", "A"], ["", "B"], ["   ", "C"]]
    result = run(tmp_path, sandbox, BY_SKU, rows, mode=SyncMode.UPSERT)
    assert statuses(result) == {"created": 1, "invalid": 2}
    said = {r["source_row"]: r for r in read_sheet(tmp_path / "a.xlsx")}
    for row in (3, 4):
        assert said[row]["status"] == "invalid"
        assert said[row]["message"] == (
            f"A{row} (SKU): the cell is empty but the mapping requires a value; fill it in"
        )
    sent = [r.body for r in sandbox.received if r.path.endswith("/batch/upsert")]
    inputs = [i for body in sent for i in body["inputs"]]
    assert [i["id"] for i in inputs] == ["00001"]
    assert all(i["id"] is not None for i in inputs)
