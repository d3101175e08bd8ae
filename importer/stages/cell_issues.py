"""Validate stage, in words: each refused cell as an issue saying what it holds, what is wrong
and how to fix it; and the cells refused before any check (extra cells, Excel errors)."""

from __future__ import annotations

import dataclasses
import difflib
import re

import pandas as pd

from ..core.hubspot import MAX_TEXT_LENGTH
from ..core.outcome import Problem, RowIssue
from ..mapping.model import DEFAULT_DATE_FORMAT, Mapping
from ..mapping.numbers import formatted_number_hint
from ..sheets.load import NO_SAVED_VALUE, Table
from .cell_rules import MULTI_SEPARATOR, RECORD_ID_RE, ColumnRules
from .cell_values import unknown_word

__all__ = [
    "EXTRA_COLUMN",
    "extra_cell_issues",
    "issues_from_failures",
    "merged_hint",
    "unreadable_issues",
]


def issues_from_failures(
    failures: pd.DataFrame,
    table: Table,
    mapping: Mapping,
    column_rules: dict[str, ColumnRules],
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


EXTRA_COLUMN = "beyond the header"


def extra_cell_issues(table: Table) -> list[RowIssue]:
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


def merged_hint(issue: RowIssue, table: Table) -> RowIssue:
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


def unreadable_issues(table: Table, mapped: set[str]) -> list[RowIssue]:
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
        return 'use a dot as decimal separator, or say number: {decimal: ","} in the mapping'
    if m := re.fullmatch(r"[+-]?\d{1,3}([ .'\u00a0]\d{3})+,\d+", v):
        sep = " " if m[1][0] == "\u00a0" else m[1][0]
        return (
            "remove the thousands separators and use a dot as decimal separator, or say "
            f'number: {{decimal: ",", thousands: "{sep}"}} in the mapping'
        )
    if m := re.fullmatch(r"[+-]?\d{1,3}([ ,.'\u00a0]\d{3})+(\.\d+)?", v):
        sep = " " if m[1][0] == "\u00a0" else m[1][0]
        return f'remove the thousands separators, or say number: {{thousands: "{sep}"}}'
    if re.search(r"[€$£¥%]|[A-Za-z]{3}", v):
        return (
            "remove the currency symbol, unit or percent sign; write the bare number (a "
            "mapping with number: or currency: reads symbols and percents)"
        )
    return "write a number such as 12 or 12.50"


def _explain(
    problem: Problem,
    value: str,
    column: str,
    table: Table,
    mapping: Mapping,
    rules: ColumnRules | None,
) -> tuple[str, str]:
    shown = f'"{value.strip()}"' if len(value) <= 60 else f'"{value.strip()[:57]}..."'
    spec = rules.spec if rules is not None else None
    if problem is Problem.REQUIRED:
        return "the cell is empty but the mapping requires a value", "fill it in"
    if problem is Problem.NOT_A_NUMBER and rules is not None and rules.formatted:
        hint = formatted_number_hint(value, rules.number, rules.spec.currency, rules.percent)
        return f"{shown} is not a number", hint
    if problem is Problem.NOT_A_NUMBER:
        return f"{shown} is not a number", _number_hint(value)
    if problem is Problem.UNKNOWN_VALUE:
        assert rules is not None
        assert rules.words is not None
        return unknown_word(value, shown, rules.words)
    if problem is Problem.NOT_A_BOOL:
        return f"{shown} is not a yes/no value", "write true or false (yes/no and 1/0 work too)"
    if problem is Problem.NOT_A_DATE:
        fmt = spec.format if spec and spec.format else DEFAULT_DATE_FORMAT
        example = pd.Timestamp("2026-11-23").strftime(fmt)
        return f"{shown} is not a date", f"write it as {example} (format {fmt}) or use a date cell"
    if problem is Problem.NOT_A_DATETIME:
        return f"{shown} is not a date and time", "write it as ISO 8601, e.g. 2026-11-23 14:30"
    if problem is Problem.NOT_AN_OPTION:
        return _not_an_option(value, shown, rules)
    if problem is Problem.TOO_LONG:
        return (
            f"the text is {len(value.strip()):,} characters long",
            f"HubSpot takes at most {MAX_TEXT_LENGTH:,}; shorten it",
        )
    if problem in (Problem.DUPLICATE_KEY, Problem.NOT_UNIQUE):
        assert rules is not None
        return _duplicate(problem, value, shown, rules)
    assoc = next(a for a in mapping.associations if a.column == column)
    parts = [p.strip() for p in value.split(assoc.separator) if p.strip()]
    not_ids = [p for p in parts if not RECORD_ID_RE.fullmatch(p)]
    listed = ", ".join(f'"{b}"' for b in not_ids)
    return (
        f"{listed} {'is not a record id' if len(not_ids) == 1 else 'are not record ids'}",
        f'give HubSpot record ids (numbers such as 12345), separated by "{assoc.separator}"',
    )


def _not_an_option(value: str, shown: str, rules: ColumnRules | None) -> tuple[str, str]:
    """A value that is none of the property's options (or labels): every option, nearest
    first; for a multiple-choice cell, the parts that are not options."""
    spec = rules.spec if rules is not None else None
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


def _duplicate(problem: Problem, value: str, shown: str, rules: ColumnRules) -> tuple[str, str]:
    """A key (or a value HubSpot requires unique) that more than one row holds."""
    rows = ", ".join(str(r) for r in rules.duplicate_rows[rules.same(value.strip())])
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
