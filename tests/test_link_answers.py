"""No refused link is ever reported as made: HubSpot's date-based associations API answers
200/201 with `errors` naming the inputs it did not carry out, so the links stage reads every
answer whatever its status, reads back what an answer leaves unsaid, and the next run completes
what was refused."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.sandbox import Fault, Sandbox

from .conftest import CliRun, read_sheet, write_csv, write_mapping
from .test_links import CARTS, cart_ids, link_requests, links, run_args

Runner = Callable[..., CliRun]

CONTACTS = [str(1001 + i) for i in range(8)]
"""Contacts the sandbox's portal holds from the start."""


def cart_sheet(path: Path, carts: int, seed: int = 7) -> tuple[Path, dict[str, set[str]]]:
    """`carts` carts, each linked to two or three of the seeded contacts."""
    rng = random.Random(seed)
    wanted = {f"C{n:03d}": set(rng.sample(CONTACTS, rng.choice((2, 3)))) for n in range(carts)}
    rows = [["Ref", "Name", "Contacts"]] + [
        [ref, f"Cart {ref}", ";".join(sorted(targets))] for ref, targets in wanted.items()
    ]
    return write_csv(path, rows), wanted


def said_made(message: str) -> set[str]:
    """The contacts a row's message says were linked (`links: + contacts 1001, ...`)."""
    part = next((p for p in message.split("; ") if p.startswith("links: ")), "")
    return {item.split()[-1] for item in part[len("links: ") :].split(", ") if item.startswith("+")}


def test_links_refused_in_a_2xx_answer_are_incomplete_and_the_next_run_makes_them(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox(association_refusal_rate=0.2, seed=3)
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="to: contacts", policy="sync"))
    data, wanted = cart_sheet(tmp_path / "carts.csv", 40)
    # Upsert: the carts' links go through the associations API, not inline with the creates.
    first = run_cli(*run_args(data, mapping, box, tmp_path, "--mode", "upsert"))
    assert first.code == 1, first.err
    assert box.faults["link_refused"] >= 5  # the fault happened, a fifth of about 100 links
    answers = [
        r for r in box.received if r.path.endswith("/batch/create") and "/associations/" in r.path
    ]
    assert answers
    ids = cart_ids(box)
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    incomplete = 0
    for ref, targets in wanted.items():
        held = links(box, ids[ref])
        row = rows[ref]
        # Nothing is said to be linked that HubSpot does not hold.
        assert said_made(str(row["message"])) <= held, (ref, row["message"])
        if held == targets:
            assert row["status"] == "created", (ref, row)
        else:
            incomplete += 1
            assert row["status"] == "incomplete", (ref, row)
            for missing in targets - held:
                assert f"linking contacts {missing} was refused" in str(row["message"])
                assert "association limit" in str(row["message"])
    assert incomplete == len({ref for ref, t in wanted.items() if links(box, ids[ref]) != t})
    assert incomplete > 0

    box.config.association_refusal_rate = 0.0
    since = len(box.received)
    second = run_cli(*run_args(data, mapping, box, tmp_path, "--mode", "upsert"))
    assert second.code == 0, second.err
    assert {ref: links(box, ids[ref]) for ref in wanted} == wanted
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert {r["status"] for r in rows.values()} <= {"updated", "unchanged"}
    resent = [p for p in link_requests(box, since) if p.endswith("/batch/create")]
    assert 0 < len(resent) <= 2  # only the refused links, in a batch or two

    third_since = len(box.received)
    third = run_cli(*run_args(data, mapping, box, tmp_path, "--mode", "upsert"))
    assert third.code == 0
    assert link_requests(box, third_since) == []  # nothing left to send


def two_carts(tmp: Path) -> tuple[Path, Path]:
    """A carts mapping linking to contacts, and a sheet of two carts with three links."""
    mapping = write_mapping(tmp / "m.yaml", CARTS.format(to="to: contacts", policy="sync"))
    rows = [["Ref", "Name", "Contacts"], ["C1", "a", "1001;1002"], ["C2", "b", "1003"]]
    return mapping, write_csv(tmp / "c.csv", rows)


def _answer(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2026-12-06T02:00:00.000Z",
        "completedAt": "2026-12-06T02:00:01.000Z",
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return body


def test_an_answer_that_names_no_input_is_read_back_before_anything_is_reported(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping, data = two_carts(tmp_path)
    # Carried out, then answered 200 with no results and an error that names no input: the
    # answer proves nothing either way, so the links are read back, and they are there.
    unnamed = {"status": "error", "category": "VALIDATION_ERROR", "message": "Something failed"}
    sandbox.inject(
        Fault(status=200, body=_answer([], [unnamed]), after=True, path="contacts/batch/create")
    )
    result = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert"))
    assert result.code == 0, result.err
    ids = cart_ids(sandbox)
    assert links(sandbox, ids["C1"]) == {"1001", "1002"}
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["C1"]["status"] == "created"
    assert any(p.endswith("/batch/read") for p in link_requests(sandbox))


def test_a_200_that_lists_no_results_for_links_not_made_leaves_them_incomplete(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    mapping, data = two_carts(tmp_path)
    # Not carried out, yet answered 200 COMPLETE with no results and no errors.
    sandbox.inject(Fault(status=200, body=_answer([], []), path="contacts/batch/create"))
    first = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert"))
    assert first.code == 1
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert rows["C1"]["status"] == rows["C2"]["status"] == "incomplete"
    assert "reading the record's links back showed it was not" in str(rows["C1"]["message"])
    second = run_cli(*run_args(data, mapping, sandbox, tmp_path, "--mode", "upsert"))
    assert second.code == 0, second.err
    ids = cart_ids(sandbox)
    assert links(sandbox, ids["C1"]) == {"1001", "1002"}
    assert links(sandbox, ids["C2"]) == {"1003"}


def test_removals_refused_in_a_200_are_kept_and_removed_by_the_next_run(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, run_cli: Runner
) -> None:
    box = make_sandbox()
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="to: contacts", policy="sync"))
    data, wanted = cart_sheet(tmp_path / "carts.csv", 30)
    assert run_cli(*run_args(data, mapping, box, tmp_path)).code == 0
    # Every cart now keeps only its first contact: the others are removed, a fifth refused.
    fewer = {ref: {min(t)} for ref, t in wanted.items()}
    write_csv(
        data, [["Ref", "Name", "Contacts"]] + [[r, f"Cart {r}", min(t)] for r, t in wanted.items()]
    )
    box.config.association_refusal_rate = 0.2
    first = run_cli(*run_args(data, mapping, box, tmp_path))
    assert first.code == 1
    assert box.faults["link_refused"] > 0
    ids = cart_ids(box)
    rows = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    for ref in wanted:
        held = links(box, ids[ref])
        if held == fewer[ref]:
            assert rows[ref]["status"] == "updated", rows[ref]
        else:
            assert rows[ref]["status"] == "incomplete", rows[ref]
            assert "unlinking contacts" in str(rows[ref]["message"])
    box.config.association_refusal_rate = 0.0
    second = run_cli(*run_args(data, mapping, box, tmp_path))
    assert second.code == 0, second.err
    assert {ref: links(box, ids[ref]) for ref in wanted} == fewer


def test_an_error_naming_one_id_does_not_undo_what_the_answer_lists_as_made(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    # Two carts gain a link to contact 1005; the answer lists one as made and names 1005
    # alone in an error (an id, not a pair): the listed link is made, the other refused.
    mapping = write_mapping(tmp_path / "m.yaml", CARTS.format(to="to: contacts", policy="sync"))
    rows = [["Ref", "Name", "Contacts"], ["C1", "a", "1001"], ["C2", "b", "1002"]]
    data = write_csv(tmp_path / "c.csv", rows)
    assert run_cli(*run_args(data, mapping, sandbox, tmp_path)).code == 0
    ids = cart_ids(sandbox)
    write_csv(data, [rows[0], ["C1", "a", "1001;1005"], ["C2", "b", "1002;1005"]])
    made = {"fromObjectTypeId": "0-142", "fromObjectId": ids["C2"], "toObjectTypeId": "0-1",
            "toObjectId": "1005", "labels": []}  # fmt: skip
    error = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "One or more associations are invalid",
        "context": {"INVALID_OBJECT_IDS": ["1005"]},
    }
    # Carried out (both links), then answered as a portal might: one listed, 1005 named.
    sandbox.inject(
        Fault(status=200, body=_answer([made], [error]), after=True, path="contacts/batch/create")
    )
    second = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    sheet = {r["Ref"]: r for r in read_sheet(tmp_path / "out.xlsx")}
    assert sheet["C2"]["status"] == "updated", sheet["C2"]
    assert sheet["C2"]["message"] == "links: + contacts 1005"
    assert sheet["C1"]["status"] == "incomplete"  # refused by the answer's word
    assert second.code == 1
    third = run_cli(*run_args(data, mapping, sandbox, tmp_path))
    assert third.code == 0, third.err
    assert links(sandbox, ids["C1"]) == {"1001", "1005"}
    assert links(sandbox, ids["C2"]) == {"1002", "1005"}
