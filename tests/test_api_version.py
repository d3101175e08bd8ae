"""One API version setting: HubSpot's current date-based API (2026-09) by default, falling back to
2026-03 and then the numbered paths where HubSpot does not serve it; a version pinned with
--api-version (`legacy` for the numbered paths); a clear error naming the setting when HubSpot
serves none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from importer.core.hubspot import ApiPaths
from importer.sandbox import Fault, Sandbox

from .conftest import (
    PRODUCT_ROWS,
    PRODUCTS_MAPPING,
    CliRun,
    write_csv,
    write_mapping,
    write_xlsx,
)

Runner = Callable[..., CliRun]
NUMBERED = ("/crm/v3/", "/crm/v4/", "/crm/associations/v4/", "/account-info/v3/")

CARTS_MAPPING = """\
object_type: carts
key: Cart ref
columns:
  Cart ref: hs_external_cart_id
  Total: {property: hs_total_price, type: number}
associations:
  - column: Contact ids
    separator: ";"
    to: contacts
    types:
      - {associationCategory: HUBSPOT_DEFINED, associationTypeId: 586}
      - {label: Primary buyer}
"""


def paths(box: Sandbox) -> list[str]:
    return [r.path for r in box.received]


def test_paths_of_every_endpoint_in_both_families() -> None:
    new, old = ApiPaths(), ApiPaths("legacy")
    assert new.batch("products", "create") == "/crm/objects/2026-09/products/batch/create"
    assert old.batch("products", "create") == "/crm/v3/objects/products/batch/create"
    assert new.search("0-7") == "/crm/objects/2026-09/0-7/search"
    assert new.properties("carts") == "/crm/properties/2026-09/carts"
    assert old.properties("carts") == "/crm/v3/properties/carts"
    assert new.labels("carts", "contacts") == "/crm/associations/2026-09/carts/contacts/labels"
    assert old.labels("carts", "contacts") == "/crm/v4/associations/carts/contacts/labels"
    assert (
        new.associations_batch("carts", "contacts", "labels/archive")
        == "/crm/associations/2026-09/carts/contacts/batch/labels/archive"
    )
    assert new.account_details() == "/account-info/2026-09/details"
    assert old.account_details() == "/account-info/v3/details"
    assert ApiPaths(" 2027-03 ").record("deals", "9") == "/crm/objects/2027-03/deals/9"


@pytest.mark.parametrize(
    "path",
    [
        "/crm/objects/2026-09/products/batch/create",
        "/crm/properties/2026-09/carts",
        "/crm/associations/2026-09/carts/contacts/batch/labels/archive",
        "/account-info/2026-09/details",
    ],
)
def test_a_path_is_sent_again_at_another_version_as_that_version_builds_it(path: str) -> None:
    new, older, old = ApiPaths(), ApiPaths("2026-03"), ApiPaths("legacy")
    assert new.builds(path)
    assert not older.builds(path)
    assert new.translate(path, older) == path.replace("2026-09", "2026-03")
    assert older.builds(new.translate(path, older))
    assert old.builds(new.translate(path, old))
    assert old.translate(new.translate(path, old), new) == path
    assert not new.builds("/oauth/v1/access-tokens/x")


def test_every_command_of_a_nightly_cycle_uses_date_based_paths_only(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The sandbox answers 404 on the numbered paths (the suite's default): any use fails.
    products = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:3], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    carts = write_csv(
        tmp_path / "carts.csv",
        [["Cart ref", "Total", "Contact ids"], ["C-1", "10", "1001;1002"], ["C-2", "5", "1003"]],
    )
    carts_mapping = write_mapping(tmp_path / "c.yaml", CARTS_MAPPING)
    state = tmp_path / "state"
    target = ("--base-url", sandbox.url, "--state-dir", state)
    drafted = run_cli(
        "init", products, "--object", "products", "--out", tmp_path / "d.yaml", "--base-url",
        sandbox.url,
    )  # fmt: skip
    assert drafted.code == 0, drafted.err
    assert run_cli("check", "-m", mapping, products, *target).code == 0
    first = run_cli("run", "-m", mapping, products, *target, "--out", tmp_path / "1.xlsx")
    assert first.code == 0, first.err
    assert first.out.startswith("products: 2 rows: 2 created.")
    cart_run = run_cli("run", "-m", carts_mapping, carts, *target, "--out", tmp_path / "c.xlsx")
    assert cart_run.out.startswith("carts: 2 rows: 2 created."), cart_run.err
    (cart,) = [
        c for c in sandbox.records("carts") if c["properties"]["hs_external_cart_id"] == "C-2"
    ]
    assert [link[1] for link in sandbox.store.associations("carts", cart["id"])] == ["1003", "1003"]
    listed = run_cli("runs", "--state-dir", state)
    assert listed.code == 0
    (run_id,) = [line.split()[0] for line in listed.out.splitlines() if " products " in line]
    assert run_cli("show", run_id, "--state-dir", state).code == 0
    undone = run_cli("undo", run_id, "--state-dir", state, "--yes", "--base-url", sandbox.url)
    assert undone.code == 0, undone.err
    assert sandbox.records("products") == []
    used = paths(sandbox)
    assert not [p for p in used if p.startswith(NUMBERED)]
    assert {p.split("/")[1:4][-1] for p in used if p.startswith("/crm/")} == {"2026-09"}
    assert "/account-info/2026-09/details" in used


def test_legacy_uses_the_numbered_paths(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(legacy_paths=True)
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:3], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", box.url, "--api-version", "legacy",
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert paths(box)
    assert all(p.startswith(NUMBERED) for p in paths(box))
    assert "/crm/v3/objects/products/batch/create" in paths(box)


def test_the_environment_sets_the_version(
    run_cli: Runner,
    make_sandbox: Callable[..., Sandbox],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = make_sandbox(legacy_paths=True)
    monkeypatch.setenv("HUBSPOT_API_VERSION", "legacy")
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli("check", "-m", mapping, data, "--base-url", box.url)
    assert result.code == 0, result.err
    assert all(p.startswith(NUMBERED) for p in paths(box))


def test_a_malformed_version_is_refused_before_anything_is_sent(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli("run", "-m", mapping, data, "--base-url", sandbox.url, "--api-version", "v3")
    assert result.code == 2
    assert "API version 'v3' is not one HubSpot uses" in result.err
    assert "--api-version or HUBSPOT_API_VERSION" in result.err
    assert sandbox.received == []


@pytest.mark.parametrize("portal_check", [True, False], ids=["portal-check", "no-portal-check"])
def test_a_version_hubspot_does_not_serve_names_the_setting(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path, portal_check: bool
) -> None:
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    extra = () if portal_check else ("--no-portal-check",)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", sandbox.url, "--api-version", "2031-09",
        "--out", tmp_path / "o.xlsx", *extra,
    )  # fmt: skip
    assert result.code == 2
    assert "HubSpot does not serve API version '2031-09' at this address" in result.message
    assert "--api-version (or HUBSPOT_API_VERSION)" in result.message
    assert sandbox.records("products") == []


def test_legacy_against_a_portal_past_the_sunset_says_so(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "check", "-m", mapping, data, "--base-url", sandbox.url, "--api-version", "legacy"
    )
    assert result.code == 2
    assert "does not serve API version 'legacy'" in result.message
    assert "(HTTP 404 for /account-info/v3/details)" in result.message


def test_the_shipped_demo_needs_no_numbered_path(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parent.parent
    result = run_cli(
        "run", "--mapping", root / "mappings" / "products.yaml", root / "data" / "products.xlsx",
        "--base-url", sandbox.url, "--out", tmp_path / "demo.xlsx",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.out.startswith("products: 320 rows: 320 created.")
    assert not [r.path for r in sandbox.received if r.path.startswith(NUMBERED)]


def _links_by_cart(box: Sandbox) -> dict[str, list[str]]:
    return {
        c["properties"]["hs_external_cart_id"]: sorted(
            {link[1] for link in box.store.associations("carts", c["id"])}
        )
        for c in box.records("carts")
    }


def _import_products_and_carts(
    run_cli: Runner, box: Sandbox, tmp_path: Path, *extra: object
) -> tuple[CliRun, CliRun]:
    products = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:3], sheet="Catalogue")
    carts = write_csv(
        tmp_path / "carts.csv",
        [["Cart ref", "Total", "Contact ids"], ["C-1", "10", "1001;1002"], ["C-2", "5", "1003"]],
    )
    target = ("--base-url", box.url, "--state-dir", tmp_path / "state", *extra)
    first = run_cli(
        "run", "-m", write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING), products, *target,
        "--out", tmp_path / "p-out.xlsx",
    )  # fmt: skip
    second = run_cli(
        "run", "-m", write_mapping(tmp_path / "c.yaml", CARTS_MAPPING), carts, *target,
        "--out", tmp_path / "c-out.xlsx",
    )  # fmt: skip
    return first, second


def test_a_portal_serving_only_2026_09_imports_products_and_carts_with_their_links(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(api_versions=("2026-09",), legacy_paths=False)
    products, carts = _import_products_and_carts(run_cli, box, tmp_path)
    assert products.code == 0, products.err
    assert products.out.startswith("products: 2 rows: 2 created.")
    assert carts.code == 0, carts.err
    assert carts.out.startswith("carts: 2 rows: 2 created.")
    assert _links_by_cart(box) == {"C-1": ["1001", "1002"], "C-2": ["1003"]}
    assert {p.split("/")[3] for p in paths(box) if p.startswith("/crm/")} == {"2026-09"}


@pytest.mark.parametrize(
    ("served", "legacy", "used"),
    [(("2026-03",), False, "2026-03"), ((), True, "legacy")],
    ids=["2026-03", "legacy"],
)
def test_where_2026_09_is_not_served_the_run_falls_back_and_says_so(
    run_cli: Runner,
    make_sandbox: Callable[..., Sandbox],
    tmp_path: Path,
    served: tuple[str, ...],
    legacy: bool,
    used: str,
) -> None:
    box = make_sandbox(api_versions=served, legacy_paths=legacy)
    products, carts = _import_products_and_carts(run_cli, box, tmp_path)
    assert products.code == 0, products.err
    assert "HubSpot does not serve API version 2026-09" in products.err
    assert carts.code == 0, carts.err
    assert _links_by_cart(box) == {"C-1": ["1001", "1002"], "C-2": ["1003"]}
    refused = [r.path for r in box.received if "/2026-09/" in r.path]
    # One 404 per client that asked first at 2026-09, never a write carried out there.
    assert refused
    assert all("batch" not in p for p in refused)
    assert len(box.records("products")) == 2
    assert open_summary_version(tmp_path / "p-out.xlsx") == used


def open_summary_version(workbook: Path) -> str:
    from openpyxl import load_workbook

    book = load_workbook(workbook, read_only=True)
    try:
        for row in book["Summary"].iter_rows(values_only=True):
            if row and row[0] == "API version":
                return str(row[1])
    finally:
        book.close()
    raise AssertionError("no API version on the Summary sheet")


def test_a_write_sent_first_to_a_version_not_served_is_sent_again_once_at_the_next(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # No portal check and a given portal id: the first request HubSpot sees is a create.
    box = make_sandbox(api_versions=("2026-03",), legacy_paths=False)
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:3], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", box.url, "--no-portal-check",
        "--portal-id", "4242", "--out", tmp_path / "o.xlsx", "--state-dir", tmp_path / "s",
    )  # fmt: skip
    assert result.code == 0, result.err
    creates = [r.path for r in box.received if r.path.endswith("/batch/create")]
    assert creates == [
        "/crm/objects/2026-09/products/batch/create",
        "/crm/objects/2026-03/products/batch/create",
    ]
    assert len(box.records("products")) == 2
    assert open_summary_version(tmp_path / "o.xlsx") == "2026-03"  # what the writes used


def test_any_404_for_the_account_details_means_the_version_is_not_served(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # Account details name no record or object type: whatever the 404's body says (a proxy
    # may answer OBJECT_NOT_FOUND for a route it lacks), the version is not served there.
    box = make_sandbox()  # serves 2026-09 but for the account details' answer below
    box.inject(
        Fault(
            status=404,
            body={
                "status": "error",
                "message": "Resource not found",
                "category": "OBJECT_NOT_FOUND",
            },
            path="/account-info/2026-09/details",
        )
    )
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", box.url, "--out", tmp_path / "o.xlsx",
        "--state-dir", tmp_path / "s",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "using 2026-03 instead" in result.err
    assert len(box.records("products")) == 1


def test_a_pinned_version_does_not_fall_back(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(api_versions=("2026-09",), legacy_paths=False)
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", box.url, "--api-version", "2026-03",
        "--out", tmp_path / "o.xlsx",
    )  # fmt: skip
    assert result.code == 2
    assert "HubSpot does not serve API version '2026-03' at this address" in result.message
    assert not [r for r in box.received if "/2026-09/" in r.path]
    assert box.records("products") == []


def test_where_hubspot_serves_no_version_every_one_tried_is_named(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = make_sandbox(api_versions=(), legacy_paths=False)
    data = write_xlsx(tmp_path / "p.xlsx", PRODUCT_ROWS[:2], sheet="Catalogue")
    mapping = write_mapping(tmp_path / "p.yaml", PRODUCTS_MAPPING)
    result = run_cli(
        "run", "-m", mapping, data, "--base-url", box.url, "--out", tmp_path / "o.xlsx"
    )
    assert result.code == 2
    assert (
        "HubSpot does not serve any of API versions '2026-09', '2026-03', 'legacy' at this "
        "address" in result.message
    )
    assert box.records("products") == []
