"""Identity is exact: journal keys name their property and compare as HubSpot compares values
(exactly, but emails without regard to case); results are never matched loosely."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from importer.core.prepared import values_hash
from importer.sandbox import Fault, Sandbox
from importer.state.journal import BatchRow, Journal, Outcome, journal_path

from .conftest import CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]
BY_SKU = """\
object_type: products
key: SKU
columns:
  SKU: hs_sku
  Name: name
"""


def run(run_cli: Runner, box: Sandbox, tmp_path: Path, mapping: str, rows: list[list[str]],
        out: str, *extra: str) -> CliRun:  # fmt: skip
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_csv(tmp_path / f"{out}.csv", rows)
    m = write_mapping(tmp_path / f"{out}.yaml", mapping)
    return run_cli(
        "run", "-m", m, data, "--base-url", box.url, "--state-dir", tmp_path / "state",
        "--out", tmp_path / f"{out}.xlsx", *extra,
    )  # fmt: skip


def by_sku(box: Sandbox) -> dict[str, str]:
    return {r["properties"]["hs_sku"]: r["id"] for r in box.records("products")}


def test_keys_that_differ_only_in_leading_zeros_stay_two_records(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The answer is lost after HubSpot created both: the lookup must not merge them.
    sandbox.inject(Fault(drop=True, after=True, path="/batch/create"))
    first = run(
        run_cli, sandbox, tmp_path, BY_SKU,
        [["SKU", "Name"], ["00420", "Padded"], ["420", "Plain"]], "n1",
    )  # fmt: skip
    assert first.code == 0, first.err
    ids = by_sku(sandbox)
    rows = {r["SKU"]: r for r in read_sheet(tmp_path / "n1.xlsx")}
    assert rows["00420"]["hubspot_id"] == ids["00420"]
    assert rows["420"]["hubspot_id"] == ids["420"]
    assert ids["00420"] != ids["420"]
    # Tonight only row 420 changes: the 00420 record keeps its values.
    run(
        run_cli, sandbox, tmp_path, BY_SKU,
        [["SKU", "Name"], ["00420", "Padded"], ["420", "Plain, renamed"]], "n2",
    )  # fmt: skip
    names = {
        r["properties"]["hs_sku"]: r["properties"]["name"] for r in sandbox.records("products")
    }
    assert names == {"00420": "Padded", "420": "Plain, renamed"}


def test_mappings_keyed_on_different_properties_never_share_a_key(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    by_name = "object_type: products\nkey: Name\ncolumns:\n  Name: name\n  Price: price\n"
    run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], ["P1", "Alpha"]], "a")
    other = run(run_cli, sandbox, tmp_path, by_name, [["Name", "Price"], ["P1", "3"]], "b")
    assert other.out.startswith("products: 1 rows: 1 created."), other.err
    names = sorted(r["properties"]["name"] for r in sandbox.records("products"))
    assert names == ["Alpha", "P1"]  # the SKU-keyed record was not taken for the name-keyed row


def test_emails_are_one_key_whatever_their_case(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    contacts = "object_type: contacts\nkey: Email\ncolumns:\n  Email: email\n  First: firstname\n"
    run(
        run_cli,
        sandbox,
        tmp_path,
        contacts,
        [["Email", "First"], ["Mary@Example.com", "Mary"]],
        "1",
    )
    again = run(
        run_cli,
        sandbox,
        tmp_path,
        contacts,
        [["Email", "First"], ["MARY@example.COM", "Mary"]],
        "2",
    )
    assert again.code == 0, again.err
    assert not again.out.startswith("contacts: 1 rows: 1 created")
    marys = [
        r for r in sandbox.records("contacts") if r["properties"]["email"] == "mary@example.com"
    ]
    assert len(marys) == 1


def test_without_a_key_a_row_never_takes_the_record_of_a_row_that_sent_more(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # Row 2 sends a subset of row 3's values. Results come back shuffled, without trace ids.
    keyless = "object_type: products\ncolumns:\n  Name: name\n  Price: price\n"
    for seed in range(6):
        box = make_sandbox(seed=seed)
        result = run(
            run_cli, box, tmp_path / f"s{seed}", keyless,
            [["Name", "Price"], ["Mug", ""], ["Mug", "5"], ["Cup", ""]], "k",
        )  # fmt: skip
        assert result.code == 0, result.err
        held = {r["id"]: r["properties"].get("price") for r in box.records("products")}
        rows = read_sheet(tmp_path / f"s{seed}" / "k.xlsx")
        assert held[rows[1]["hubspot_id"]] == "5"
        assert held[rows[0]["hubspot_id"]] is None
        assert len({r["hubspot_id"] for r in rows}) == 3


@pytest.mark.parametrize("open_batch", [False, True], ids=["synced", "open-batch"])
def test_a_journal_of_an_earlier_version_gets_keys_that_name_their_property(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, open_batch: bool
) -> None:
    (made,) = sandbox_create(sandbox, "00420", "Padded")
    journal = Journal(
        journal_path(tmp_path / "state", sandbox.url, "products", sandbox.portal.portal_id)
    )
    journal.start_run("old", input_file="x", sheet=None, mapping_file="m", mode="create",
                      base_url=sandbox.url, object_type="products")  # fmt: skip
    row = BatchRow(
        row_key="key:00420",
        key_value="00420",
        trace_id="old-row-2",
        sent_hash=values_hash({"hs_sku": "00420", "name": "Padded"}),
        source_row=2,
    )
    batch = journal.begin_batch("old", "create", [row])
    if not open_batch:
        journal.settle(batch, "old", [(row, Outcome.CREATED, made)])
    journal.close()
    result = run(run_cli, sandbox, tmp_path, BY_SKU, [["SKU", "Name"], ["00420", "Padded"]], "r")
    assert result.code == 0, result.err
    (seen,) = read_sheet(tmp_path / "r.xlsx")
    assert (seen["status"], seen["hubspot_id"]) == ("unchanged", made)
    assert len(sandbox.records("products")) == 1


def sandbox_create(box: Sandbox, sku: str, name: str) -> list[str]:
    records = box.store.create_many("products", [({"hs_sku": sku, "name": name}, [])])
    return [r["id"] for r in records]


@pytest.mark.parametrize("spelling", ["http://localhost:{port}", "HTTP://127.1:0{port}/"])
def test_every_spelling_of_one_base_url_is_one_journal_and_one_lock(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, spelling: str
) -> None:
    # One portal told two ways must not get two journals (and two locks): the second run,
    # keyed on a non-unique name, would create every row again.
    port = sandbox.url.rsplit(":", 1)[1]
    other = spelling.format(port=port)
    assert journal_path(tmp_path, other, "products", 1) == journal_path(
        tmp_path, sandbox.url, "products", 1
    )
    mapping = write_mapping(tmp_path / "m.yaml", "object_type: products\nkey: Name\ncolumns:\n"
                            "  Name: name\n")  # fmt: skip
    data = write_csv(tmp_path / "c.csv", [["Name"], ["Mug"], ["Hoodie"]])
    for base in (sandbox.url, other):
        result = run_cli("run", "-m", mapping, data, "--base-url", base, "--state-dir",
                         tmp_path / "state", "--out", tmp_path / "o.xlsx")  # fmt: skip
        assert result.code == 0, result.message
    assert len(sandbox.records("products")) == 2
