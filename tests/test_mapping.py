"""Mapping: the YAML contract, and every mistake reported at once with its path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from importer import MappingError, load_mapping, parse_mapping
from importer.core.hubspot import AssociationCategory
from importer.mapping.model import PropertyType

from .conftest import ROOT

ISSUE_EXAMPLE = """
object_type: carts
key: Cart ref
columns:
  Cart ref: hs_external_cart_id
  Total: {property: hs_total_price, type: number}
  Created: {property: hs_created_date, type: date, format: "%d/%m/%Y"}
  Paid: {property: paid, type: bool}
  Status: {property: hs_cart_status, required: true}
constants:
  hs_currency_code: EUR
associations:
  - column: Contact ids
    separator: ";"
    types:
      - {associationCategory: HUBSPOT_DEFINED, associationTypeId: 586}
      - {associationCategory: USER_DEFINED, associationTypeId: 12}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(MappingError) as err:
        parse_mapping(yaml.safe_load(text), source="m.yaml")
    return list(err.value.problems)


def test_the_contract_example_parses() -> None:
    m = parse_mapping(yaml.safe_load(ISSUE_EXAMPLE))
    assert m.object_type == "carts"
    assert m.key == "Cart ref"
    assert m.key_property == "hs_external_cart_id"
    assert [c.column for c in m.columns] == ["Cart ref", "Total", "Created", "Paid", "Status"]
    created = m.by_column["Created"]
    assert (created.type, created.format) == (PropertyType.DATE, "%d/%m/%Y")
    assert m.by_column["Status"].required
    assert m.constants == (("hs_currency_code", "EUR"),)
    (assoc,) = m.associations
    assert assoc.column == "Contact ids"
    assert [t.as_json() for t in assoc.types] == [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 586},
        {"associationCategory": "USER_DEFINED", "associationTypeId": 12},
    ]
    assert assoc.types[1].category is AssociationCategory.USER_DEFINED


@pytest.mark.parametrize("name", ["products.yaml", "carts.yaml"])
def test_shipped_mappings_load(name: str) -> None:
    assert load_mapping(ROOT / "mappings" / name).columns


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("0-7", "products"), ("0-142", "carts"), ("p123_pets", "p123_pets"), ("2-99", "2-99")],
)
def test_object_type_ids_and_custom_objects(given: str, canonical: str) -> None:
    m = parse_mapping({"object_type": given, "columns": {"A": "a"}})
    assert m.object_type == canonical


def test_every_mistake_is_reported_at_once_with_paths_and_suggestions() -> None:
    found = problems("""
object_type: product
colums: {}
columns:
  Price: {property: price, tpye: number}
  Total: {property: total, type: numbr}
  Created: {property: created, type: date, format: "DD/MM/YYYY"}
  Kind: {property: kind, type: enumeration}
  Other: {property: price}
associations:
  - column: Contacts
    types: []
  - column: Buyers
    types:
      - {associationCategory: HUBSPOT_DEFINDE, associationTypeId: 586}
      - {associationCategory: HUBSPOT_DEFINED, associationTypeId: "x"}
key: Cart ref
""")
    assert found == [
        "colums: unknown key; did you mean 'columns'? (allowed: object_type, key, notify, mode, "
        "columns, constants, associations, clear_empty, number, header_row, fill_down, "
        "group_by, skip_rows_without, skip_rows_where, guards, missing_rows)",
        "object_type: 'product' is not an object type; did you mean 'products'?",
        "columns.Price.tpye: unknown key; did you mean 'type'? (allowed: property, type, required, "
        "format, options, timezone, clear_empty, to, by, on_missing, number, currency, values, "
        "values_file, pipeline, write)",
        "columns.Total.type: 'numbr' is not a type; did you mean 'number'? (allowed: string, "
        "number, bool, date, datetime, enumeration, owner)",
        "columns.Created.format: 'DD/MM/YYYY' is not a strftime format such as \"%d/%m/%Y\"",
        "associations[0].types: required: a non-empty list of {associationCategory, "
        "associationTypeId}; an empty list would link nothing",
        "associations[1].types[0].associationCategory: 'HUBSPOT_DEFINDE' is not a category; "
        "did you mean 'HUBSPOT_DEFINED'? (allowed: HUBSPOT_DEFINED, USER_DEFINED, "
        "INTEGRATOR_DEFINED, WORK)",
        "associations[1].types[1].associationTypeId: 'x' is not a positive whole number (find "
        "ids in HubSpot's association labels)",
        "columns.Other.property: 'price' is already mapped from column 'Price'; map each "
        "property once",
        "key: 'Cart ref' must also be listed under columns, so its property can identify the "
        "row in HubSpot",
    ]


def test_message_names_the_file_and_counts_the_mistakes() -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping({"object_type": "products"}, source="m.yaml")
    assert str(err.value).startswith("m.yaml: 1 mistake in the mapping:\n  - columns: required")


@pytest.mark.parametrize(
    ("to", "assoc", "expected"),
    [
        (
            "",
            "{associationCategory: HUBSPOT_DEFINED, associationTypeId: 999}",
            "associations[0].types[0].associationTypeId: 999 is not a HUBSPOT_DEFINED association "
            "type from carts; known: 586 (to contacts), 590 (to line_items), 592 (to orders), "
            "1347 (to deals), 588 (to discounts), 732 (to quotes)",
        ),
        (
            "to: contacts",
            "{associationCategory: HUBSPOT_DEFINED, associationTypeId: 590}",
            "associations[0].types[0].associationTypeId: 590 is not the HUBSPOT_DEFINED type from "
            "carts to contacts; that is 586",
        ),
    ],
    ids=["unknown-id", "wrong-target"],
)
def test_hubspot_defined_type_ids_are_checked(to: str, assoc: str, expected: str) -> None:
    found = problems(f"""
object_type: carts
columns: {{A: a}}
associations:
  - column: Contacts
    {to}
    types: [{assoc}]
""")
    assert found == [expected]


def test_constants_become_hubspot_strings() -> None:
    m = parse_mapping(
        {
            "object_type": "products",
            "columns": {"A": "a"},
            "constants": {"tax": 0.2, "active": True, "code": "007"},
        }
    )
    assert dict(m.constants) == {"tax": "0.2", "active": "true", "code": "007"}


def test_constant_clashing_with_a_column() -> None:
    assert problems("object_type: products\ncolumns: {A: price}\nconstants: {price: 1}\n") == [
        "constants.price: 'price' is also mapped from column 'A'"
    ]


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("object_type: products\ncolumns:\n  A: [unclosed\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"not valid YAML at line 4, column 1"):
        load_mapping(path)


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="no such file; check the --mapping path"):
        load_mapping(tmp_path / "nope.yaml")


def test_missing_sheet_column_names_the_nearest_header() -> None:
    m = parse_mapping(
        {"object_type": "products", "columns": {"Price": "price", "SKU": "hs_sku"}}, source="m.yaml"
    )
    with pytest.raises(MappingError) as err:
        m.check_columns(["sku", "Prices", "Name"], "p.csv")
    assert err.value.problems == (
        "column 'Price' is not in p.csv; did you mean 'Prices'?",
        "column 'SKU' is not in p.csv; did you mean 'sku'?",
    )
    assert err.value.note == "The sheet's columns are: 'sku', 'Prices', 'Name'."
    assert str(err.value).startswith("m.yaml: 2 mistakes in the mapping:")


def test_a_mapped_column_repeated_in_the_sheet_is_refused() -> None:
    m = parse_mapping(
        {"object_type": "products", "columns": {"SKU": "hs_sku", "N": "name"}}, source="m.yaml"
    )
    m.check_columns(["SKU", "N", "N (C)"], "p.csv", {"N (C)": ("C1",)})  # unmapped: fine
    with pytest.raises(MappingError) as err:
        m.check_columns(["SKU", "N", "SKU (C)"], "p.csv", {"SKU": ("A1", "C1")})
    assert err.value.problems[0] == (
        "column 'SKU' appears more than once in p.csv (A1 and C1); rename the copies so the "
        "mapping can tell which one to import"
    )
