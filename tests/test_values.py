"""Values as a catalogue writes them: numbers in the sheet's own format, and the sheet's own
words mapped to what a property takes (`values:`, `values_file:`), each checked cell by cell."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer import MappingError, Problem, Validated, load_table, parse_mapping, validate
from importer.mapping.file import load_mapping
from importer.mapping.model import PropertyType
from importer.sandbox import Sandbox

from .conftest import CliRun, write_csv, write_xlsx

Runner = Callable[..., CliRun]


def check(tmp_path: Path, mapping: dict[str, Any], rows: list[list[str]]) -> Validated:
    header = list(mapping["columns"])
    path = write_csv(tmp_path / "in.csv", [header, *rows])
    return validate(load_table(path), parse_mapping({"object_type": "products", **mapping}))


def sent(result: Validated, prop: str) -> list[str]:
    return [str(v) for v in result.values[prop]]


EUROPEAN = {"decimal": ",", "thousands": "."}


def test_european_numbers_with_currency_symbols_are_sent_as_plain_decimals(
    tmp_path: Path,
) -> None:
    result = check(
        tmp_path,
        {"number": EUROPEAN, "columns": {"Preis": {"property": "price", "type": "number"}}},
        [["1.299,00"], ["€ 1.299,00"], ["12,5 €"], ["EUR 7"], ["-3,25"], ["1.234.567,891"]],
    )
    assert not result.issues
    assert sent(result, "price") == ["1299.00", "1299.00", "12.5", "7", "-3.25", "1234567.891"]


@pytest.mark.parametrize(
    ("cell", "hint"),
    [
        ("1.29,00", "write it as the mapping's number format says (decimal ',', thousands '.')"),
        ("$ 12,00", "the column holds prices in EUR, and this one is in USD"),
        ("15 %", "a percent sign fits only a percentage property"),
        ("zwölf", "e.g. 1.299,50"),
    ],
)
def test_a_number_not_written_the_sheets_way_names_the_format(
    tmp_path: Path, cell: str, hint: str
) -> None:
    columns = {"Preis": {"currency": "EUR", "type": "number", "number": EUROPEAN}}
    result = check(tmp_path, {"columns": columns}, [[cell], ["12,00"]])
    assert [(i.row, i.problem) for i in result.issues] == [(2, Problem.NOT_A_NUMBER)]
    assert hint in result.issues[0].hint, result.issues[0].hint
    assert sent(result, "hs_price_eur") == ["12.00"]


def test_a_column_format_wins_over_the_mappings_and_plain_columns_stay_strict(
    tmp_path: Path,
) -> None:
    result = check(
        tmp_path,
        {
            "number": EUROPEAN,
            "columns": {
                "Swiss": {
                    "property": "price",
                    "type": "number",
                    "number": {"decimal": ".", "thousands": "'"},
                },
                "Weight": {"property": "weight_kg", "type": "number"},
            },
        },
        [["1'299.50", "2,5"], ["12.5", "3"]],
    )
    assert not result.issues
    assert sent(result, "price") == ["1299.50", "12.5"]
    assert sent(result, "weight_kg") == ["2.5", "3"]


def test_an_excel_number_cell_in_a_decimal_comma_column_is_read_as_it_is(tmp_path: Path) -> None:
    # Excel number cells are read with a dot whatever the sheet's format; a CSV's text is not.
    rows: list[list[Any]] = [["Preis"], [1299.5], [0.75], [0.125], ["1.299,00"]]
    path = write_xlsx(tmp_path / "in.xlsx", rows)
    columns = {"Preis": {"property": "price", "type": "number"}}
    mapping = parse_mapping({"object_type": "products", "number": EUROPEAN, "columns": columns})
    result = validate(load_table(path), mapping)
    assert not result.issues
    assert sent(result, "price") == ["1299.5", "0.75", "0.125", "1299.00"]
    text = check(tmp_path, {"number": EUROPEAN, "columns": mapping_columns(mapping)},
                 [["1299.5"], ["0.125"], ["1.29"], ["12,5"]])  # fmt: skip
    assert [i.row for i in text.issues] == [2, 3, 4]
    assert sent(text, "price") == ["12.5"]


def mapping_columns(mapping: Any) -> dict[str, Any]:
    return {c.column: {"property": c.property, "type": c.type.value} for c in mapping.columns}


def test_a_probability_is_a_share_between_0_and_1(tmp_path: Path) -> None:
    mapping = parse_mapping({"object_type": "deals", "columns": {"P": "win_probability"}})
    spec = dataclasses.replace(mapping.columns[0], type=PropertyType.NUMBER,
                               display_hint="probability")  # fmt: skip
    mapping = dataclasses.replace(mapping, columns=(spec,))
    path = write_csv(tmp_path / "in.csv", [["P"], ["15 %"], ["0.2"], ["20"], ["-1"], ["100 %"]])
    result = validate(load_table(path), mapping)
    assert [i.row for i in result.issues] == [4, 5]
    assert sent(result, "win_probability") == ["0.15", "0.2", "1"]


@pytest.mark.parametrize(
    ("hint", "percent", "expected"),
    [("percentage", None, ["15", "7.5", "20"]),
     ("probability", None, ["0.15", "0.075", "0.2"]),
     ("", "fraction", ["0.15", "0.075", "0.2"]),
     ("percentage", "fraction", ["0.15", "0.075", "0.2"])],
)  # fmt: skip
def test_percentages_are_sent_as_the_property_takes_them(
    tmp_path: Path, hint: str, percent: str | None, expected: list[str]
) -> None:
    number: dict[str, Any] = {"decimal": ","}
    if percent is not None:
        number["percent"] = percent
    mapping = parse_mapping(
        {
            "object_type": "deals",
            "columns": {"P": {"property": "p", "type": "number", "number": number}},
        }
    )
    spec = mapping.columns[0]
    mapping = dataclasses.replace(mapping, columns=(dataclasses.replace(spec, display_hint=hint),))
    path = write_csv(
        tmp_path / "in.csv",
        [["P"], ["15 %"], ["7,5%"], ["20" if hint != "probability" and percent is None else "0,2"]],
    )
    result = validate(load_table(path), mapping)
    assert not result.issues
    assert sent(result, "p") == expected


def test_a_values_map_turns_the_sheets_words_into_the_propertys_values(tmp_path: Path) -> None:
    columns = {
        "Lager": {"property": "in_stock", "type": "bool", "values": {"Ja": True, "Nein": False}},
        "Art": {"property": "kind", "values": {"Ware": "inventory", "Dienst": "service"}},
    }
    result = check(tmp_path, {"columns": columns}, [["ja", "Ware"], ["NEIN ", "Dienst"], ["", "x"]])
    assert [(i.row, i.problem) for i in result.issues] == [(4, Problem.UNKNOWN_VALUE)]
    assert sent(result, "in_stock") == ["true", "false"]
    assert sent(result, "kind") == ["inventory", "service"]


def test_a_word_the_map_does_not_list_is_an_invalid_cell_naming_the_words(tmp_path: Path) -> None:
    columns = {"Lager": {"property": "in_stock", "type": "bool",
                         "values": {"Ja": True, "Nein": False}}}  # fmt: skip
    result = check(tmp_path, {"columns": columns}, [["Vielleicht"], ["true"], ["Ja"]])
    assert [(i.row, i.problem) for i in result.issues] == [
        (2, Problem.UNKNOWN_VALUE),
        (3, Problem.UNKNOWN_VALUE),
    ]
    issue = result.issues[0]
    assert issue.message == '"Vielleicht" is not one of the words the mapping\'s values lists'
    assert issue.hint.startswith("use one of: ")
    assert "Ja" in issue.hint
    assert "Nein" in issue.hint
    assert sent(result, "in_stock") == ["true"]


def test_a_values_file_is_read_relative_to_the_mapping(tmp_path: Path) -> None:
    (tmp_path / "words.csv").write_text("Wort,Wert\nJa,true\nNein,false\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text(
        "object_type: products\ncolumns:\n"
        "  Lager: {property: in_stock, type: bool, values_file: words.csv}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(tmp_path / "m.yaml")
    path = write_csv(tmp_path / "in.csv", [["Lager"], ["Nein"], ["ja"]])
    result = validate(load_table(path), mapping)
    assert sent(result, "in_stock") == ["false", "true"]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"values": {True: "x"}}, 'quote the sheet\'s words, e.g. "Yes"'),
        ({"values": {8: "x"}}, "a word read by YAML as 8: quote the sheet's words"),
        ({"values": {"Ja": "x", "ja": "y"}}, "'ja' is listed twice with different values"),
        ({"values": {"Ja": "x"}, "values_file": "w.csv"}, "give values or values_file, not both"),
        ({"values_file": "missing.csv"}, "does not exist"),
        ({"values": []}, "give the sheet's words and what each means"),
        ({"number": {"decimal": ",", "thousands": ","}}, "both ','"),
        ({"number": {"decimal": ";"}}, "cannot be a decimal separator"),
        ({"currency": "Euro"}, "is not a currency code"),
        ({"write": "sometimes"}, "'sometimes' is not a rule"),
        ({"type": "string", "number": {"decimal": ","}}, "only a number column takes a number"),
    ],
)
def test_mistakes_in_the_value_keys_are_named(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(
            {"object_type": "products", "columns": {"C": {"property": "price", **spec}}},
            source=str(Path("/nonexistent/m.yaml")),
        )
    assert problem in str(err.value), str(err.value)


def test_implied_properties_for_owners_currencies_and_stages() -> None:
    mapping = parse_mapping(
        {
            "object_type": "deals",
            "columns": {
                "Owner": {"type": "owner"},
                "Stage": {"pipeline": "Sales Pipeline"},
            },
        }
    )
    assert [c.property for c in mapping.columns] == ["hubspot_owner_id", "dealstage"]
    product = parse_mapping(
        {
            "object_type": "products",
            "columns": {
                "USD": {"currency": "usd"},
                "EUR": {"property": "price", "currency": "EUR"},
            },
        }
    )
    assert [c.property for c in product.columns] == ["hs_price_usd", "hs_price_eur"]
    with pytest.raises(MappingError, match="a currency goes with a product price"):
        parse_mapping(
            {"object_type": "products", "columns": {"C": {"property": "tax", "currency": "EUR"}}}
        )


def test_init_proposes_the_number_format_it_sees_and_the_run_stores_plain_decimals(
    sandbox: Sandbox, tmp_path: Path, run_cli: Runner
) -> None:
    data = write_csv(
        tmp_path / "katalog.csv",
        [
            ["SKU", "Name", "Unit price"],
            ["0001", "Tasse", "1.299,00 €"],
            ["0002", "Teller", "12,5"],
        ],
        delimiter=";",
    )
    out = tmp_path / "m.yaml"
    made = run_cli("init", data, "--object", "products", "--out", out, "--base-url", sandbox.url)
    assert made.code == 0, made.err
    draft = out.read_text(encoding="utf-8")
    assert 'number: {decimal: ",", thousands: "."}' in draft, draft
    ran = run_cli("run", "-m", out, data, "--base-url", sandbox.url, "--out", tmp_path / "o.xlsx")
    assert ran.code == 0, ran.err
    stored = [r["properties"] for r in sandbox.records("products")]
    prices = {p["hs_sku"]: p["price"] for p in stored if p.get("hs_sku") in ("0001", "0002")}
    assert prices == {"0001": "1299", "0002": "12.5"}  # sent 1299.00: HubSpot holds a number


def test_an_excel_percent_cell_reads_as_excel_shows_it(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Marge", "Rabatt", "Plain"])
    ws.append(["0001", 0.15, 0.075, 0.15])
    ws["B2"].number_format = "0%"
    ws["C2"].number_format = "0.00%"
    wb.save(tmp_path / "p.xlsx")
    table = load_table(tmp_path / "p.xlsx")
    assert table.frame.loc[2].tolist() == ["0001", "15%", "7.5%", "0.15"]
    # On a percentage property 15% is 15, never 0.15 (a hundred times too small).
    mapping = parse_mapping({"object_type": "products", "columns": {"Marge": "margin_pct"}})
    spec = dataclasses.replace(mapping.columns[0], type=PropertyType.NUMBER,
                               display_hint="percentage")  # fmt: skip
    result = validate(table, dataclasses.replace(mapping, columns=(spec,)))
    assert sent(result, "margin_pct") == ["15"]


def test_a_values_file_saved_by_a_german_excel_is_read(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_bytes(
        "Wort;Wert;\r\nGröße M;medium;\r\nJa;true;\r\n".encode("utf-8-sig")
    )
    (tmp_path / "m.yaml").write_text(
        "object_type: products\ncolumns:\n  G: {property: size, values_file: w.csv}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(tmp_path / "m.yaml")
    nfd = "Gro\u0308\u00dfe m"  # typed in decomposed form, another case
    result = validate(load_table(write_csv(tmp_path / "in.csv", [["G"], [nfd], ["ja"]])), mapping)
    assert sent(result, "size") == ["medium", "true"]
    (tmp_path / "w.csv").write_bytes("Wort,Wert\nJa,sí\n".encode("cp1252"))
    with pytest.raises(MappingError, match="is not UTF-8 text; save it as CSV UTF-8"):
        load_mapping(tmp_path / "m.yaml")


def test_a_formatted_cell_below_a_blank_row_is_shown_in_its_own_row(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for row in (["SKU", "Name", "Marge"], [1, "a", 0.1], [None, None, None], [421, "b", 0.2],
                [5, "c", None]):  # fmt: skip
        ws.append(row)
    for r in range(2, 6):
        ws.cell(r, 1).number_format = "00000"
        ws.cell(r, 3).number_format = "0%"
    wb.save(tmp_path / "blank.xlsx")
    table = load_table(tmp_path / "blank.xlsx")
    assert table.frame["SKU"].tolist() == ["00001", "00421", "00005"]
    assert table.frame["Marge"].tolist() == ["10%", "20%", ""]
