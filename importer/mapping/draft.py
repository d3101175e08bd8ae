"""Draft a mapping from a sheet's header row and the portal's property definitions (`init`)."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from dataclasses import dataclass

import pandas as pd

from ..core.errors import ConfigError
from ..core.hubspot import DEFAULT_ASSOCIATION_TYPES
from ..sheets.load import Table
from .draft_match import Match, Matching, match_columns, nearest
from .draft_rows import Grouping, KeyChoice, ParentRows, propose_rows, rows_named
from .portal import PortalSchema
from .values_fit import sample

__all__ = ["NO_KEY", "Draft", "Match", "draft_mapping", "skipped_rows"]

HEADER_ROW = 1
WIDTH = 95
"""The width of the draft's comment lines."""
NO_KEY = (
    "Without a key, reruns cannot recognise records: a second run refuses to import the file "
    "again (and with --import-again it creates every record again). Map a column whose "
    "values identify the rows (a SKU, an email, an external id, or another property with "
    "unique values in HubSpot), with a value in every row and none twice, and name it here "
    "as key: <column>."
)

_TARGET_WORDS = {
    "contact": "contacts",
    "deal": "deals",
    "order": "orders",
    "cart": "carts",
    "company": "companies",
    "line": "line_items",
    "quote": "quotes",
}
_IDS = re.compile(r"\d+(\s*[;,]\s*\d+)*")


def _key(name: str) -> str:
    """A column name as a YAML key: quoted (JSON style, valid YAML) when it needs to be."""
    plain = re.fullmatch(r"[A-Za-z_][\w ().%/-]*", name) and name == name.strip()
    reserved = name.casefold() in {"yes", "no", "true", "false", "on", "off", "null", "y", "n"}
    return name if plain and not reserved else json.dumps(name, ensure_ascii=False)


def _association(column: str, values: pd.Series, object_type: str) -> str | None:
    """The `associations:` entry for a column of record ids whose header names an object."""
    seen = sample(values)
    if seen.empty or not seen.str.fullmatch(_IDS).all():
        return None
    for word in re.findall(r"[a-z0-9]+", column.casefold()):
        to = _TARGET_WORDS.get(word.rstrip("s"))
        type_id = DEFAULT_ASSOCIATION_TYPES.get(object_type, {}).get(to or "")
        if to and type_id:
            sep = ";" if seen.str.contains(";").any() or not seen.str.contains(",").any() else ","
            return (
                f'  - column: {_key(column)}\n    separator: "{sep}"\n    to: {to}\n'
                f"    types:\n      - {{associationCategory: HUBSPOT_DEFINED, "
                f"associationTypeId: {type_id}}}\n"
            )
    return None


@dataclass(frozen=True, kw_only=True)
class Draft:
    """A drafted mapping: its YAML text, and what `init` tells the user about it."""

    text: str
    matching: Matching
    unmatched: list[str]
    key: KeyChoice
    grouping: Grouping
    header_row: int | None

    @property
    def matches(self) -> list[Match]:
        return self.matching.matches

    @property
    def skipping(self) -> str | None:
        """The rows `skip_rows_without` skips, as the draft says it (None: none)."""
        if self.grouping.skip_without is None or self.key.match is None:
            return None
        return skipped_rows(self.grouping)

    @property
    def parents(self) -> str | None:
        """The parent rows `skip_rows_where` skips, as `init` says it (None: none)."""
        parents = self.grouping.parents
        if parents is None:
            return None
        said = f"{parents.column} {' or '.join(parents.values)}: {rows_named(parents.rows)}"
        if len(parents.rows) == 1:
            return f"1 row is a parent ({said}): it is skipped."
        return f"{len(parents.rows)} rows are parents ({said}): they are skipped."

    @property
    def no_key(self) -> str:
        """Why no key was proposed, what that costs, and what to do."""
        return f"{self.key.why}. {NO_KEY}"


def _comment(text: str, indent: str = "") -> list[str]:
    """A comment wrapped to the width of the draft's lines."""
    return textwrap.wrap(text, WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ")


def _preamble(source: str, schema: PortalSchema, base_url: str, export: str | None) -> list[str]:
    """The draft's first lines: what it maps, where, and how to read its comments."""
    what = f": a {export} export" if export else ""
    return [
        f"# Mapping for {source} -> {schema.object_type} at {base_url}",
        *_comment(
            f"Drafted by `hubspot-import init` on {dt.date.today().isoformat()}{what}. Each "
            "column was matched to a property by its name, its label, or the column names "
            "common exports use; the comment on each line says how sure the match is. Check "
            'the lines marked "check" and the columns left as comments at the end.'
        ),
    ]


def _key_lines(key: KeyChoice) -> list[str]:
    """`key:` and why, or a comment saying why none was proposed and what that costs."""
    if key.match is not None:
        return [f"key: {_key(key.match.column)}  # {key.why}"]
    return _comment(f"key: none proposed: {key.why}. {NO_KEY}")


def _parent_lines(parents: ParentRows | None) -> list[str]:
    """`skip_rows_where:` for the parent rows, and why they are no records."""
    if parents is None:
        return []
    said = f"{parents.column} {' or '.join(parents.values)}"
    n = len(parents.rows)
    rows = f"the {n} rows with {said} are" if n > 1 else f"the row with {said} is"
    values = ", ".join(_key(v) for v in parents.values)
    return [
        *_comment(f"{parents.why}, so {rows} skipped."),
        f"skip_rows_where: {{{_key(parents.column)}: [{values}]}}",
    ]


def _grouping_lines(grouping: Grouping, key: KeyChoice) -> list[str]:
    """`skip_rows_where:`, `group_by:`, `fill_down:` and `skip_rows_without:` with why each
    was proposed."""
    lines = _parent_lines(grouping.parents)
    if grouping.group_by is not None:
        lines += _comment(
            f"Rows come in groups of equal {grouping.group_by} values (a product and its "
            "variants), and some columns are filled on each group's first row only: they are "
            "carried down to the group's other rows."
        )
        lines.append(f"group_by: {_key(grouping.group_by)}")
        lines.append(f"fill_down: [{', '.join(_key(c) for c in grouping.fill_down)}]")
    if grouping.skip_without is not None and key.match is not None:
        lines += _comment(skipped_rows(grouping))
        lines.append(f"skip_rows_without: [{_key(grouping.skip_without)}]")
    return lines


def skipped_rows(grouping: Grouping) -> str:
    """What the rows skip_rows_without skips are, and what to do about those that are not
    images only."""
    skipped, column = len(grouping.skipped), grouping.skip_without
    if not grouping.not_images:
        return f"{skipped} rows have no {column} (they carry only images): they are skipped."
    others = grouping.not_images
    return (
        f"{skipped} rows have no {column}, and are skipped; {len(others)} of them "
        f"({rows_named(others)}) carry more than images: give them a {column} to import them."
    )


def _column_line(m: Match) -> str:
    note = f"; {m.note}" if m.note else ""
    return f"  {_key(m.column)}: {{{', '.join(m.fields)}}}  # {m.how}{note}"


def _unmatched_lines(unmatched: list[str], matching: Matching, schema: PortalSchema) -> list[str]:
    """The columns left out, as comments: their nearest properties and why not those."""
    if not unmatched:
        return []
    taken = {m.prop.name for m in matching.matches}
    lines = ["# Columns with no close property: map them by hand, or leave them out."]
    for column in unmatched:
        near = ", ".join(nearest(column, schema, taken))
        why = matching.refused.get(column)
        lines.append(
            f"#   {_key(column)}: <property>   nearest: {near}" + (f"   ({why})" if why else "")
        )
    return lines


def draft_mapping(
    table: Table,
    schema: PortalSchema,
    *,
    source: str,
    command: str,
    base_url: str,
    header_row: int | None = None,
) -> Draft:
    """The drafted mapping: each column matched, the key and the row shape proposed."""
    matching = match_columns(table.columns, table.frame, schema)
    by_column = {m.column: m for m in matching.matches}
    key, grouping = propose_rows(table.frame, matching.matches)
    header = header_row or (table.header_row if table.header_row != HEADER_ROW else None)
    lines = _preamble(source, schema, base_url, matching.export)
    lines += _comment(f"Next: {command}")
    lines.append(f"object_type: {schema.object_type}")
    if header is not None:
        lines.append(f"header_row: {header}  # the sheet's header is on row {header}")
    lines += _key_lines(key) + _grouping_lines(grouping, key) + ["columns:"]
    associations: list[str] = []
    unmatched: list[str] = []
    for column in table.columns:
        m = by_column.get(column)
        if m is not None:
            lines.append(_column_line(m))
        elif assoc := _association(column, table.frame[column], schema.object_type):
            associations.append(assoc)
        else:
            unmatched.append(column)
    if not matching.matches and not associations:
        raise ConfigError(
            f"no column of {source} is close to a {schema.object_type} property "
            "or holds record ids; check --object, or write the mapping by hand "
            "(see docs/mapping.md)"
        )
    if not matching.matches:
        lines[-1] = "columns: {}  # none matched: map at least one column by hand"
    if associations:
        lines.append("associations:")
        lines += [a.rstrip("\n") for a in associations]
    lines += _unmatched_lines(unmatched, matching, schema)
    text = "\n".join(lines) + "\n"
    return Draft(
        text=text,
        matching=matching,
        unmatched=unmatched,
        key=key,
        grouping=grouping,
        header_row=header,
    )
