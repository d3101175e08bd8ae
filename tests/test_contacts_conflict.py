"""End to end: a contacts sheet whose one email HubSpot already holds. HubSpot refuses a contact
create that meets a held email whole (409 CONFLICT), so the run must split the batch, create
the other rows in the same run, and adopt the held contact for its row as a per-input conflict
does (the row updates it, and is that record from now on), never create it twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from importer.core.hubspot import DEFAULT_API_VERSION
from importer.sandbox import Sandbox

from .conftest import TOKEN, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]
CONTACTS = """\
object_type: contacts
key: Email
columns:
  Email: email
  First: firstname
"""


def seed_contact(box: Sandbox, email: str, first: str) -> str:
    """Create a contact through the sandbox's own API, as someone else did in HubSpot."""
    r = requests.post(
        f"{box.url}/crm/objects/{DEFAULT_API_VERSION}/contacts/batch/create",
        json={"inputs": [{"properties": {"email": email, "firstname": first}}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["results"][0]["id"])


def test_a_held_email_does_not_stop_the_other_rows_of_its_batch(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    held = seed_contact(sandbox, "Person.5@Example.com", "Seeded")
    rows = [["Email", "First"], *[[f"person.{n}@example.com", f"P{n}"] for n in range(1, 11)]]
    data = write_csv(tmp_path / "contacts.csv", rows)
    mapping = write_mapping(tmp_path / "contacts.yaml", CONTACTS)
    out = tmp_path / "results.xlsx"

    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url,
        "--state-dir", tmp_path / "state", "--out", out,
    )  # fmt: skip

    # The other 9 are created in this run; the held contact is that row's record now.
    assert result.out.splitlines()[0] == "contacts: 10 rows: 9 created, 1 updated.", result.err
    assert result.code == 0
    sheet = {r["Email"]: r for r in read_sheet(out)}
    adopted = sheet.pop("person.5@example.com")
    assert adopted["status"] == "updated"
    assert str(adopted["hubspot_id"]) == held
    assert (
        f"HubSpot already held a record with email 'person.5@example.com' (id {held})"
        in (adopted["message"])
    )
    assert {r["status"] for r in sheet.values()} == {"created"}
    mine = [
        r for r in sandbox.records("contacts") if r["properties"]["email"].startswith("person.")
    ]
    assert len(mine) == 10  # 9 created and the held one: no email twice
    assert {r["id"]: r["properties"]["firstname"] for r in mine}[held] == "P5"
    assert {str(r["hubspot_id"]) for r in sheet.values()} == {r["id"] for r in mine} - {held}

    again = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url,
        "--state-dir", tmp_path / "state", "--out", out,
    )  # fmt: skip
    assert again.out.splitlines()[0] == "contacts: 10 rows: 10 unchanged.", again.err
    creates = [r for r in sandbox.received if r.path.endswith("/contacts/batch/create")]
    assert len(creates) == 9 + 1  # the seed, then the split of the one refused batch


def test_a_held_contact_adopted_by_a_create_keeps_what_write_rules_leave_to_hubspot(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    held = seed_contact(sandbox, "anna@example.com", "Anna")
    mapping = write_mapping(
        tmp_path / "contacts.yaml",
        CONTACTS.replace("  First: firstname\n", "  First: {property: firstname, write: "
                         "create_only}\n  City: {property: city, write: if_empty}\n"
                         "  Last: lastname\n"),
    )  # fmt: skip
    rows = [["Email", "First", "City", "Last"], ["anna@example.com", "Annette", "Bonn", "Berg"],
            ["ben@example.com", "Ben", "Köln", "Bauer"]]  # fmt: skip
    out = tmp_path / "results.xlsx"
    result = run_cli(
        "run", "-m", mapping, write_csv(tmp_path / "c.csv", rows), "--base-url", sandbox.url,
        "--state-dir", tmp_path / "state", "--out", out,
    )  # fmt: skip
    assert result.code == 0, result.err
    records = {r["id"]: r["properties"] for r in sandbox.records("contacts")}
    assert (records[held]["firstname"], records[held]["lastname"]) == ("Anna", "Berg")
    assert records[held].get("city") in (None, "")  # not read, so not written
    adopted = {r["Email"]: r for r in read_sheet(out)}["anna@example.com"]
    assert (
        "held back by write rules: city (if_empty: not read); firstname (create_only)"
        in (adopted["message"])
    )
    created = next(p for p in records.values() if p.get("email") == "ben@example.com")
    assert (created["firstname"], created["city"]) == ("Ben", "Köln")
