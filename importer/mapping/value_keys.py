"""The mapping keys that say how a sheet writes its values: `number:`, `currency:`,
`values:` / `values_file:`, `pipeline:` and `write:`, each read and checked here."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.hubspot import OWNER_PROPERTY, pipeline_properties
from .model import NumberFormat, PropertyType, ValueMap, fold

__all__ = [
    "THOUSANDS_SEPARATORS",
    "default_property",
    "parse_currency",
    "parse_number_format",
    "parse_values",
]

Fail = Callable[[str, str], None]
"""Records a problem: (where in the mapping, what is wrong)."""

THOUSANDS_SEPARATORS = (".", ",", " ", "'", "")
_NUMBER_KEYS = ("decimal", "thousands", "percent")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_VALUES_FILE_MAX_BYTES = 5_000_000


def parse_number_format(fail: Fail, path: str, raw: Any) -> NumberFormat | None:
    """`number: {decimal: ",", thousands: "."}` (and `percent: whole|fraction`)."""
    if not isinstance(raw, dict):
        fail(path, 'give {decimal: ",", thousands: "."} (the separators the sheet uses)')
        return None
    unknown = [str(k) for k in raw if k not in _NUMBER_KEYS]
    if unknown:
        fail(path, f"unknown key {unknown[0]!r} (allowed: {', '.join(_NUMBER_KEYS)})")
        return None
    decimal = raw.get("decimal", ".")
    thousands = raw.get("thousands", "")
    thousands = "" if thousands is None else thousands
    percent = raw.get("percent")
    ok = True
    if decimal not in (".", ","):
        fail(f"{path}.decimal", f'{decimal!r} cannot be a decimal separator; use "." or ","')
        ok = False
    if thousands not in THOUSANDS_SEPARATORS:
        shown = ", ".join(repr(t) for t in THOUSANDS_SEPARATORS)
        fail(
            f"{path}.thousands", f"{thousands!r} is not a thousands separator (use one of {shown})"
        )
        ok = False
    elif ok and thousands == decimal:
        fail(path, f"the decimal and thousands separators are both {decimal!r}")
        ok = False
    if percent is not None and percent not in ("whole", "fraction"):
        fail(f"{path}.percent", f"{percent!r}: use whole (15 % -> 15) or fraction (-> 0.15)")
        ok = False
    return NumberFormat(decimal=decimal, thousands=thousands, percent=percent) if ok else None


def parse_currency(fail: Fail, path: str, raw: Any) -> str | None:
    """`currency: EUR`: a three-letter ISO 4217 code, upper-cased."""
    if not isinstance(raw, str) or not _CURRENCY_RE.fullmatch(raw.strip()):
        fail(path, f"{raw!r} is not a currency code; give its three letters, such as EUR or USD")
        return None
    return raw.strip().upper()


def parse_values(
    fail: Fail, path: str, values: Any, values_file: Any, base: Path | None
) -> ValueMap | None:
    """`values: {word: value}` or `values_file: words.csv` (a two-column CSV with a header
    row, relative to the mapping file): the sheet's words for the property's values."""
    if values is not None and values_file is not None:
        fail(path, "give values or values_file, not both")
        return None
    if values is not None:
        return _inline_values(fail, f"{path}.values", values)
    if values_file is not None:
        return _file_values(fail, f"{path}.values_file", values_file, base)
    return None


def _inline_values(fail: Fail, path: str, raw: Any) -> ValueMap | None:
    if not isinstance(raw, dict) or not raw:
        fail(path, 'give the sheet\'s words and what each means, e.g. {"Ja": true, "Nein": false}')
        return None
    words: list[tuple[str, str]] = []
    for word, value in raw.items():
        if not isinstance(word, str):
            # YAML 1.1 reads an unquoted yes/no/on/off/null as a boolean or null, and 010 as
            # the number 8: the sheet's word is lost.
            fail(path, f"a word read by YAML as {word!r}: quote the sheet's words, e.g. "
                 '"Yes" or "010"')  # fmt: skip
            return None
        if value is None or isinstance(value, dict | list):
            fail(f"{path}.{word}", "give one value (quote it to keep leading zeros)")
            return None
        words.append((word, _text(value)))
    checked = _checked(fail, path, words, "values")
    booleans = tuple(str(w) for w, v in raw.items() if isinstance(v, bool))
    return None if checked is None else replace(checked, from_booleans=booleans)


def _file_values(fail: Fail, path: str, raw: Any, base: Path | None) -> ValueMap | None:
    if not isinstance(raw, str) or not raw.strip():
        fail(path, "give the path of a two-column CSV (the sheet's word, the value sent)")
        return None
    file = Path(raw.strip()).expanduser()
    if not file.is_absolute() and base is not None:
        file = base / file
    try:
        if file.stat().st_size > _VALUES_FILE_MAX_BYTES:
            fail(path, f"{file} is larger than 5 MB; a table of words is never that large")
            return None
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(path, f"{file} does not exist (a relative path is read from the mapping's folder)")
        return None
    except UnicodeDecodeError:
        fail(path, f"{file} is not UTF-8 text; save it as CSV UTF-8")
        return None
    except OSError as exc:
        fail(path, f"{file} cannot be read: {exc.strerror or exc}")
        return None
    lines = io.StringIO(text, newline="")
    delimiter = max(";,\t", key=lambda d: text.split("\n", 1)[0].count(d))  # the header's
    rows = [
        [c.strip() for c in r]
        for r in csv.reader(lines, delimiter=delimiter)
        if any(c.strip() for c in r)
    ]
    words = []
    for number, row in enumerate(rows[1:], start=2):  # the first row names the columns
        while len(row) > 2 and not row[-1]:
            row.pop()  # a trailing delimiter: an empty column
        if len(row) != 2:
            fail(path, f"{file} line {number} has {len(row)} cells; give a word and a value")
            return None
        words.append((row[0], row[1]))
    if not words:
        fail(path, f"{file} lists no words (the first row is its header)")
        return None
    return _checked(fail, path, words, f"values_file {file.name}")


def _checked(fail: Fail, path: str, words: list[tuple[str, str]], source: str) -> ValueMap | None:
    """The words as a ValueMap, unless two of them are one word as cells are compared."""
    seen: dict[str, str] = {}
    for word, value in words:
        folded = fold(word)
        if not folded:
            fail(path, "an empty word: an empty cell is never sent, so it needs no value")
            return None
        if folded in seen and seen[folded] != value:
            fail(path, f"{word!r} is listed twice with different values (case is ignored)")
            return None
        seen[folded] = value
    return ValueMap(words=tuple(words), source=source)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default_property(
    object_type: str, kind: PropertyType, currency: str | None, pipeline: str | None
) -> str | None:
    """The property a column writes when the mapping names none but its keys imply one."""
    if kind is PropertyType.OWNER:
        return OWNER_PROPERTY
    if currency is not None:
        return f"hs_price_{currency.lower()}"
    if pipeline is not None:
        return pipeline_properties(object_type)[1]
    return None
