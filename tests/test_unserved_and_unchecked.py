"""What the CLI says when HubSpot does not serve the pinned API version to a reference lookup,
what `--no-portal-check` lets through (docs/nightly.md), and the sandbox's daily limit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from importer.sandbox import Sandbox

from .conftest import PRODUCTS_MAPPING, CliRun, read_sheet, write_csv, write_mapping

Runner = Callable[..., CliRun]

LINES = """\
object_type: line_items
columns:
  Line: name
  SKU: {property: hs_product_id, to: products, by: hs_sku}
"""


def test_a_lookup_at_a_version_hubspot_does_not_serve_says_so_before_anything_is_sent(
    run_cli: Runner, sandbox: Sandbox, tmp_path: Path
) -> None:
    # The sandbox no longer serves the numbered paths. With --portal-id and --no-portal-check
    # the first request is the reference lookup (batch/read on hs_sku): its 404 is about the
    # path, not about hs_sku being unique or the mapping, and nothing is searched or written.
    lines = write_csv(tmp_path / "lines.csv", [["Line", "SKU"], ["L1", "A-1"]])
    mapping = write_mapping(tmp_path / "lines.yaml", LINES)
    result = run_cli(
        "run", "-m", mapping, lines, "--base-url", sandbox.url, "--api-version", "legacy",
        "--portal-id", "4242424", "--no-portal-check", "--state-dir", tmp_path / "state",
        "--out", tmp_path / "out.xlsx",
    )  # fmt: skip
    assert result.code == 2
    assert "could not look products up by hs_sku: HubSpot does not serve API version 'legacy'" in (
        result.message
    )
    assert "(HTTP 404 for /crm/v3/objects/products/batch/read)" in result.message
    assert "mapping" not in result.message
    # First the definition of hs_sku (is it unique?), unanswered at this version, then the read.
    assert [r.path for r in sandbox.received] == [
        "/crm/v3/properties/products",
        "/crm/v3/objects/products/batch/read",
    ]


def test_without_the_portal_check_a_misspelt_property_is_refused_row_by_row(
    run_cli: Runner, make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # As docs/nightly.md says: the portal check stops such a mapping before anything is sent
    # (exit 2); without it every batch is sent, HubSpot refuses each row, and the run exits 1.
    rows = [["SKU", "Name", "Price", "Launched", "In stock"]]
    rows += [[f"S-{n}", f"Mug {n}", "1", "", ""] for n in range(150)]
    data = write_csv(tmp_path / "p.csv", rows)
    mapping = write_mapping(
        tmp_path / "p.yaml", PRODUCTS_MAPPING.replace("property: name", "property: nmae")
    )

    def run(box: Sandbox, *extra: str) -> CliRun:
        return run_cli("run", "-m", mapping, data, "--base-url", box.url, "--state-dir",
                       tmp_path / "state", "--out", tmp_path / "out.xlsx", *extra)  # fmt: skip

    checked = make_sandbox()
    refused = run(checked)
    assert refused.code == 2
    assert "columns.Name.property: products have no property 'nmae'" in refused.message
    assert not [r for r in checked.received if r.method == "POST"]

    unchecked = make_sandbox()
    sent = run(unchecked, "--no-portal-check")
    assert sent.code == 1
    creates = [r for r in unchecked.received if r.path.endswith("/batch/create")]
    assert len(creates) == 2  # every batch of 100
    results = read_sheet(tmp_path / "out.xlsx")
    assert {r["status"] for r in results} == {"failed"}
    assert all('Property "nmae" does not exist' in r["message"] for r in results)
    assert unchecked.records("products") == []


def test_the_sandbox_command_defaults_to_a_professional_portals_daily_limit(
    run_cli: Runner,
) -> None:
    shown = run_cli("sandbox", "--help")
    assert shown.code == 0
    assert "[default: 650000; x>=1]" in " ".join(shown.out.split())
