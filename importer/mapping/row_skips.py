"""`skip_rows_where:` read and checked: columns of the sheet and, for each, the values that
mark a row as no record of its own (WooCommerce's parent rows, `Type: variable`)."""

from __future__ import annotations

from typing import Any

from .model import fold
from .value_keys import Fail

__all__ = ["parse_skip_where"]

KEY = "skip_rows_where"
_QUOTE = "quote each value as the sheet writes it, e.g. [variable]"


def parse_skip_where(fail: Fail, raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`skip_rows_where: {Column: [value, ...]}` as (column, values) pairs; a single value
    may be given without a list."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        fail(KEY, "give columns and the values whose rows are skipped, e.g. {Type: [variable]}")
        return ()
    pairs: list[tuple[str, tuple[str, ...]]] = []
    for column, values in raw.items():
        name = str(column).strip()
        if isinstance(column, bool) or not name:
            why = "YAML reads this name as true or false" if name else "an empty column name"
            fail(f"{KEY}.{name}", f"{why}: quote the column's name as the sheet's header has it")
            continue
        words = _values(fail, f"{KEY}.{name}", name, values)
        if words:
            pairs.append((name, words))
    return tuple(pairs)


def _values(fail: Fail, path: str, column: str, raw: Any) -> tuple[str, ...]:
    """A column's values, trimmed, each once (compared without regard to case); () after
    saying what is wrong."""
    items = raw if isinstance(raw, list) else [raw]
    if raw is None or not items:
        fail(path, "give the values whose rows are skipped, e.g. [variable]")
        return ()
    words: dict[str, str] = {}
    for item in items:
        problem = _not_a_word(item, column)
        if problem:
            fail(path, problem)
            return ()
        text = str(item).strip()
        words.setdefault(fold(text), text)
    return tuple(words.values())


def _not_a_word(item: Any, column: str) -> str:
    """What is wrong with one value ("" when nothing): only text and whole numbers are read
    as the sheet writes them."""
    if item is None or (isinstance(item, str) and not item.strip()):
        return (
            f"an empty value: to skip the rows where {column} is empty, write "
            f"skip_rows_without: [{column}]"
        )
    if isinstance(item, bool):
        return f"YAML reads yes, no, true, false, on and off as true or false: {_QUOTE}"
    if isinstance(item, dict | list):
        return f"{item!r} is a list or a mapping: give single values, e.g. [variable]"
    if not isinstance(item, str | int):
        return f"YAML reads {item} as a number or a date, not as it is written: {_QUOTE}"
    return ""
