"""Validate stage: a pandera schema built from the mapping checks every cell; bad ones are issues.

Each rule is a vectorised pandera check named by a `Problem`, so failures are collected lazily
(every bad cell of every row, not just the first) and callers never parse message text. Valid
rows are then converted to the strings HubSpot expects.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from ..core.hubspot import MAX_TEXT_LENGTH
from ..core.outcome import Problem, RowIssue
from ..core.text import Distinct, arrow, flags, text_series, trimmed, whole
from ..mapping.model import DEFAULT_DATE_FORMAT, AssociationSpec, ColumnSpec, Mapping, PropertyType
from ..sheets.load import NO_SAVED_VALUE, Table

__all__ = ["Validated", "validate"]

NUMBER_RE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
"""What a number cell may hold (ASCII digits only: HubSpot refuses others)."""
RECORD_ID_RE = re.compile(r"[0-9]+")
MULTI_SEPARATOR = ";"  # HubSpot joins multi-select values with ";"
TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
_TZ_SUFFIX = r"(?:[zZ]|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True, kw_only=True)
class Validated:
    """Valid rows converted for HubSpot, and the issues of the invalid ones."""

    values: pd.DataFrame
    """Valid rows only (index = sheet row), one column per property; "" means not set."""
    associations: dict[str, list[list[str]]]
    """Association column -> target ids per valid row, aligned with `values`."""
    issues: tuple[RowIssue, ...]
    invalid_rows: frozenset[int]
    notes: dict[int, str] = field(default_factory=dict)
    """Sheet row -> what the workbook says of it beside its status (references left out)."""


class _Cells:
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

    def unique(self) -> pd.Series:
        """Which cells hold a value no other cell holds (empty cells count as unique)."""
        values = self.text.to_pylist()
        if len(set(values) - {""}) == int(self.filled_flags.sum()):
            return pd.Series(True, index=self.index)  # no repeats: no need to find them
        return ~self.filled | ~self.stripped.duplicated(keep=False)

    def numbers(self) -> pd.Series:
        return self.mask(flags(pc.match_substring_regex(self.text, f"^(?:{NUMBER_RE})$")))

    @cached_property
    def distinct(self) -> Distinct:
        return Distinct.of(self.text)

    def by_value(self, decide: Callable[[str], bool]) -> pd.Series:
        return self.mask(self.distinct.flags(decide))


class _ColumnRules:
    """Checks and conversion for one mapped column."""

    def __init__(self, spec: ColumnSpec, cells: _Cells) -> None:
        self.spec = spec
        self.cells = cells

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
        """Each repeated value -> the sheet rows holding it (computed once per column)."""
        s = self.cells.stripped
        repeated = s[s.duplicated(keep=False) & self.cells.filled]
        return {
            str(v): [int(r) for r in rows] for v, rows in repeated.groupby(repeated).groups.items()
        }

    @cached_property
    def dates(self) -> pa.ChunkedArray:
        """Dates/datetimes as HubSpot writes them (null where not parseable), parsed once per
        distinct value; only for those types."""
        found = self.cells.distinct
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

    def checks(self, is_key: bool) -> list[pandera.Check]:
        c = self.cells
        checks: list[tuple[Problem, Callable[[pd.Series], pd.Series]]] = []
        if self.spec.required or is_key:
            checks.append((Problem.REQUIRED, lambda _: c.filled))
        kind = self.spec.type
        if kind is PropertyType.NUMBER:
            checks.append((Problem.NOT_A_NUMBER, lambda _: ~c.filled | c.numbers()))
        elif kind is PropertyType.BOOL:
            words = TRUE_WORDS | FALSE_WORDS
            checks.append(
                (Problem.NOT_A_BOOL, lambda _: ~c.filled | c.by_value(lambda v: v.lower() in words))
            )
        elif kind in (PropertyType.DATE, PropertyType.DATETIME):
            problem = Problem.NOT_A_DATE if kind is PropertyType.DATE else Problem.NOT_A_DATETIME
            checks.append((problem, lambda _: ~c.filled | c.mask(flags(self.dates.is_valid()))))
        elif kind is PropertyType.ENUMERATION and self.spec.multiple:
            opts = set(self.folded_options)
            checks.append(
                (
                    Problem.NOT_AN_OPTION,
                    lambda _: c.by_value(lambda v: all(p in opts for p in self.choices(v))),
                )
            )
        elif kind is PropertyType.ENUMERATION:
            opts = set(self.folded_options)
            checks.append(
                (
                    Problem.NOT_AN_OPTION,
                    lambda _: ~c.filled | c.by_value(lambda v: v.casefold() in opts),
                )
            )
        checks.append((Problem.TOO_LONG, lambda _: c.short_enough()))
        if is_key or self.spec.unique:
            checks.append(
                (
                    Problem.DUPLICATE_KEY if is_key else Problem.NOT_UNIQUE,
                    lambda _: c.unique(),
                )
            )
        return [pandera.Check(fn, name=problem.value) for problem, fn in checks]

    def convert(self, positions: np.ndarray | None) -> pa.Array:
        """The values at `positions` (all when None) as HubSpot strings ("" for an empty,
        unsent cell)."""

        def pick(values: pa.Array) -> pa.Array:
            return values if positions is None else values.take(positions)

        text = pick(self.cells.text)
        kind = self.spec.type
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
            out = self.cells.distinct.mapped(
                lambda v: "true" if v.lower() in TRUE_WORDS else "false", positions
            )
        elif kind in (PropertyType.DATE, PropertyType.DATETIME):
            out = pick(self.dates)
        elif kind is PropertyType.ENUMERATION and self.spec.multiple:
            opts = self.folded_options
            out = self.cells.distinct.mapped(
                lambda v: MULTI_SEPARATOR.join(opts.get(p, p) for p in self.choices(v)), positions
            )
        elif kind is PropertyType.ENUMERATION:
            opts = self.folded_options
            out = self.cells.distinct.mapped(lambda v: opts.get(v.casefold(), ""), positions)
        else:
            return text
        return pc.if_else(pc.not_equal(text, ""), out.cast(text.type), "")


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


class _AssociationRules:
    def __init__(self, spec: AssociationSpec, cells: _Cells) -> None:
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


def validate(table: Table, mapping: Mapping) -> Validated:
    """Check every mapped cell; return the valid rows converted and an issue per bad cell."""
    frame = table.frame
    column_rules = {
        spec.column: _ColumnRules(spec, _Cells(frame[spec.column])) for spec in mapping.columns
    }
    assoc_rules = {
        spec.column: _AssociationRules(spec, _Cells(frame[spec.column]))
        for spec in mapping.associations
    }
    schema_columns = {
        name: pandera.Column(None, checks=rules.checks(name == mapping.key), nullable=True)
        for name, rules in column_rules.items()
    }
    for name, arules in assoc_rules.items():
        schema_columns[name] = pandera.Column(None, checks=arules.checks(), nullable=True)
    schema = pandera.DataFrameSchema(schema_columns, name=f"mapping {mapping.source}")

    issues: list[RowIssue] = []
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        issues = _issues_from_failures(exc.failure_cases, table, mapping, column_rules)
    if table.extra_cells or table.unreadable:
        issues += _extra_cell_issues(table)
        issues += _unreadable_issues(table, set(mapping.source_columns))
        # A cell that holds an error is not empty: say what it holds, once.
        issues = [
            i
            for i in issues
            if not (i.problem is Problem.REQUIRED and (i.row, i.column) in table.unreadable)
        ]
        order = {c: j for j, c in enumerate(table.columns)}
        issues.sort(key=lambda i: (i.row, order.get(i.column, len(order))))
    if table.merged:
        issues = [_merged_hint(i, table) for i in issues]
    invalid_rows = frozenset(i.row for i in issues)
    valid = ~frame.index.isin(list(invalid_rows))
    positions = None if valid.all() else np.flatnonzero(valid)
    valid_index = frame.index if positions is None else frame.index[positions]
    values = pd.DataFrame(
        {
            rules.spec.property: text_series(rules.convert(positions), valid_index)
            for rules in column_rules.values()
        },
        index=valid_index,
    )
    associations = {name: arules.convert(positions) for name, arules in assoc_rules.items()}
    return Validated(
        values=values,
        associations=associations,
        issues=tuple(issues),
        invalid_rows=invalid_rows,
    )


def _issues_from_failures(
    failures: pd.DataFrame,
    table: Table,
    mapping: Mapping,
    column_rules: dict[str, _ColumnRules],
) -> list[RowIssue]:
    issues = []
    known = {p.value for p in Problem}
    for check, column, index in failures[["check", "column", "index"]].itertuples(
        index=False, name=None
    ):
        if check not in known or pd.isna(index):
            # A failure that is not one of our checks is a bug here, not bad input.
            raise RuntimeError(f"unexpected schema failure: {check} in {column} at {index}")
        row = int(index)
        column = str(column)
        value = str(table.frame.at[row, column])
        problem = Problem(check)
        message, hint = _explain(problem, value, column, table, mapping, column_rules.get(column))
        issues.append(RowIssue.at(table, row, column, value, problem, message, hint))
    issues.sort(key=lambda i: (i.row, table.columns.index(i.column)))
    return issues


EXTRA_COLUMN = "(beyond the header)"


def _extra_cell_issues(table: Table) -> list[RowIssue]:
    """A row with more cells than the header: its cells may have shifted (an unquoted
    `Smith, John`), so none of it is sent."""
    issues = []
    for row, cells in table.extra_cells.items():
        named = ", ".join(f"{ref} {value!r}" for ref, value in cells)
        first = cells[0][0]
        issues.append(
            RowIssue(
                row=row,
                column=EXTRA_COLUMN,
                cell=f"{table.sheet}!{first}" if table.sheet else first,
                value=" | ".join(value for _, value in cells),
                problem=Problem.EXTRA_CELLS,
                message=f"the row has more cells than the header ({named}), so its values may "
                "have shifted",
                hint='quote a value that holds the delimiter ("Smith, John"), or remove '
                "the extra cells; the row is not sent",
            )
        )
    return issues


def _merged_hint(issue: RowIssue, table: Table) -> RowIssue:
    """An empty cell that is part of merged cells: Excel keeps their value in the top-left
    cell only, so say so instead of "fill it in"."""
    span = table.merged.get((issue.row, issue.column))
    if span is None or issue.problem is not Problem.REQUIRED:
        return issue
    return dataclasses.replace(
        issue,
        message=f"the cell is part of the merged cells {span}, whose value Excel keeps in "
        f"{span.split(':')[0]} only",
        hint="unmerge the cells and fill each one, then save",
    )


def _unreadable_issues(table: Table, mapped: set[str]) -> list[RowIssue]:
    """Mapped cells that read as empty but hold an Excel error, or a formula whose value was
    never saved: sending the row without them would write what the sheet does not hold."""
    issues = []
    for (row, column), what in table.unreadable.items():
        if column not in mapped:
            continue
        if what == NO_SAVED_VALUE:
            problem, message = Problem.NO_SAVED_VALUE, f"the cell holds {NO_SAVED_VALUE}"
            hint = (
                "open the file in Excel and save it, so the formulas' values are stored (it "
                "was written by a program that does not compute them)"
            )
        else:
            problem, message = Problem.EXCEL_ERROR, f"the cell holds the Excel error {what}"
            hint = "correct the formula (or what it refers to) in Excel, save, and run again"
        issues.append(RowIssue.at(table, row, column, what, problem, message, hint))
    return issues


def _number_hint(value: str) -> str:
    v = value.strip()
    if re.fullmatch(r"[+-]?\d+,\d+", v):
        return "use a dot as decimal separator"
    if re.fullmatch(r"[+-]?\d{1,3}([ .'\u00a0]\d{3})+,\d+", v):
        return "remove the thousands separators and use a dot as decimal separator"
    if re.fullmatch(r"[+-]?\d{1,3}([ ,.'\u00a0]\d{3})+(\.\d+)?", v):
        return "remove the thousands separators"
    if re.search(r"[€$£¥%]|[A-Za-z]{3}", v):
        return "remove the currency symbol, unit or percent sign; write the bare number"
    return "write a number such as 12 or 12.50"


def _explain(
    problem: Problem,
    value: str,
    column: str,
    table: Table,
    mapping: Mapping,
    rules: _ColumnRules | None,
) -> tuple[str, str]:
    shown = f'"{value.strip()}"' if len(value) <= 60 else f'"{value.strip()[:57]}..."'
    spec = rules.spec if rules is not None else None
    if problem is Problem.REQUIRED:
        return "the cell is empty but the mapping requires a value", "fill it in"
    if problem is Problem.NOT_A_NUMBER:
        return f"{shown} is not a number", _number_hint(value)
    if problem is Problem.NOT_A_BOOL:
        return f"{shown} is not a yes/no value", "write true or false (yes/no and 1/0 work too)"
    if problem is Problem.NOT_A_DATE:
        fmt = spec.format if spec and spec.format else DEFAULT_DATE_FORMAT
        example = pd.Timestamp("2026-11-23").strftime(fmt)
        return f"{shown} is not a date", f"write it as {example} (format {fmt}) or use a date cell"
    if problem is Problem.NOT_A_DATETIME:
        return f"{shown} is not a date and time", "write it as ISO 8601, e.g. 2026-11-23 14:30"
    if problem is Problem.NOT_AN_OPTION:
        options = list(spec.options) if spec else []
        labels = dict((v, lab) for lab, v in spec.option_labels) if spec else {}
        bad = value.strip()
        if spec is not None and spec.multiple:
            allowed = {o.casefold() for o in options} | {lab.casefold() for lab in labels.values()}
            wrong = [
                p.strip()
                for p in bad.split(MULTI_SEPARATOR)
                if p.strip() and p.strip().casefold() not in allowed
            ]
            bad = wrong[0] if wrong else bad
            shown = ", ".join(f'"{w}"' for w in wrong) or shown
        close = difflib.get_close_matches(bad, options, n=len(options), cutoff=0.0)
        listed = ", ".join(f"{o} ({labels[o]})" if labels.get(o, o) != o else o for o in close)
        several = f'; separate several with "{MULTI_SEPARATOR}"' if spec and spec.multiple else ""
        return f"{shown} is not an allowed value", f"use one of: {listed}{several}"
    if problem is Problem.TOO_LONG:
        return (
            f"the text is {len(value.strip()):,} characters long",
            f"HubSpot takes at most {MAX_TEXT_LENGTH:,}; shorten it",
        )
    if problem in (Problem.DUPLICATE_KEY, Problem.NOT_UNIQUE):
        assert rules is not None
        rows = ", ".join(str(r) for r in rules.duplicate_rows[value.strip()])
        if problem is Problem.NOT_UNIQUE:
            return (
                f"{shown} appears in more than one row (rows {rows}), but HubSpot requires "
                f"{rules.spec.property} to be unique",
                "give each row its own value, or remove the duplicate rows",
            )
        return (
            f"key {shown} appears in more than one row (rows {rows})",
            "make each key unique, or remove the duplicate rows",
        )
    assoc = next(a for a in mapping.associations if a.column == column)
    parts = [p.strip() for p in value.split(assoc.separator) if p.strip()]
    not_ids = [p for p in parts if not RECORD_ID_RE.fullmatch(p)]
    listed = ", ".join(f'"{b}"' for b in not_ids)
    return (
        f"{listed} {'is not a record id' if len(not_ids) == 1 else 'are not record ids'}",
        f'give HubSpot record ids (numbers such as 12345), separated by "{assoc.separator}"',
    )
