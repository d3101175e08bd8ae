"""The portal check of a column's values: an owner column gets the owners' words, a stage
column its pipeline's, a price's currency is one the portal has, and a `values:` map may only
give values its property takes."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Protocol

from ..core.hubspot import pipeline_properties
from .model import ColumnSpec, PropertyType, ValueMap
from .portal_values import Currencies, Pipeline, find_pipeline, stage_words

__all__ = ["PortalWords", "PropertyFacts", "check_currency", "value_changes"]

_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_BOOL_WORDS = frozenset({"true", "false"})


class PortalWords(Protocol):
    """What the portal check reads of the portal for values (`PortalSchema`)."""

    @property
    def object_type(self) -> str: ...
    def owners(self) -> ValueMap: ...
    def pipelines(self) -> list[Pipeline]: ...
    def currencies(self) -> Currencies: ...


class PropertyFacts(Protocol):
    """What the portal says of a property (`PropertyInfo`)."""

    @property
    def name(self) -> str: ...
    @property
    def options(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def referenced(self) -> str: ...
    @property
    def display_hint(self) -> str: ...


def check_currency(spec: ColumnSpec, portal: PortalWords, problems: list[str]) -> bool:
    """Whether a price column's currency is one the portal has (a problem says if not)."""
    if spec.currency is None:
        return True
    currencies = portal.currencies()
    if spec.currency in currencies.all:
        return True
    problems.append(
        f"columns.{spec.column}.currency: this portal has no currency {spec.currency}; its "
        f"currencies are {currencies.describe()} (add it in HubSpot's settings, Account "
        "defaults > Currencies)"
    )
    return False


def value_changes(
    spec: ColumnSpec,
    kind: PropertyType,
    info: PropertyFacts,
    portal: PortalWords,
    problems: list[str],
    mapped: set[str],
) -> dict[str, Any] | None:
    """What the portal's words change in `spec` (read as `kind`): None when the column cannot
    be used (a problem says why). `mapped`: the properties the mapping writes itself."""
    path = f"columns.{spec.column}"
    holds_owners = info.referenced.upper() == "OWNER"
    if spec.type is PropertyType.OWNER and not holds_owners:
        problems.append(
            f"{path}.type: {info.name} does not hold owners in HubSpot; type: owner goes on "
            "hubspot_owner_id (or another property whose values are owners)"
        )
        return None
    if holds_owners and spec.values is not None:
        problems.append(
            f"{path}.values: {info.name} holds owners, which cells name by email, full name "
            "or id: remove values:"
        )
        return None
    if holds_owners:
        return {"type": PropertyType.OWNER, "values": portal.owners()}
    changes: dict[str, Any] = {"display_hint": info.display_hint}
    if spec.currency is None and (priced := _price_currency(info.name)):
        changes["currency"] = priced  # hs_price_usd holds USD: a € in it is refused
    if spec.number is not None and kind is not PropertyType.NUMBER:
        problems.append(f"{path}.number: {info.name} is not a number property in HubSpot")
        return None
    if spec.pipeline is not None:
        stages = _stages(spec, portal, problems, mapped)
        return None if stages is None else {**changes, **stages}
    # "Closed won" of two pipelines: the label alone would pick one of them silently.
    twice = _shared_labels(info) if kind is PropertyType.ENUMERATION else {}
    if spec.values is not None:
        words = _checked_values(spec.values, kind, info, f"{path}.values", problems, twice)
        return None if words is None else {**changes, "values": words}
    if twice:
        changes["values"] = ValueMap(
            words=(), refused=tuple(twice.items()), source="options", exhaustive=False
        )
    return changes


def _price_currency(name: str) -> str | None:
    """The currency of a product price property (`hs_price_usd` -> USD)."""
    match = re.fullmatch(r"hs_price_([a-z]{3})", name)
    return match.group(1).upper() if match else None


def _shared_labels(info: PropertyFacts) -> dict[str, str]:
    """Labels several options of the property share -> why a cell cannot use them."""
    values: dict[str, list[str]] = {}
    for label, value in info.options:
        values.setdefault(label.casefold(), []).append(value)
    pipeline_hint = " or say pipeline: on the column" if info.name.endswith("stage") else ""
    return {
        label: f"{len(ids)} options of {info.name} have this label ({', '.join(ids)}); give "
        f"the one meant by its value{pipeline_hint}"
        for label, ids in values.items()
        if len(set(ids)) > 1
    }


def _stages(
    spec: ColumnSpec, portal: PortalWords, problems: list[str], mapped: set[str]
) -> dict[str, Any] | None:
    """The stage words of the column's pipeline and its id, which is written with each stage
    (so the mapping may not write the pipeline property itself)."""
    path = f"columns.{spec.column}.pipeline"
    pipeline_prop, stage_prop = pipeline_properties(portal.object_type)
    if spec.property != stage_prop:
        problems.append(
            f"{path}: a pipeline goes with the stage property of {portal.object_type} "
            f"({stage_prop}), not {spec.property}"
        )
        return None
    if pipeline_prop in mapped:
        problems.append(
            f"{path}: the column's stages are written with their pipeline, {spec.pipeline}, "
            f"so the mapping cannot also write {pipeline_prop} (remove that column or "
            "constant, or this pipeline: and give stage ids)"
        )
        return None
    pipelines = portal.pipelines()
    found = find_pipeline(pipelines, str(spec.pipeline))
    if found is None:
        listed = ", ".join(f"{p.label} (id {p.id})" for p in pipelines) or "none"
        problems.append(
            f"{path}: {portal.object_type} have no pipeline {spec.pipeline!r} in this portal; "
            f"its pipelines: {listed}"
        )
        return None
    return {"values": stage_words(pipelines, found), "pipeline_id": found.id}


def _checked_values(
    words: ValueMap,
    kind: PropertyType,
    info: PropertyFacts,
    path: str,
    problems: list[str],
    twice: dict[str, str],
) -> ValueMap | None:
    """A `values:` map whose every value the property takes (as `kind` reads it), none of
    them a label several options share (`twice`), which the map's refusals gain."""
    shared = [f"{w!r}: {v!r}" for w, v in words.words if v.casefold() in twice]
    if shared:
        problems.append(
            f"{path}: {', '.join(shared[:10])} names a label several options of {info.name} "
            "share; map the word to the option's value"
        )
        return None
    booleans = [w for w in words.from_booleans if kind is not PropertyType.BOOL]
    if booleans:
        problems.append(
            f"{path}: YAML read the value of {', '.join(repr(w) for w in booleans[:10])} as "
            f"true or false, and {info.name} is a {kind.value} property: quote the value "
            '(e.g. "no")'
        )
        return None
    options = {v.casefold() for _, v in info.options} | {lab.casefold() for lab, _ in info.options}
    takes = {
        PropertyType.BOOL: lambda v: v.casefold() in _BOOL_WORDS,
        PropertyType.NUMBER: lambda v: bool(_PLAIN_NUMBER.fullmatch(v)),
        PropertyType.ENUMERATION: lambda v: all(
            p.strip().casefold() in options for p in v.split(";")
        ),
    }.get(kind)
    wrong = [f"{w!r}: {v!r}" for w, v in words.words if takes is not None and not takes(v)]
    if wrong:
        what = {
            PropertyType.BOOL: "true or false",
            PropertyType.NUMBER: "a plain number such as 12.5",
            PropertyType.ENUMERATION: "one of its options: "
            + ", ".join(v for _, v in info.options[:30]),
        }[kind]
        problems.append(
            f"{path}: {info.name} takes {what}, so these words map to values HubSpot would "
            f"refuse: {', '.join(wrong[:10])}"
        )
        return None
    # An enumeration's own options and labels still count beside the map's words.
    return dataclasses.replace(
        words,
        exhaustive=kind is not PropertyType.ENUMERATION,
        refused=words.refused + tuple(twice.items()),
    )
