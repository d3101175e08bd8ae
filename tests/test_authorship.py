"""A record is this run's only if HubSpot's data proves it: after a lost answer, the record found
by key counts as created only when it was created inside the send window, by this app
(`hs_object_source_id`), with the values sent. Anything else found by key is an existing
record: the row updates it, or is uncertain naming every candidate, and `undo` never archives
it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer import RunOptions, RunResult, run_import
from importer.api.account import token_app
from importer.api.client import HubSpotClient, RetryPolicy
from importer.core.prepared import journal_key, values_hash
from importer.mapping.model import SyncMode
from importer.sandbox import Fault, Sandbox
from importer.sandbox.sources import DEFAULT_APP_ID, RecordSource
from importer.state.journal import BatchRow, Journal, journal_path

from .conftest import TOKEN, CliRun, creates, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)
OTHER_APP = 9_990_001

BY_SKU = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
  Price: price
"""
BY_NAME = """\
object_type: products
key: Name
columns:
  Name: name
  Price: price
"""
EMPTY_ANSWER: dict[str, Any] = {
    "status": "COMPLETE",
    "results": [],
    "startedAt": "2026-12-06T02:00:00.000Z",
    "completedAt": "2026-12-06T02:00:01.000Z",
}
"""A 2xx answer that lists nothing: every created row is left unsaid, and looked up."""


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


def results(tmp_path: Path, column: str = "SKU") -> dict[str, dict[str, Any]]:
    return {str(r[column]): r for r in read_sheet(tmp_path / "out.xlsx")}


def undo(run_cli: Runner, box: Sandbox, tmp_path: Path, result: RunResult) -> CliRun:
    run_id = result.summary.run_id
    undone = run_cli(
        "undo", run_id, "--state-dir", tmp_path / "state", "--yes", "--base-url", box.url
    )
    assert undone.code == 0, undone.err
    return undone


def make(box: Sandbox, props: dict[str, str], source: RecordSource | None = None) -> str:
    """A record made outside this run: by this app (the default), by hand, or by another app."""
    (record,) = box.store.create_many("products", [(props, [])], source)
    return str(record["id"])


def live(box: Sandbox) -> dict[str, dict[str, Any]]:
    return {r["id"]: r["properties"] for r in box.records("products")}


def skus(n: int) -> list[list[str]]:
    return [["SKU", "Name", "Price"], *[[f"{i:05d}", f"Product {i}", f"{i}.5"] for i in range(n)]]


# --- lost creates --------------------------------------------------------------------------


def test_a_lost_create_never_adopts_a_hand_made_record_as_created(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    # A person made SKU 00001 in HubSpot; the batch is carried out (its other rows created,
    # 00001 refused as a key HubSpot holds), then answered 504.
    hand = make(sandbox, {"hs_sku": "00001", "name": "typed by hand"}, RecordSource.by_hand())
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    result = run(tmp_path, sandbox, BY_SKU, skus(3))
    rows = results(tmp_path)
    assert rows["00001"]["status"] == "updated"
    assert str(rows["00001"]["hubspot_id"]) == hand
    assert live(sandbox)[hand]["name"] == "Product 1"  # the sheet's values, on that record
    assert {rows[s]["status"] for s in ("00000", "00002")} == {"created"}
    assert len(live(sandbox)) == 3
    undo(run_cli, sandbox, tmp_path, result)
    assert list(live(sandbox)) == [hand]  # undo archived what the run made, not the person's


def test_a_lost_create_takes_its_own_record_not_an_older_one_with_the_same_key(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    # `name` is not unique: the lost create made a second "Mug", next to the one made by hand.
    hand = make(sandbox, {"name": "Mug", "price": "5"}, RecordSource.by_hand())
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    result = run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "created"
    assert str(row["hubspot_id"]) != hand
    assert len(creates(sandbox)) == 1  # never sent again
    undo(run_cli, sandbox, tmp_path, result)
    assert list(live(sandbox)) == [hand]


def test_a_lost_create_whose_record_search_cannot_see_yet_is_uncertain_naming_the_other(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    hand = make(sandbox, {"name": "Mug", "price": "4"}, RecordSource.by_hand())
    sandbox.search_index.lag = 3.0  # the person's Mug is seen; this run's will not be yet
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    with caplog.at_level(logging.WARNING):
        result = run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert (row["status"], row["hubspot_id"]) == ("uncertain", None)
    assert "name 'Mug': HubSpot holds 1 record with name 'Mug'" in caplog.text
    assert f"({hand}: it was made by CRM_UI (user " in caplog.text
    assert live(sandbox)[hand]["price"] == "4"  # not written to: it may not be this row's
    assert len(creates(sandbox)) == 1
    undo(run_cli, sandbox, tmp_path, result)
    assert hand in live(sandbox)


def test_two_records_this_app_made_with_a_non_unique_key_leave_a_lost_create_uncertain(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Another run with the same token made the same "Mug" a moment before this one: both are
    # this app's, in the window, with the values sent. Neither the older nor the newer is taken.
    twin = make(sandbox, {"name": "Mug", "price": "5"})
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    with caplog.at_level(logging.WARNING):
        run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "uncertain"
    (made,) = set(live(sandbox)) - {twin}
    assert "HubSpot holds 2 records with name 'Mug' that this app created" in caplog.text
    assert f"({twin}, {made})" in caplog.text
    # The next run does not adopt the older of the two either: the row stays uncertain.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    assert again.summary.counts.get("uncertain") == 1
    assert f"2 records have name 'Mug' ({twin}, {made})" in caplog.text
    assert len(live(sandbox)) == 2


def test_an_uncertain_row_names_every_candidate_in_the_workbook(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    twin = make(sandbox, {"name": "Mug", "price": "5"})
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    (made,) = set(live(sandbox)) - {twin}
    message = row["message"]
    assert row["status"] == "uncertain"
    assert message.startswith("HubSpot answered 504 (the write may have been carried out): ")
    assert f"that this app created during the send with the values sent ({twin}, {made})" in (
        message
    )
    # A keyed row is looked up again by the next run: --forget-uncertain would duplicate it.
    assert message.endswith(
        "so it is not sent again; the next run looks it up again by its key; if HubSpot holds "
        "two or more records with it, delete the extra ones first"
    )
    assert "--forget-uncertain" not in message


def test_a_lost_create_is_proven_by_the_values_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    # Another run with the same token made "Mug" a moment before, from an older sheet: this
    # app's, in the window, but not with the values this run sent.
    older = make(sandbox, {"name": "Mug", "price": "9"})
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "created"
    assert str(row["hubspot_id"]) != older
    assert live(sandbox)[str(row["hubspot_id"])]["price"] == "5"


def test_a_record_another_app_made_during_the_send_is_not_this_runs(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    # The same name and values, made a moment before by another integration (a shop's sync).
    theirs = make(sandbox, {"name": "Mug", "price": "5"}, RecordSource.app(OTHER_APP))
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    result = run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "created"
    ours = str(row["hubspot_id"])
    assert ours != theirs
    assert live(sandbox)[ours]["hs_object_source_id"] == str(DEFAULT_APP_ID)
    undo(run_cli, sandbox, tmp_path, result)
    assert list(live(sandbox)) == [theirs]


def test_a_record_this_app_made_before_the_send_is_not_this_runs(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # This app made the record (an earlier import), but long before this send: the window
    # has a lower bound. This run's own record is not searchable yet.
    old = make(sandbox, {"name": "Mug", "price": "5"})
    sandbox.store.update("products", old, {"createdate": "2026-01-05T09:00:00.000Z"})
    sandbox.search_index.lag = 3.0
    sandbox.inject(Fault(status=504, after=True, path="/batch/create"))
    with caplog.at_level(logging.WARNING):
        run(tmp_path, sandbox, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "uncertain"
    assert f"{old}: it was created at 2026-01-05T09:00:00.000Z, outside this send (" in (
        caplog.text
    )


# --- lost upserts --------------------------------------------------------------------------

UPSERT = BY_SKU.replace("key: SKU", "key: SKU\nmode: upsert")


def test_a_lost_upsert_that_created_is_created_and_undo_archives_it(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    sandbox.inject(Fault(drop=True, after=True, path="/batch/upsert"))
    result = run(tmp_path, sandbox, UPSERT, skus(3))
    assert {r["status"] for r in results(tmp_path).values()} == {"created"}
    undo(run_cli, sandbox, tmp_path, result)
    assert live(sandbox) == {}


def test_an_upsert_answered_5xx_after_it_created_is_created_not_sent_again(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    # Sent again, the upsert would answer `updated` for the records the first one created,
    # and undo would leave them.
    sandbox.inject(Fault(status=504, after=True, path="/batch/upsert"))
    result = run(tmp_path, sandbox, UPSERT, skus(3))
    assert {r["status"] for r in results(tmp_path).values()} == {"created"}
    assert len([r for r in sandbox.received if r.path.endswith("/batch/upsert")]) == 1
    undo(run_cli, sandbox, tmp_path, result)
    assert live(sandbox) == {}


def test_a_lost_upsert_that_updated_a_hand_made_record_is_updated_and_undo_leaves_it(
    tmp_path: Path, sandbox: Sandbox, run_cli: Runner
) -> None:
    # Made by hand a moment before the run: its createdate is inside the send window, which
    # the old rule ("created since the send") took for this run's create.
    hand = make(sandbox, {"hs_sku": "00001", "name": "typed by hand"}, RecordSource.by_hand())
    sandbox.inject(Fault(drop=True, after=True, path="/batch/upsert"))
    result = run(tmp_path, sandbox, UPSERT, skus(3))
    rows = results(tmp_path)
    assert (rows["00001"]["status"], str(rows["00001"]["hubspot_id"])) == ("updated", hand)
    assert {rows[s]["status"] for s in ("00000", "00002")} == {"created"}
    undo(run_cli, sandbox, tmp_path, result)
    assert list(live(sandbox)) == [hand]
    assert live(sandbox)[hand]["name"] == "Product 1"


# --- unsaid rows, a crash, the token's app --------------------------------------------------


def test_without_the_tokens_app_a_record_is_judged_by_window_source_and_values(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], caplog: pytest.LogCaptureFixture
) -> None:
    # HubSpot will not describe the token: the app cannot be checked. Another app's "Mug"
    # made a moment before holds other values, a person's holds the same: neither is ours.
    box = make_sandbox(token_info_status=403)
    theirs = make(box, {"name": "Mug", "price": "9"}, RecordSource.app(OTHER_APP))
    hand = make(box, {"name": "Mug", "price": "5"}, RecordSource.by_hand())
    box.inject(Fault(status=200, body=EMPTY_ANSWER, after=True, path="products/batch/create"))
    with caplog.at_level(logging.WARNING):
        run(tmp_path, box, BY_NAME, [["Name", "Price"], ["Mug", "5"]])
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "created"
    assert str(row["hubspot_id"]) not in (theirs, hand)
    assert caplog.text.count("HubSpot did not say which app this token belongs to") == 1


def test_recovery_after_a_crash_never_counts_a_hand_made_record_as_created(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    # A run died with its create of SKU 00420 unanswered; the record that holds 00420 now was
    # made by a person, not by that run: recovery settles the row as not created, and the
    # next run updates the person's record (HubSpot holds the SKU unique).
    hand = make(sandbox, {"hs_sku": "00420", "name": "typed by hand"}, RecordSource.by_hand())
    journal = Journal(
        journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    )
    journal.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="create",
                      base_url=sandbox.url, object_type="products")  # fmt: skip
    row = BatchRow(
        row_key=journal_key("products", "hs_sku", "00420"),
        key_value="00420",
        trace_id="old-row-2",
        sent_hash=values_hash({"hs_sku": "00420", "name": "Padded", "price": "1"}),
        source_row=2,
    )
    journal.begin_batch("old", "create", [row])
    journal.close()
    run(tmp_path, sandbox, BY_SKU, [["SKU", "Name", "Price"], ["00420", "Padded", "1"]])
    (seen,) = read_sheet(tmp_path / "out.xlsx")
    assert (seen["status"], str(seen["hubspot_id"])) == ("updated", hand)
    reopened = Journal(journal_path(tmp_path / "state", sandbox.url, "products", 4_242_424))
    try:
        assert reopened.written_by("old") == {"created": [], "updated": []}
    finally:
        reopened.close()


def test_the_tokens_app_is_read_from_hubspot_and_remembered_in_the_journal(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(app_ids={"oauth-token-1": 5_550_001})
    client = HubSpotClient(token=TOKEN, base_url=box.url, retry=FAST)
    try:
        assert token_app(client, TOKEN) == DEFAULT_APP_ID  # a private app's token
        assert token_app(client, "oauth-token-1") == 5_550_001  # an OAuth token's metadata
        box.config.token_info_status = 404
        assert token_app(client, TOKEN) is None
    finally:
        client.close()
    asked = [r for r in box.received if r.path.startswith("/oauth/")]
    assert asked[0].body == {"tokenKey": TOKEN}
    assert asked[1].path == "/oauth/v1/access-tokens/oauth-token-1"
    # A run asks once per journal, and the next run remembers it.
    box.config.token_info_status = 200
    for n in (2, 3):
        box.inject(Fault(status=504, after=True, path="/batch/create"))
        run(tmp_path, box, BY_SKU, skus(n))
        assert results(tmp_path)[f"{n - 1:05d}"]["status"] == "created"
    assert len([r for r in box.received if r.path.startswith("/oauth/")]) == 3 + 1


@pytest.mark.parametrize("maker", ["this app", "a person"])
def test_recovery_of_an_upsert_left_open_counts_only_its_own_record_as_created(
    tmp_path: Path, sandbox: Sandbox, maker: str
) -> None:
    # A run died with its upsert of SKU 00420 unanswered. A record this app made in the send
    # window with the values sent is that run's creation (undo archives it); one a person
    # made is someone's existing record, which the upsert, sent again, updates.
    props = {"hs_sku": "00420", "name": "Padded", "price": "1"}
    journal = Journal(
        journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    )
    journal.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="upsert",
                      base_url=sandbox.url, object_type="products")  # fmt: skip
    row = BatchRow(
        row_key=journal_key("products", "hs_sku", "00420"),
        key_value="00420",
        trace_id="old-row-2",
        sent_hash=values_hash(props),
        source_row=2,
    )
    journal.begin_batch("old", "upsert", [row])
    journal.close()
    held = make(sandbox, props, None if maker == "this app" else RecordSource.by_hand())
    run(tmp_path, sandbox, BY_SKU, [["SKU", "Name", "Price"], ["00420", "Padded", "1"]],
        mode=SyncMode.UPSERT)  # fmt: skip
    reopened = Journal(journal_path(tmp_path / "state", sandbox.url, "products", 4_242_424))
    try:
        made = [hid for _, hid in reopened.written_by("old")["created"]]
    finally:
        reopened.close()
    assert made == ([held] if maker == "this app" else [])
    assert list(live(sandbox)) == [held]
