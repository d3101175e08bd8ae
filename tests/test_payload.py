"""Payloads: rows held column by column give the same bodies and fingerprints as one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import importer.core.prepared
from importer import load_table, parse_mapping, validate
from importer.core.prepared import Prepared, values_hash
from importer.stages.prepare import build_rows

from .conftest import write_csv

AWKWARD = [
    "plain",
    "",
    'say "hi"',
    "back\\slash",
    "tab\tand\nnewline",
    "bell\x07",
    "Café ☕ 𝄞",
    "line\u2028separator",
    "  padded  ",
]


def prepare(tmp_path: Path, mapping: dict[str, Any], rows: list[list[str]]) -> Prepared:
    header = list(mapping["columns"])
    path = write_csv(tmp_path / "in.csv", [header, *rows])
    spec = parse_mapping({"object_type": "products", **mapping})
    return build_rows(validate(load_table(path), spec), spec, "run-1")


@pytest.mark.parametrize(
    "constants", [{}, {"hs_product_type": "inventory", "a_first": "x"}], ids=["none", "two"]
)
def test_fingerprints_match_the_properties_sent(
    tmp_path: Path, constants: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer.core.prepared, "HASH_CHUNK", 4)  # chunk edges inside the sheet
    rows = [[f"{i:03d}", a, b] for i, (a, b) in enumerate(zip(AWKWARD, AWKWARD[::-1], strict=True))]
    prepared = prepare(
        tmp_path,
        {
            "key": "SKU",
            "columns": {"SKU": "hs_sku", "Name": "name", "Note": "description"},
            "constants": constants,
        },
        rows,
    )
    assert len(prepared) == len(rows)
    for i, row in enumerate(prepared):
        assert row.row == i + 2
        assert row.key == f"key:hs_sku={i:03d}"
        assert row.key_value == f"{i:03d}"
        # Empty cells are left out, constants always sent.
        assert "" not in row.properties.values()
        assert constants.items() <= row.properties.items()
        assert row.sent_hash == values_hash(row.properties)
        assert row.trace_id == f"run-1-row-{i + 2}"
    everyone = list(range(len(prepared)))
    assert prepared.hashes(everyone) == [r.sent_hash for r in prepared]
    assert prepared.hashes(everyone[::-2]) == [r.sent_hash for r in prepared][::-2]


def test_rows_without_a_key_are_told_apart_by_their_order(tmp_path: Path) -> None:
    prepared = prepare(
        tmp_path,
        {"columns": {"Name": "name", "Note": "description"}},
        [["Mug", "blue"], ["Mug", "blue"], ["Cap", ""], ["Mug", "blue"]],
    )
    mug = values_hash({"name": "Mug", "description": "blue"})
    cap = values_hash({"name": "Cap"})
    assert prepared.keys == [f"hash:{mug}:1", f"hash:{mug}:2", f"hash:{cap}:1", f"hash:{mug}:3"]
    assert prepared.key_values == [None] * 4
    assert [r.properties for r in prepared[2:3]] == [{"name": "Cap"}]


def test_associations_are_made_per_row(tmp_path: Path) -> None:
    header = ["SKU", "Contacts"]
    path = write_csv(tmp_path / "in.csv", [header, ["1", "11;12"], ["2", ""]])
    spec = parse_mapping(
        {
            "object_type": "carts",
            "key": "SKU",
            "columns": {"SKU": "hs_sku"},
            "associations": [
                {
                    "column": "Contacts",
                    "to": "contacts",
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586}],
                }
            ],
        }
    )
    prepared = build_rows(validate(load_table(path), spec), spec, "r")
    types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586}]
    assert prepared[0].associations == (
        {"to": {"id": "11"}, "types": types},
        {"to": {"id": "12"}, "types": types},
    )
    assert prepared[1].associations == ()
