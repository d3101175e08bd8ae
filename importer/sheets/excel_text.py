"""Excel's cells as text, as Excel shows them by default: 12 not 12.0, dates as ISO,
TRUE/FALSE; a column of one kind of cell converted at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.text import flags


def _arrow_text(text: list[str] | pa.Array) -> pa.Array:
    """The text as an Arrow array of large strings."""
    return text if isinstance(text, pa.Array) else pa.array(text, type=pa.large_string())


def _column_text(cells: list[Any]) -> list[str] | pa.Array:
    """A column's cells as text. Columns of one kind of cell (text, numbers, dates) are
    converted by one C-level map; others cell by cell."""
    kinds = set(map(type, cells))
    if kinds <= {str}:
        return cells
    if kinds == {float}:
        return _floats_text(cells)
    if len(kinds) == 1:
        return list(map(_CELL_TEXT.get(kinds.pop(), _cell_text), cells))
    return [v if type(v) is str else _cell_text(v) for v in cells]


def _floats_text(cells: list[float]) -> pa.Array:
    """`_float_text` of a column of numbers, in C: whole numbers through int64, others by
    Arrow's shortest round-trip text, which is Python's repr but where either writes an
    exponent (those few go through `_float_text`)."""
    values = np.asarray(cells, dtype=np.float64)
    whole = (np.floor(values) == values) & (np.abs(values) < 1e16)
    text = pc.if_else(
        pa.array(whole),
        pc.cast(pa.array(np.where(whole, values, 0).astype(np.int64)), pa.large_string()),
        pc.cast(pa.array(values), pa.large_string()),
    )
    odd = np.flatnonzero(flags(pc.match_substring(text, "e")))
    if len(odd) == 0:
        return text
    fixed = text.to_pylist()
    for i in odd.tolist():
        fixed[i] = _float_text(cells[i])
    return pa.array(fixed, type=pa.large_string())


def _float_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _datetime_text(value: dt.datetime) -> str:
    if value.time() == dt.time(0, 0):
        return value.date().isoformat()
    return value.isoformat(sep=" ", timespec="seconds")


_CELL_TEXT: dict[type, Callable[[Any], str]] = {
    str: lambda v: v,
    float: _float_text,
    int: str,
    bool: lambda v: "TRUE" if v else "FALSE",
    dt.date: dt.date.isoformat,
    dt.datetime: _datetime_text,
    dt.time: dt.time.isoformat,
    dt.timedelta: str,
    type(None): lambda v: "",
}


def _cell_text(value: Any) -> str:
    """A cell as Excel shows it by default: 12 not 12.0, dates as ISO, TRUE/FALSE."""
    convert = _CELL_TEXT.get(type(value))
    return convert(value) if convert is not None else str(value)
