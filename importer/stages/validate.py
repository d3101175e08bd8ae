"""Validate stage: a pandera schema built from the mapping checks every cell; bad ones are issues.

Each rule is a vectorised pandera check named by a `Problem`, so failures are collected lazily
(every bad cell of every row, not just the first) and callers never parse message text. Valid
rows are then converted to the strings HubSpot expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pandera
from pandera.errors import SchemaErrors

from ..core.hubspot import pipeline_properties
from ..core.outcome import Problem, RowIssue
from ..core.text import text_series
from ..mapping.model import Mapping
from ..sheets.load import Table
from .cell_issues import extra_cell_issues, issues_from_failures, merged_hint, unreadable_issues
from .cell_rules import AssociationRules, Cells, ColumnRules

__all__ = ["Validated", "validate"]


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


def validate(table: Table, mapping: Mapping) -> Validated:
    """Check every mapped cell; return the valid rows converted and an issue per bad cell."""
    frame = table.frame
    column_rules, assoc_rules = _rules(table, mapping)
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
        issues = issues_from_failures(exc.failure_cases, table, mapping, column_rules)
    if table.extra_cells or table.unreadable:
        issues += extra_cell_issues(table)
        issues += unreadable_issues(table, set(mapping.source_columns))
        # A cell that holds an error is not empty: say what it holds, once.
        issues = [
            i
            for i in issues
            if not (i.problem is Problem.REQUIRED and (i.row, i.column) in table.unreadable)
        ]
        order = {c: j for j, c in enumerate(table.columns)}
        issues.sort(key=lambda i: (i.row, order.get(i.column, len(order))))
    if table.merged:
        issues = [merged_hint(i, table) for i in issues]
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
    _add_pipelines(values, column_rules.values(), mapping.object_type)
    associations = {name: arules.convert(positions) for name, arules in assoc_rules.items()}
    return Validated(
        values=values,
        associations=associations,
        issues=tuple(issues),
        invalid_rows=invalid_rows,
    )


def _rules(
    table: Table, mapping: Mapping
) -> tuple[dict[str, ColumnRules], dict[str, AssociationRules]]:
    """The checks and conversion of each mapped column, and of each association column."""
    frame = table.frame
    column_rules = {
        spec.column: ColumnRules(
            spec,
            Cells(frame[spec.column]),
            mapping.object_type,
            mapping.number,
            excel=table.sheet is not None,
        )
        for spec in mapping.columns
    }
    assoc_rules = {
        spec.column: AssociationRules(spec, Cells(frame[spec.column]))
        for spec in mapping.associations
    }
    return column_rules, assoc_rules


def _add_pipelines(
    values: pd.DataFrame, column_rules: Iterable[ColumnRules], object_type: str
) -> None:
    """A stage column's pipeline beside it (`pipeline:`): written where the row gives a
    stage, only, so a stage always goes with its own pipeline."""
    for rules in column_rules:
        if rules.spec.pipeline_id:
            stage = values[rules.spec.property]
            pipeline = np.where(stage.to_numpy() != "", rules.spec.pipeline_id, "")
            values[pipeline_properties(object_type)[0]] = pd.Series(
                pipeline, index=values.index, dtype=stage.dtype
            )
