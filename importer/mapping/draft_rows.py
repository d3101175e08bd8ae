"""The key and the row shape `init` proposes: the column that identifies a record, the rows
that are parents of others (WooCommerce's variable products, marked in its Type column), and
for an export with grouped rows (Shopify's: a product's variants and images under one Handle)
the group column, the columns to fill down, and the rows to skip."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import pandas as pd

from .draft_match import Match
from .export_words import letters
from .model import fold
from .portal import PropertyInfo

__all__ = ["Grouping", "KeyChoice", "ParentRows", "is_identifier", "propose_rows", "rows_named"]

IDENTIFIERS = frozenset({"hs_sku", "email"})
"""Properties that identify a record in HubSpot without unique values there."""
_EXTERNAL_ID = re.compile(r"(?:^|_)external(?:_[a-z0-9]+)*_id$")
SHOWN_ROWS = 3
PARENT_KINDS = {
    "variable": (
        "variation",
        "WooCommerce writes a variable product as a parent row ({column} {value}) above its "
        "variations: the parent is no record of its own",
    ),
}
"""In a column of row kinds, a kind whose rows are parents of the rows of another kind ->
that kind, and why the parents are skipped ({column} and {value} filled in)."""
MAX_KINDS = 30
"""A column with more distinct cells is no column of row kinds (WooCommerce writes a kind
with its flags, "variation, downloadable, virtual": a few dozen at most)."""


def is_identifier(prop: PropertyInfo) -> bool:
    """Whether HubSpot treats the property as a record's identifier: unique values, a SKU,
    an email, or an external id."""
    return prop.unique or prop.name in IDENTIFIERS or bool(_EXTERNAL_ID.search(prop.name))


@dataclass(frozen=True, kw_only=True)
class ParentRows:
    """Rows that are parents of other rows, marked in a column of row kinds: the rows
    `skip_rows_where` skips."""

    column: str
    values: tuple[str, ...]
    """The column's cells that mark a parent, as the sheet writes them, each once."""
    rows: tuple[int, ...]
    """The sheet rows they mark."""
    why: str
    """Why they are no records (the export's way of writing them)."""


@dataclass(frozen=True, kw_only=True)
class Grouping:
    """How the sheet's rows are grouped: `skip_rows_where` (parent rows), `group_by`,
    `fill_down`, `skip_rows_without`."""

    group_by: str | None = None
    fill_down: tuple[str, ...] = ()
    skip_without: str | None = None
    skipped: tuple[int, ...] = ()
    """The sheet rows skip_rows_without skips."""
    not_images: tuple[int, ...] = ()
    """Those of them that carry more than the group column and image columns: records
    without a key (a variant without a SKU), which the user may want to give one."""
    parents: ParentRows | None = None
    """The parent rows to skip (None: none); the rest is judged on the other rows."""


@dataclass(frozen=True, kw_only=True)
class KeyChoice:
    """The proposed key (None: none) and why it was chosen, or why none was."""

    match: Match | None
    why: str


def rows_named(rows: pd.Index | tuple[int, ...]) -> str:
    """Sheet rows as a message names them: 'rows 4, 9 and 12', or the first few."""
    shown = [str(r) for r in rows[:SHOWN_ROWS]]
    more = len(rows) - len(shown)
    listed = ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]
    return f"row{'s' if len(rows) > 1 else ''} {listed}" + (f" and {more} more" if more else "")


def _filled(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype(str).str.strip() != ""


def group_column(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    """The first column whose values are all filled and come in runs of equal values, each
    value in one run and some run longer than a row (Shopify's Handle), or None."""
    for column in frame.columns:
        if column in exclude:
            continue
        values = frame[column].astype(str).str.strip()
        if len(values) < 2 or not (values != "").all():
            continue
        runs = int((values != values.shift()).sum())
        if 1 < values.nunique() == runs < len(values):
            return str(column)
    return None


def _first_row_only(frame: pd.DataFrame, group: pd.Series, column: str) -> bool:
    """Whether `column` is filled on its group's first row only, in every group where it is
    filled, and that shows in groups of several rows."""
    filled = _filled(frame, column)
    first = group != group.shift()
    if (filled & ~first).any():
        return False
    sizes = group.map(group.value_counts())
    return bool((filled & first & (sizes > 1)).any())


def _unique_and_present(frame: pd.DataFrame, m: Match) -> str:
    """Why the column cannot be the key ("" when it can): an empty cell or a repeat."""
    values = frame[m.column].astype(str).str.strip()
    empty = values[values == ""]
    if not empty.empty:
        return f"{m.column} ({m.prop.name}) is empty in {rows_named(empty.index)}"
    folded = values.str.casefold()
    twice = folded[folded.duplicated(keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        rows = twice[twice == first].index
        return f"{m.column} ({m.prop.name}) holds {values[rows[0]]!r} in {rows_named(rows)}"
    return ""


def _grouping(frame: pd.DataFrame, matches: list[Match], key: Match | None) -> Grouping:
    """The group column, the matched columns filled on each group's first row only, and,
    when the key is empty in some rows of a grouped sheet, those rows to skip."""
    # A group column holds the group's id (a Handle); a column sent as a number, a date or an
    # option ("Product type") sorted into runs is no group.
    exclude = {m.column for m in matches if m.prop.type != "string"}
    group = group_column(frame, exclude | ({key.column} if key is not None else set()))
    if group is None:
        return Grouping()
    kept = frame
    skip: str | None = None
    skipped: tuple[int, ...] = ()
    if key is not None and not _filled(frame, key.column).all():
        filled = _filled(frame, key.column)
        skip, kept = key.column, frame[filled]
        skipped = tuple(int(r) for r in frame.index[~filled])
    runs = kept[group].astype(str).str.strip()
    fill = tuple(
        m.column
        for m in sorted(matches, key=lambda m: list(frame.columns).index(m.column))
        if m.column not in (group, skip) and _first_row_only(kept, runs, m.column)
    )
    return Grouping(
        group_by=group if fill else None,
        fill_down=fill,
        skip_without=skip,
        skipped=skipped,
        not_images=_not_images(frame.loc[list(skipped)], group),
    )


def _not_images(dropped: pd.DataFrame, group: str) -> tuple[int, ...]:
    """The rows that hold more than the group column and image columns."""
    images = {c for c in dropped.columns if "image" in letters(str(c))} | {group}
    others = [c for c in dropped.columns if c not in images]
    if not others:
        return ()
    filled = dropped[others].apply(lambda col: col.astype(str).str.strip() != "").any(axis=1)
    return tuple(int(r) for r in dropped.index[filled])


def parent_rows(frame: pd.DataFrame) -> ParentRows | None:
    """The rows of the first column of row kinds (a kind is a cell's first comma-separated
    word: "variation, virtual" is a variation) where rows of a parent kind and rows of its
    children's kind are both found (PARENT_KINDS), or None."""
    for column in frame.columns:
        cells = frame[column].astype(str).str.strip()
        distinct = cells.unique()
        if len(distinct) > MAX_KINDS:
            continue
        kind = {cell: cell.split(",")[0].strip().casefold() for cell in distinct}
        for parent, (children, why) in PARENT_KINDS.items():
            if parent not in kind.values() or children not in kind.values():
                continue
            marked = cells.map(kind) == parent
            values = _each_once(cells[marked].unique())
            return ParentRows(
                column=str(column),
                values=values,
                rows=tuple(int(r) for r in frame.index[marked]),
                why=why.format(column=column, value=values[0]),
            )
    return None


def _each_once(cells: Iterable[str]) -> tuple[str, ...]:
    """The cells in their order, each once (compared as `skip_rows_where` compares them)."""
    once: dict[str, str] = {}
    for cell in cells:
        once.setdefault(fold(cell), cell)
    return tuple(once.values())


def propose_rows(frame: pd.DataFrame, matches: list[Match]) -> tuple[KeyChoice, Grouping]:
    """The parent rows to skip, then, on the other rows, the key (a matched identifier column
    with a value in every row kept, none twice) and the grouping, for the rows as the grouping
    keeps them."""
    parents = parent_rows(frame)
    if parents is not None:
        frame = frame.drop(index=list(parents.rows))
    key, grouping = _key_and_grouping(frame, matches, parents=parents is not None)
    return key, replace(grouping, parents=parents)


def _key_and_grouping(
    frame: pd.DataFrame, matches: list[Match], *, parents: bool
) -> tuple[KeyChoice, Grouping]:
    """The key (a matched identifier column with a value in every row kept, none twice) and
    the grouping, for the rows as the grouping keeps them (`parents`: parent rows were left
    out of `frame` already)."""
    candidates = sorted(
        (m for m in matches if is_identifier(m.prop)),
        key=lambda m: (-m.score, list(frame.columns).index(m.column)),
    )
    reasons: list[str] = []
    for m in candidates:
        grouping = _grouping(frame, matches, m)
        kept = frame[_filled(frame, m.column)] if grouping.skip_without else frame
        problem = _unique_and_present(kept, m)
        if not problem:
            return KeyChoice(match=m, why=_why_key(m, grouping, parents)), grouping
        reasons.append(problem)
    if not candidates:
        reasons.append(
            "no column is matched to hs_sku, email, an external id or another property "
            "with unique values"
        )
    return KeyChoice(match=None, why="; ".join(reasons)), _grouping(frame, matches, None)


def _why_key(m: Match, grouping: Grouping, parents: bool) -> str:
    """Why the column is the key: what its property is, and that its values identify rows."""
    kind = "has unique values in HubSpot" if m.prop.unique else "identifies a record"
    rows = "every row kept" if grouping.skip_without or parents else "every row"
    return f"{m.prop.name} {kind}; {m.column} is filled in {rows} and no value repeats"
