"""Text columns as Arrow arrays: the frames hold every cell as Arrow-backed text, so a check
or a conversion runs over a column in Arrow's C++ kernels, or once per distinct value where
Python's own string semantics must decide, instead of once per cell in Python."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "TEXT",
    "arrow",
    "blank",
    "distinct",
    "flags_per_value",
    "map_per_value",
    "text_series",
    "trimmed",
    "whole",
]

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
"""The dtype of every cell the loader reads: Arrow strings ("" for an empty cell)."""


def arrow(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A column's cells as Arrow strings, as they are held (without copying the loader's
    columns, which come in chunks)."""
    if isinstance(values, pd.Series):
        data = values.array
        if isinstance(data, pd.arrays.ArrowStringArray):
            values = data.__arrow_array__()
        else:
            values = pa.array(values.to_numpy(dtype=object), type=pa.large_string())
    return values


def whole(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array for a column held in chunks (a copy), for the kernels that need one."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def text_series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """An Arrow string array as a text column of the frames, on `index`."""
    series: pd.Series = values.to_pandas()
    series.index = index
    return series.astype(TEXT)


def trimmed(values: pa.Array) -> pa.Array:
    """Each cell without whitespace at either end, as Python's `str.strip` removes it."""
    return pc.utf8_trim_whitespace(values)


def blank(values: pa.Array) -> np.ndarray:
    """Which cells are empty or whitespace only."""
    return np.asarray(pc.equal(trimmed(values), "").to_numpy(zero_copy_only=False), dtype=bool)


def distinct(values: pa.Array | pa.ChunkedArray) -> tuple[list[str], pa.ChunkedArray]:
    """The distinct values (as Python strings) and, per cell, the index of its value."""
    encoded = pc.dictionary_encode(
        pa.chunked_array([values]) if isinstance(values, pa.Array) else values
    )
    if encoded.num_chunks == 0:
        return [], pa.chunked_array([], type=pa.int32())
    encoded = encoded.unify_dictionaries()  # one dictionary for all the column's chunks
    codes = pa.chunked_array([c.indices for c in encoded.chunks], type=encoded.type.index_type)
    return encoded.chunk(0).dictionary.to_pylist(), codes


def flags_per_value(values: pa.Array, decide: Callable[[str], bool]) -> np.ndarray:
    """`decide` asked once per distinct value, its answers spread back over the cells: how a
    column of a few distinct values (types, brands, yes/no, dates) is checked with Python's
    own string semantics at the cost of a handful of calls."""
    found, codes = distinct(values)
    answers = np.fromiter(map(decide, found), dtype=bool, count=len(found))
    flags: np.ndarray = answers[codes.to_numpy(zero_copy_only=False)]
    return flags


def map_per_value(values: pa.Array, convert: Callable[[str], str]) -> pa.Array:
    """`convert` applied once per distinct value, the results spread back over the cells."""
    found, codes = distinct(values)
    return pa.array(list(map(convert, found)), type=pa.large_string()).take(codes)
