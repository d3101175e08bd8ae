"""`missing_rows:` in a mapping: what becomes of the records it holds whose key is no longer in
the feed (`MissingRows`: keep, archive, or set properties), read and checked, and its `set:`
values checked against the portal's properties as any mapped value is."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ..core.errors import ConfigError

__all__ = [
    "MissingAction",
    "MissingRows",
    "check_set_values",
    "parse_missing_rows",
    "refuse_in_plan",
]

KEY = "missing_rows"
_FORMS = "keep, archive or {set: {property: value}} (e.g. {set: {status: discontinued}})"
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_TEXT = 65_536

Fail = Callable[[str, str], None]
"""Records a problem: (where in the mapping, what is wrong)."""


class MissingAction(StrEnum):
    """What a run does to a record the mapping holds whose key left the feed."""

    KEEP = "keep"  # nothing: the record stays as it is (the default)
    ARCHIVE = "archive"  # batch/archive: into HubSpot's recycling bin
    SET = "set"  # batch/update with the rule's values (a status, say)


@dataclass(frozen=True)
class MissingRows:
    """A mapping's `missing_rows:`; `values` the (property, value) pairs `set` writes."""

    action: MissingAction = MissingAction.KEEP
    values: tuple[tuple[str, str], ...] = ()

    @property
    def keeps(self) -> bool:
        return self.action is MissingAction.KEEP

    def describe(self) -> str:
        """`archive`, `set status: discontinued`: the rule as messages say it."""
        if self.action is not MissingAction.SET:
            return self.action.value
        return "set " + ", ".join(f"{p}: {v}" for p, v in self.values)


def refuse_in_plan(rule: MissingRows, source: str) -> None:
    """ConfigError for a plan's step whose mapping archives or sets what leaves its feed: a
    plan's workbook and summary have no place for it yet, so it is refused, not run."""
    if not rule.keeps:
        raise ConfigError(
            f"{source}: missing_rows: {rule.describe()} is not run in a plan's step: import "
            "this sheet on its own (hubspot-import run), or set missing_rows: keep"
        )


def parse_missing_rows(fail: Fail, raw: Any, key_property: str | None) -> MissingRows:
    """`missing_rows: keep | archive | {set: {property: value}}`; a rule other than keep needs
    the mapping's key (without one no run can tell which records left the feed), and `set`
    may not write the key's own property."""
    if raw is None:
        return MissingRows()
    rule = _rule(fail, raw)
    if rule is None or rule.keeps:
        return rule or MissingRows()
    if key_property is None:
        fail(
            KEY,
            f"{rule.action.value} needs a key: without `key:` no run can tell which records "
            "left the feed. Add key: naming a column of unique values (SKU -> hs_sku), or "
            "remove missing_rows",
        )
        return MissingRows()
    if any(p == key_property for p, _ in rule.values):
        fail(f"{KEY}.set.{key_property}", "the key finds the record: it cannot be set")
        return MissingRows()
    return rule


def _rule(fail: Fail, raw: Any) -> MissingRows | None:
    """The rule as written; None after saying what is wrong."""
    if isinstance(raw, str) and raw.strip() in (MissingAction.KEEP, MissingAction.ARCHIVE):
        return MissingRows(MissingAction(raw.strip()))
    if not isinstance(raw, dict):
        fail(KEY, f"{raw!r} is not a rule: give {_FORMS}")
        return None
    unknown = [str(k) for k in raw if k != MissingAction.SET.value]
    if unknown:
        fail(KEY, f"unknown key {unknown[0]!r}: give {_FORMS}")
        return None
    values = raw.get(MissingAction.SET.value)
    if not isinstance(values, dict) or not values:
        fail(f"{KEY}.set", "give the properties to set, e.g. {status: discontinued}")
        return None
    pairs: list[tuple[str, str]] = []
    for prop, value in values.items():
        name = str(prop).strip()
        if isinstance(prop, bool) or not name:
            fail(f"{KEY}.set", f"{prop!r} is not a property name: quote it")
        elif value is None or isinstance(value, dict | list):
            fail(f"{KEY}.set.{name}", "give a single value (quote it to keep leading zeros)")
        else:
            pairs.append((name, _text(value)))
    if len(pairs) < len(values):
        return None
    return MissingRows(MissingAction.SET, tuple(pairs))


def _text(value: Any) -> str:
    """A YAML scalar as HubSpot takes it: `true`/`false` for booleans, else as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class PropertyFacts(Protocol):
    """What the portal says of a property (`mapping.portal.PropertyInfo`)."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def field_type(self) -> str: ...
    @property
    def options(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def calculated(self) -> bool: ...
    @property
    def referenced(self) -> str: ...


def check_set_values(
    rule: MissingRows,
    properties: AnyMapping[str, PropertyFacts],
    object_type: str,
    problems: list[str],
    owner: Callable[[str, str], tuple[str, str]] | None = None,
) -> MissingRows:
    """`set:` checked against the portal: each property exists and can be written, and each
    value is one it takes (an option's label becomes its value, as a cell's does; an owner,
    by id, email or name, its id: `owner(property, value)` gives the value stored and what is
    wrong with it). Problems are added to
    `problems`; the rule is returned with the values HubSpot stores."""
    if rule.action is not MissingAction.SET:
        return rule
    values: list[tuple[str, str]] = []
    for prop, value in rule.values:
        path = f"{KEY}.set.{prop}"
        info = properties.get(prop)
        if info is None:
            near = difflib.get_close_matches(prop, list(properties), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"{path}: {object_type} have no property {prop!r} in this portal{hint}")
            continue
        if info.read_only or info.calculated:
            problems.append(f"{path}: {prop!r} is set by HubSpot (read-only); it cannot be set")
            continue
        if info.referenced.upper() == "OWNER" and owner is not None:
            stored, problem = owner(prop, value)
        else:
            stored, problem = _stored(info, value)
        if problem:
            problems.append(f"{path}: {problem}")
        values.append((prop, stored))
    return MissingRows(MissingAction.SET, tuple(values))


def _stored(info: PropertyFacts, value: str) -> tuple[str, str]:
    """The value as HubSpot stores it for `info`, and what is wrong with it ("" if nothing).
    An empty value clears the property, whatever its type."""
    if value == "":
        return value, ""
    kind = info.type
    if kind == "bool" and value.casefold() in ("true", "false"):
        return value.casefold(), ""
    if kind == "bool":
        return value, f"{info.name} takes true or false, not {value!r}"
    if kind == "number" and not _PLAIN_NUMBER.fullmatch(value):
        return value, f"{info.name} takes a plain number such as 12.5, not {value!r}"
    if kind == "date" and not _is_date(value):
        return value, f"{info.name} takes a date as YYYY-MM-DD, not {value!r}"
    if kind == "enumeration":
        return _option(info, value)
    if len(value) > _MAX_TEXT:
        return value, f"{info.name} takes at most {_MAX_TEXT:,} characters"
    return value, ""


def _option(info: PropertyFacts, value: str) -> tuple[str, str]:
    """An enumeration's value (or values, `;`-separated for a multi-select) from options'
    values or labels, in any case."""
    folded = {v.casefold(): v for _, v in info.options}
    folded.update({label.casefold(): v for label, v in info.options if label.casefold()})
    parts = value.split(";") if info.field_type == "checkbox" else [value]
    found = [folded.get(p.strip().casefold()) for p in parts]
    if None in found:
        listed = ", ".join(v for _, v in info.options[:30]) or "none"
        return value, f"{value!r} is not an option of {info.name}; its options are: {listed}"
    return ";".join(f for f in found if f is not None), ""


def _is_date(value: str) -> bool:
    """Whether `value` is a date as HubSpot takes one: YYYY-MM-DD."""
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10
