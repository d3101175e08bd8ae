"""A line item belongs to one order (deal, cart, quote): moving it to another removes the old
link before the new one is made, so it never has two parents, not for a moment and not after a
refusal; the sandbox refuses a second parent as HubSpot does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from importer.sandbox import Fault, Sandbox

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

LINES = """\
object_type: line_items
key: Line ref
columns:
  Line ref: name
  Quantity: {property: quantity, type: number}
associations:
  - column: Order
    to: orders
    sync: sync
    types: [{associationCategory: HUBSPOT_DEFINED, associationTypeId: 514}]
"""


def orders_of(box: Sandbox, line: str) -> set[str]:
    return {i for i, _, _, _ in box.store.linked("line_items", line, "orders")}


def line_ids(box: Sandbox) -> dict[str, str]:
    return {r["properties"]["name"]: r["id"] for r in box.records("line_items")}


def run(run_cli: Runner, box: Sandbox, tmp: Path, orders: dict[str, str]) -> CliRun:
    rows = [["Line ref", "Quantity", "Order"], *[[ref, "1", o] for ref, o in orders.items()]]
    return run_cli(
        "run", "-m", write_mapping(tmp / "m.yaml", LINES), write_csv(tmp / "l.csv", rows),
        "--base-url", box.url, "--state-dir", tmp / "state", "--out", tmp / "out.xlsx",
    )  # fmt: skip


def test_a_moved_line_item_leaves_its_old_order_before_joining_the_new(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    sandbox.store.seed("orders", [("501", {"hs_order_name": "A"}), ("502", {"hs_order_name": "B"})])
    assert run(run_cli, sandbox, tmp_path, {"L1": "501", "L2": "501"}).code == 0
    ids = line_ids(sandbox)
    assert orders_of(sandbox, ids["L1"]) == {"501"}
    since = len(sandbox.received)
    moved = run(run_cli, sandbox, tmp_path, {"L1": "502", "L2": "501"})
    assert moved.code == 0, moved.err
    assert orders_of(sandbox, ids["L1"]) == {"502"}
    assert orders_of(sandbox, ids["L2"]) == {"501"}
    writes = [
        r.path.rsplit("/batch/", 1)[1]
        for r in sandbox.received[since:]
        if "/associations/" in r.path and "/batch/" in r.path and not r.path.endswith("/read")
    ]
    assert writes == ["labels/archive", "create"]  # the old link goes first


def test_a_refused_removal_keeps_the_old_order_and_the_next_run_moves_it(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    sandbox.store.seed("orders", [("501", {"hs_order_name": "A"}), ("502", {"hs_order_name": "B"})])
    assert run(run_cli, sandbox, tmp_path, {"L1": "501"}).code == 0
    (line,) = line_ids(sandbox).values()
    refused = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Association could not be removed",
                "context": {"fromObjectId": [line], "toObjectId": ["501"]},
            }
        ],
        "startedAt": "2026-12-06T02:00:00.000Z",
        "completedAt": "2026-12-06T02:00:01.000Z",
    }
    sandbox.inject(Fault(status=200, body=refused, path="/batch/labels/archive"))
    first = run(run_cli, sandbox, tmp_path, {"L1": "502"})
    assert first.code == 1
    assert orders_of(sandbox, line) == {"501"}  # never two parents
    (row,) = read_sheet(tmp_path / "out.xlsx")
    assert row["status"] == "incomplete"
    assert "unlinking orders 501 was refused: Association could not be removed" in row["message"]
    assert "as removing its link to 501 was refused (one parent only)" in row["message"]
    second = run(run_cli, sandbox, tmp_path, {"L1": "502"})
    assert second.code == 0, second.err
    assert orders_of(sandbox, line) == {"502"}


def test_the_sandbox_refuses_a_second_order_for_a_line_item(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    sandbox.store.seed("orders", [("501", {"hs_order_name": "A"}), ("502", {"hs_order_name": "B"})])
    assert run(run_cli, sandbox, tmp_path, {"L1": "501"}).code == 0
    (line,) = line_ids(sandbox).values()
    body = {
        "inputs": [
            {
                "from": {"id": line},
                "to": {"id": "502"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 514}],
            }
        ]
    }
    r = requests.post(
        f"{sandbox.url}/crm/associations/2026-09/line_items/orders/batch/create",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["numErrors"] == 1
    assert "A line item belongs to one order" in r.json()["errors"][0]["message"]
    assert orders_of(sandbox, line) == {"501"}
