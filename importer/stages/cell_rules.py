"""Validate stage, the rules: each mapped column's cells as Arrow text with the views the checks
share (`Cells`), the pandera checks a column's type asks for, each named by a `Problem`, and the
conversion of valid cells to the strings HubSpot expects."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc

from ..core.hubspot import EMAIL_PROPERTIES, MAX_TEXT_LENGTH, canonical_object_type, stored_number
from ..core.outcome import Problem
from ..core.text import TEXT, Distinct, arrow, flags, text_series, trimmed, whole
from ..mapping.model import (
    DEFAULT_DATE_FORMAT,
    FALSE_WORDS,
    TRUE_WORDS,
    AssociationSpec,
    ColumnSpec,
    NumberFormat,
    PropertyType,
)
from ..mapping.numbers import NUMBER_RE, read_number
from .cell_values import Words

__all__ = [
    "MULTI_SEPARATOR",
    "RECORD_ID_RE",
    "AssociationRules",
    "Cells",
    "ColumnRules",
    "stored_numbers",
]

RECORD_ID_RE = re.compile(r"[0-9]+")
MULTI_SEPARATOR = ";"  # HubSpot joins multi-select values with ";"
_TZ_SUFFIX = r"(?:[zZ]|[+-]\d{2}:?\d{2})$"
_PLAIN_NUMBER = re.compile(NUMBER_RE)
_STORED_NUMBER = r"^(?:0|-?[1-9][0-9]*(?:\.[0-9]*[1-9])?|-?0\.[0-9]*[1-9])$"
"""A number written as HubSpot stores it (`stored_number`): most cells already are."""


class Cells:
    """One column's cells with the derived views the checks and converters share.

    The cells are Arrow text: trimming, emptiness, lengths and the number pattern run in
    Arrow's kernels over the whole column; checks that need Python's own string semantics
    (case folding, option labels, dates) run once per distinct value (`Distinct`).
    """

    def __init__(self, raw: pd.Series) -> None:
        self.raw = raw
        self.index = raw.index

    @cached_property
    def text(self) -> pa.Array:
        """The cells, stripped of whitespace at either end."""
        return trimmed(arrow(self.raw))

    @cached_property
    def stripped(self) -> pd.Series:
        return text_series(self.text, self.index)

    @cached_property
    def filled_flags(self) -> np.ndarray:
        return flags(pc.not_equal(self.text, ""))

    @cached_property
    def filled(self) -> pd.Series:
        return self.mask(self.filled_flags)

    def mask(self, flags: np.ndarray) -> pd.Series:
        """One flag per cell as a boolean Series on the column's rows."""
        return pd.Series(flags, index=self.index, dtype=bool)

    def short_enough(self) -> pd.Series:
        # A value is never longer in characters than in bytes: most columns settle on that.
        if len(self.text) == 0 or pc.max(pc.binary_length(self.text)).as_py() <= MAX_TEXT_LENGTH:
            return pd.Series(True, index=self.index)
        return self.mask(flags(pc.less_equal(pc.utf8_length(self.text), MAX_TEXT_LENGTH)))

    def keys(self, fold_case: bool) -> pa.Array:
        """The cells as HubSpot compares text values: trimmed, in Unicode's composed form
        (NFC), lower-cased where it ignores case (emails)."""
        keys = pc.utf8_normalize(self.text, form="NFC")
        return pc.utf8_lower(keys) if fold_case else keys

    def unique(self, keys: pa.Array | pa.ChunkedArray) -> pd.Series:
        """Which cells hold a value no other cell holds, each cell compared by its key in
        `keys` (`ColumnRules.keys`); empty cells count as unique."""
        if len(pc.unique(keys)) - (not self.filled_flags.all()) == int(self.filled_flags.sum()):
            return pd.Series(True, index=self.index)  # no repeats: no need to find them
        return ~self.filled | ~text_series(keys, self.index).duplicated(keep=False)

    def numbers(self) -> pd.Series:
        return self.mask(flags(pc.match_substring_regex(self.text, f"^(?:{NUMBER_RE})$")))

    @cached_property
    def distinct(self) -> Distinct:
        return Distinct.of(self.text)

    def by_value(self, decide: Callable[[str], bool]) -> pd.Series:
        return self.mask(self.distinct.flags(decide))


class ColumnRules:
    """Checks and conversion for one mapped column."""

    def __init__(
        self,
        spec: ColumnSpec,
        cells: Cells,
        object_type: str,
        number: NumberFormat | None = None,
        *,
        excel: bool = False,
    ) -> None:
        self.spec = spec
        self.cells = cells
        """The cells as the sheet holds them."""
        self.fold_case = (canonical_object_type(object_type), spec.property) in EMAIL_PROPERTIES
        """HubSpot compares this property's values without regard to case (emails)."""
        self.words = (
            Words(spec.values, cells.distinct, multiple=spec.multiple) if spec.values else None
        )
        self.given = Cells(self.words.sent(cells.index)) if self.words else cells
        """The cells as the words they stand for (the cells themselves without `values`)."""
        self.number_given = (spec.number or number) is not None
        self.number = spec.number or number or NumberFormat()
        self.excel = excel
        """The sheet is a workbook: its number cells read with a dot, whatever `number:`."""
        self.percent = self.number.percent or (
            ("fraction" if spec.display_hint == "probability" else "whole")
            if spec.display_hint in ("percentage", "probability")
            else None
        )
        """How a percent sign is read (None: it is not a number here)."""

    def same(self, value: str) -> str:
        """A cell as HubSpot compares values of this property (`keys`), so `Anna@x.com`
        and `anna@x.com`, `Café` typed two ways, or `7` and `007` in a number column, are
        one key: not two records, nor one record written twice."""
        if self.spec.type is PropertyType.NUMBER:
            return self.number_key(value.strip())
        one = Cells(pd.Series([value], dtype=TEXT))
        return str(one.keys(self.fold_case)[0].as_py())

    @cached_property
    def keys(self) -> pa.Array | pa.ChunkedArray:
        """The cells as HubSpot compares this property's values: a number property's as the
        numbers they are (`number_key`), HubSpot storing a number, not the text sent; any
        other's as text (`Cells.keys`)."""
        if self.spec.type is not PropertyType.NUMBER:
            return self.cells.keys(self.fold_case)
        if self.formatted or self.words is not None:
            return self.cells.distinct.mapped(self.number_key)
        return stored_numbers(self.cells.text)

    def number_key(self, cell: str) -> str:
        """A trimmed cell of a number column as the number HubSpot stores for it
        (`stored_number`: `007`, `7.0` and `7` are all `7`); a cell that is no number of
        the column stays as it is (the number check reports it)."""
        if self.formatted:
            plain = self.number_of(cell)
        else:
            plain = self.words.word(cell) if self.words is not None else cell
        return stored_number(plain) if plain and _PLAIN_NUMBER.fullmatch(plain) else cell

    @cached_property
    def folded_options(self) -> dict[str, str]:
        """Case-folded option value or label -> the value HubSpot stores."""
        folded = {label.casefold(): value for label, value in self.spec.option_labels}
        folded.update({o.casefold(): o for o in self.spec.options})
        return folded

    @staticmethod
    def choices(value: str) -> list[str]:
        """A multi-select cell split into its folded choices."""
        return [p.strip() for p in value.casefold().split(MULTI_SEPARATOR) if p.strip()]

    @cached_property
    def duplicate_rows(self) -> dict[str, list[int]]:
        """Each repeated value (as `same` makes it) -> the sheet rows holding it (computed
        once per column)."""
        s = text_series(self.keys, self.cells.index)
        repeated = s[s.duplicated(keep=False) & self.cells.filled]
        return {
            str(v): [int(r) for r in rows] for v, rows in repeated.groupby(repeated).groups.items()
        }

    @cached_property
    def dates(self) -> pa.ChunkedArray:
        """Dates/datetimes as HubSpot writes them (null where not parseable), parsed once per
        distinct value; only for those types."""
        found = self.given.distinct
        unique = pd.Series(found.values, dtype=object)
        if self.spec.type is PropertyType.DATE:
            parsed = _parse_date(unique, self.spec.format)
            text = parsed.dt.strftime(DEFAULT_DATE_FORMAT)
        else:
            parsed = _parse_datetime(unique, self.spec.format, self.spec.timezone)
            text = parsed.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        ok = parsed.notna().tolist()
        written = {
            v: t if good else None
            for v, t, good in zip(found.values, text.tolist(), ok, strict=True)
        }
        return found.mapped(written.__getitem__)

    @property
    def formatted(self) -> bool:
        """Numbers are read the sheet's way (separators, currency, percent), not as plain
        decimals only."""
        return self.number_given or self.spec.currency is not None or bool(self.percent)

    @cached_property
    def numbers(self) -> pa.ChunkedArray:
        """Formatted numbers as HubSpot's plain decimals (null where not one); parsed once
        per distinct value. A word of a `values:` map gives its value as it is (a plain
        number, checked against the property)."""
        return self.cells.distinct.mapped(self.number_of)

    def number_of(self, cell: str) -> str | None:
        """One cell as HubSpot's plain decimal ("" for an empty or unknown word, reported
        on their own), None when it is not a number of this column."""
        if not cell:
            return ""
        if self.words is not None:
            word = self.words.word(cell)
            if word is None or self.words.knows(cell):
                return word or ""
        spec = self.spec
        plain = read_number(
            cell, self.number, currency=spec.currency, percent=self.percent, excel=self.excel
        )
        if plain is not None and spec.display_hint == "probability":
            return plain if 0 <= Decimal(plain) <= 1 else None  # a share: 20 is no probability
        return plain

    def checks(self, is_key: bool) -> list[pandera.Check]:
        c, g = self.cells, self.given
        checks: list[tuple[Problem, Callable[[pd.Series], pd.Series]]] = []
        if self.spec.required or is_key:
            checks.append((Problem.REQUIRED, lambda _: c.filled))
        if (words := self.words) is not None:
            known = c.by_value(lambda v: not words.unknown(v))
            checks.append((Problem.UNKNOWN_VALUE, lambda _: known))
        kind = self.spec.type
        if kind is PropertyType.NUMBER and self.formatted:
            checks.append((Problem.NOT_A_NUMBER, lambda _: c.mask(flags(self.numbers.is_valid()))))
        elif kind is PropertyType.NUMBER:
            checks.append((Problem.NOT_A_NUMBER, lambda _: ~g.filled | g.numbers()))
        elif kind is PropertyType.BOOL:
            yes_no = TRUE_WORDS | FALSE_WORDS
            checks.append(
                (
                    Problem.NOT_A_BOOL,
                    lambda _: ~g.filled | g.by_value(lambda v: v.lower() in yes_no),
                )
            )
        elif kind in (PropertyType.DATE, PropertyType.DATETIME):
            problem = Problem.NOT_A_DATE if kind is PropertyType.DATE else Problem.NOT_A_DATETIME
            checks.append((problem, lambda _: ~g.filled | g.mask(flags(self.dates.is_valid()))))
        elif kind is PropertyType.ENUMERATION and self.spec.multiple:
            opts = set(self.folded_options)
            checks.append(
                (
                    Problem.NOT_AN_OPTION,
                    lambda _: g.by_value(lambda v: all(p in opts for p in self.choices(v))),
                )
            )
        elif kind is PropertyType.ENUMERATION:
            opts = set(self.folded_options)
            checks.append(
                (
                    Problem.NOT_AN_OPTION,
                    lambda _: ~g.filled | g.by_value(lambda v: v.casefold() in opts),
                )
            )
        checks.append((Problem.TOO_LONG, lambda _: c.short_enough()))
        if is_key or self.spec.unique:
            checks.append(
                (
                    Problem.DUPLICATE_KEY if is_key else Problem.NOT_UNIQUE,
                    lambda _: c.unique(self.keys),
                )
            )
        return [pandera.Check(fn, name=problem.value) for problem, fn in checks]

    def convert(self, positions: np.ndarray | None) -> pa.Array:
        """The values at `positions` (all when None) as HubSpot strings ("" for an empty,
        unsent cell)."""

        def pick(values: pa.Array) -> pa.Array:
            return values if positions is None else values.take(positions)

        text = pick(self.given.text)
        kind = self.spec.type
        if kind is PropertyType.NUMBER and self.formatted:
            return pc.if_else(pc.not_equal(text, ""), pick(self.numbers).cast(text.type), "")
        if kind is PropertyType.NUMBER:
            # HubSpot wants plain decimals: no "+", no exponent. Most cells are already.
            odd = flags(
                pc.or_(
                    pc.or_(pc.match_substring(text, "e"), pc.match_substring(text, "E")),
                    pc.match_substring(text, "+"),
                )
            )
            if not odd.any():
                return text
            text = whole(text)
            return pc.replace_with_mask(
                text,
                pa.array(odd),
                pa.array(
                    [_plain_number(v) for v in pc.filter(text, pa.array(odd)).to_pylist()],
                    type=text.type,
                ),
            )
        if kind is PropertyType.BOOL:
            out = self.given.distinct.mapped(
                lambda v: "true" if v.lower() in TRUE_WORDS else "false", positions
            )
        elif kind in (PropertyType.DATE, PropertyType.DATETIME):
            out = pick(self.dates)
        elif kind is PropertyType.ENUMERATION and self.spec.multiple:
            opts = self.folded_options
            out = self.given.distinct.mapped(
                lambda v: MULTI_SEPARATOR.join(opts.get(p, p) for p in self.choices(v)), positions
            )
        elif kind is PropertyType.ENUMERATION:
            opts = self.folded_options
            out = self.given.distinct.mapped(lambda v: opts.get(v.casefold(), ""), positions)
        else:
            return text
        return pc.if_else(pc.not_equal(text, ""), out.cast(text.type), "")


def stored_numbers(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Plain numbers as HubSpot stores them (`stored_number`), any other text as it is:
    the cells already in that form are kept by Arrow's kernels, the others converted one by
    one (a column of ids has none)."""
    odd = flags(pc.invert(pc.match_substring_regex(values, _STORED_NUMBER)))
    if not odd.any():
        return values
    text = whole(values)
    mask = pa.array(odd)
    found = [_stored_number(v) for v in pc.filter(text, mask).to_pylist()]
    return pc.replace_with_mask(text, mask, pa.array(found, type=text.type))


def _stored_number(value: str) -> str:
    """A plain number as HubSpot stores it; anything else (an empty cell) as it is."""
    return stored_number(value) if _PLAIN_NUMBER.fullmatch(value) else value


def _plain_number(value: str) -> str:
    return format(Decimal(value), "f") if "e" in value or "E" in value else value.lstrip("+")


def _parse_date(s: pd.Series, fmt: str | None) -> pd.Series:
    iso = pd.to_datetime(s, format=DEFAULT_DATE_FORMAT, errors="coerce")
    if fmt is None or fmt == DEFAULT_DATE_FORMAT:
        return iso
    # Excel date cells arrive as ISO text whatever the column's written format.
    return pd.to_datetime(s, format=fmt, errors="coerce").fillna(iso)


def _parse_datetime(s: pd.Series, fmt: str | None, tz: str) -> pd.Series:
    aware = s.str.contains(_TZ_SUFFIX, regex=True)
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        result[aware] = pd.to_datetime(s[aware], format="ISO8601", errors="coerce", utc=True)
    naive_s = s[~aware]
    naive = pd.to_datetime(naive_s, format="ISO8601", errors="coerce")
    if fmt is not None:
        naive = pd.to_datetime(naive_s, format=fmt, errors="coerce").fillna(naive)
    localized = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    result[~aware] = localized
    return result


class AssociationRules:
    def __init__(self, spec: AssociationSpec, cells: Cells) -> None:
        self.spec = spec
        self.cells = cells

    def parts(self, value: str) -> list[str]:
        sep = self.spec.separator
        return [p.strip() for p in value.split(sep) if p.strip()] if value else []

    def checks(self) -> list[pandera.Check]:
        c = self.cells
        checks = []
        if self.spec.required:
            checks.append(
                pandera.Check(
                    lambda _: c.by_value(lambda v: bool(self.parts(v))),
                    name=Problem.REQUIRED.value,
                )
            )
        if self.spec.reference is None:  # keys (`by:`) are resolved to ids later
            checks.append(
                pandera.Check(
                    lambda _: (
                        ~c.filled
                        | c.by_value(lambda v: all(map(RECORD_ID_RE.fullmatch, self.parts(v))))
                    ),
                    name=Problem.NOT_A_RECORD_ID.value,
                )
            )
        return checks

    def convert(self, positions: np.ndarray | None) -> list[list[str]]:
        found = self.cells.distinct
        codes = found.codes if positions is None else found.codes.take(positions)
        targets = [list(dict.fromkeys(self.parts(v))) for v in found.values]
        # A list per row (the payload takes them as they are); rows with the same cell share
        # nothing, so a row's list can be changed without touching another's.
        return [list(targets[i]) for i in codes.to_numpy(zero_copy_only=False).tolist()]
