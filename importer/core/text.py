"""Text columns as Arrow arrays: the frames hold every cell as Arrow-backed text, so a check
or a conversion runs over a column in Arrow's C++ kernels, or once per distinct value where
Python's own string semantics must decide, instead of once per cell in Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "TEXT",
    "Distinct",
    "arrow",
    "blank",
    "flags",
    "text_series",
    "trimmed",
    "use_system_allocator",
    "whole",
]

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
"""The dtype of every cell the loader reads: Arrow strings ("" for an empty cell)."""


def use_system_allocator() -> None:
    """Have Arrow allocate with the C library's malloc rather than its bundled mimalloc, which
    hands memory back to the system eagerly: every column-sized result then pays for fresh
    pages, and the checks of a million-row sheet take twice as long (2.4 s against 1.2 s
    measured here). The CLI calls this; a program importing the library keeps its choice."""
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


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


def flags(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean column as a numpy one."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def blank(values: pa.Array) -> np.ndarray:
    """Which cells are empty or whitespace only."""
    return flags(pc.equal(trimmed(values), ""))


@dataclass(frozen=True, slots=True)
class Distinct:
    """A column's distinct values and, per cell, the index of its value: how a column of a
    few distinct values (types, brands, yes/no, dates) is checked and converted with Python's
    own string semantics at the cost of a handful of calls."""

    values: list[str]
    codes: pa.ChunkedArray

    @classmethod
    def of(cls, column: pa.Array | pa.ChunkedArray) -> Distinct:
        chunked = pa.chunked_array([column]) if isinstance(column, pa.Array) else column
        encoded = pc.dictionary_encode(chunked)
        if encoded.num_chunks == 0:
            return cls([], pa.chunked_array([], type=pa.int32()))
        encoded = encoded.unify_dictionaries()  # one dictionary for all the column's chunks
        codes = pa.chunked_array([c.indices for c in encoded.chunks], type=encoded.type.index_type)
        return cls(encoded.chunk(0).dictionary.to_pylist(), codes)

    def flags(self, decide: Callable[[str], bool]) -> np.ndarray:
        """`decide` asked once per distinct value, its answers spread over the cells."""
        answers = np.fromiter(map(decide, self.values), dtype=bool, count=len(self.values))
        flags: np.ndarray = answers[self.codes.to_numpy()]
        return flags

    def mapped(
        self, convert: Callable[[str], str | None], positions: np.ndarray | None = None
    ) -> pa.ChunkedArray:
        """`convert` applied once per distinct value, the results spread over the cells (those
        at `positions` only, when given). A None result is a null cell."""
        codes = self.codes if positions is None else self.codes.take(positions)
        converted = pa.array(list(map(convert, self.values)), type=pa.large_string())
        return converted.take(codes)
