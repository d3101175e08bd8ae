"""The portal check: the mapping against the portal's properties and association labels.

`resolve` returns the mapping as it will be used: types and options taken from HubSpot's
property definitions, association labels turned into type ids. Every problem is collected and
reported at once, with the nearest existing property for a misspelt one.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..api.client import HubSpotClient, UncertainDelivery, Verdict, error_message, route_missing
from ..api.lookup import remember_unique
from ..core.errors import AuthError, ConfigError, HubSpotUnavailable, MappingError
from ..core.hubspot import DEFAULT_ASSOCIATION_TYPES, AssociationCategory, held_unique
from .column_values import check_currency, value_changes
from .missing_keys import check_set_values
from .model import (
    AssociationSpec,
    AssociationTypeSpec,
    ColumnSpec,
    Mapping,
    PropertyType,
    SyncMode,
    ValueMap,
    fold,
)
from .portal_values import (
    Currencies,
    Pipeline,
    owner_words,
    read_currencies,
    read_owners,
    read_pipelines,
)

__all__ = ["LabelInfo", "PortalSchema", "PropertyInfo", "read_schema", "resolve", "resolve_offline"]

log = logging.getLogger(__name__)

# HubSpot property type -> the mapping type that validates it.
_TYPES = {
    "string": PropertyType.STRING,
    "number": PropertyType.NUMBER,
    "bool": PropertyType.BOOL,
    "date": PropertyType.DATE,
    "datetime": PropertyType.DATETIME,
    "enumeration": PropertyType.ENUMERATION,
    "phone_number": PropertyType.STRING,
}
# A mapping may ask for a stricter reading than the portal's type, never a different one.
_COMPATIBLE = {
    PropertyType.STRING: {PropertyType.STRING},
    PropertyType.NUMBER: {PropertyType.NUMBER},
    PropertyType.BOOL: {PropertyType.BOOL},
    PropertyType.DATE: {PropertyType.DATE},
    PropertyType.DATETIME: {PropertyType.DATETIME, PropertyType.DATE},
    PropertyType.ENUMERATION: {PropertyType.ENUMERATION},
}


@dataclass(frozen=True, kw_only=True)
class PropertyInfo:
    name: str
    label: str
    type: str
    field_type: str
    options: tuple[tuple[str, str], ...] = ()
    """(label, value) pairs; the value is what HubSpot stores."""
    unique: bool = False
    read_only: bool = False
    calculated: bool = False
    referenced: str = ""
    """`referencedObjectType`: OWNER for a property that holds an owner's id."""
    display_hint: str = ""
    """`numberDisplayHint` of a number property: percentage, probability, currency, ..."""
    group: str = ""
    """`groupName`: the property group it is listed under in HubSpot (contactinformation, ...)."""

    @property
    def multiple(self) -> bool:
        return self.type == "enumeration" and self.field_type == "checkbox"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PropertyInfo:
        meta = data.get("modificationMetadata") or {}
        options = tuple(
            (str(o.get("label", o.get("value", ""))), str(o.get("value", "")))
            for o in data.get("options") or []
            if isinstance(o, dict) and not o.get("hidden")
        )
        return cls(
            name=str(data.get("name", "")),
            label=str(data.get("label") or data.get("name", "")),
            type=str(data.get("type", "string")),
            field_type=str(data.get("fieldType", "text")),
            options=options,
            unique=bool(data.get("hasUniqueValue")),
            read_only=bool(meta.get("readOnlyValue")),
            calculated=bool(data.get("calculated")),
            referenced=str(data.get("referencedObjectType") or ""),
            display_hint=str(data.get("numberDisplayHint") or ""),
            group=str(data.get("groupName") or ""),
        )


@dataclass(frozen=True, kw_only=True)
class LabelInfo:
    category: str
    type_id: int
    label: str | None


@dataclass(kw_only=True)
class PortalSchema:
    """What the portal says about one object type; association labels fetched on demand."""

    object_type: str
    properties: dict[str, PropertyInfo]
    client: HubSpotClient | None = None
    _labels: dict[str, list[LabelInfo]] = field(default_factory=dict)
    _read: dict[str, Any] = field(default_factory=dict)
    """Owners, pipelines and currencies, each read when first asked for."""

    def _get(self, path: str, what: str) -> dict[str, Any]:
        assert self.client is not None
        return _get(self.client, path, what, self.object_type)

    def owners(self) -> ValueMap:
        """The owners' words (email, name, id -> owner id); read once."""
        if "owners" not in self._read:
            assert self.client is not None
            self._read["owners"] = owner_words(read_owners(self._get, self.client.paths.owners()))
        owners: ValueMap = self._read["owners"]
        return owners

    def pipelines(self) -> list[Pipeline]:
        if "pipelines" not in self._read:
            assert self.client is not None
            path = self.client.paths.pipelines(self.object_type)
            self._read["pipelines"] = read_pipelines(self._get, path, self.object_type)
        pipelines: list[Pipeline] = self._read["pipelines"]
        return pipelines

    def currencies(self) -> Currencies:
        if "currencies" not in self._read:
            assert self.client is not None
            paths = self.client.paths
            self._read["currencies"] = read_currencies(
                self._get, paths.company_currency(), paths.exchange_rates()
            )
        currencies: Currencies = self._read["currencies"]
        return currencies

    def labels(self, to_type: str) -> list[LabelInfo]:
        if to_type not in self._labels:
            if self.client is None:
                return []
            body = _get(
                self.client,
                self.client.paths.labels(self.object_type, to_type),
                f"association labels from {self.object_type} to {to_type}",
                self.object_type,
            )
            self._labels[to_type] = [
                LabelInfo(
                    category=str(r.get("category")),
                    type_id=int(r.get("typeId", 0)),
                    label=r.get("label"),
                )
                for r in body.get("results") or []
                if isinstance(r, dict)
            ]
        return self._labels[to_type]

    def writable(self) -> list[PropertyInfo]:
        return [p for p in self.properties.values() if not (p.read_only or p.calculated)]


def _get(client: HubSpotClient, path: str, what: str, object_type: str) -> dict[str, Any]:
    """A preflight read; failures are configuration errors (exit 2): nothing was sent yet."""
    try:
        reply = client.request("GET", path)
    except AuthError as exc:
        raise AuthError(f"could not read the {what}: {exc}", status=exc.status) from None
    except (UncertainDelivery, HubSpotUnavailable) as exc:
        raise ConfigError(
            f"could not read the {what} from {client.base_url}: {exc} Check "
            "--base-url (or HUBSPOT_BASE_URL) and the network."
        ) from None
    if reply.verdict is not Verdict.SUCCESS:
        message = error_message(reply.body, reply.status)
        if route_missing(reply):
            raise ConfigError(
                f"could not read the {what}: {client.version_hint()} (HTTP 404 for {path})"
            )
        if reply.status == 404 or "Unable to infer object type" in message:
            raise ConfigError(
                f"HubSpot has no object type {object_type!r} ({message}); "
                "check object_type in the mapping"
            )
        raise ConfigError(f"could not read the {what}: {message}")
    return reply.body


def read_schema(client: HubSpotClient, object_type: str) -> PortalSchema:
    """The object type's property definitions (`GET /crm/properties/2026-03/{objectType}`)."""
    body = _get(
        client, client.paths.properties(object_type), f"{object_type} properties", object_type
    )
    props = [PropertyInfo.from_json(r) for r in body.get("results") or [] if isinstance(r, dict)]
    props = [replace(p, unique=held_unique(object_type, p.name, p.unique)) for p in props]
    log.info("read %d %s properties from the portal", len(props), object_type)
    remember_unique(client, object_type, {p.name: p.unique for p in props})
    return PortalSchema(
        object_type=object_type, properties={p.name: p for p in props}, client=client
    )


def check_mapping(
    client: HubSpotClient,
    mapping: Mapping,
    *,
    mode: SyncMode,
    source: str,
    schemas: dict[str, PortalSchema],
) -> Mapping:
    """The mapping checked against the portal and completed from it, with its references'
    `by:` properties and an upsert key checked too. `schemas` keeps what was read, per object
    type, for the next mapping checked with the same client (a plan's steps)."""

    def schema_of(object_type: str) -> PortalSchema:
        if object_type not in schemas:
            schemas[object_type] = read_schema(client, object_type)
        return schemas[object_type]

    schema = schema_of(mapping.object_type)
    mapping = resolve(mapping, schema)
    for ref in {(r.to, r.by): r for r in mapping.references}.values():
        target = schema_of(ref.to)
        if ref.by != "hs_object_id" and ref.by not in target.properties:
            near = difflib.get_close_matches(ref.by, list(target.properties), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ConfigError(
                f"{source}: `by: {ref.by}` is not a {ref.to} property in this portal{hint}"
            )
    key_info = schema.properties.get(mapping.key_property or "")
    if mode is SyncMode.UPSERT and key_info is not None and not key_info.unique:
        raise ConfigError(
            f"upsert finds records by the key's property, and HubSpot holds "
            f"{key_info.name} without unique values, so it refuses to upsert by it: key "
            f"the mapping on a unique property (e.g. hs_sku, email) or use --mode create"
        )
    return mapping


def nearest_property(name: str, props: Iterable[PropertyInfo]) -> PropertyInfo | None:
    """The property whose name or label is closest to `name`."""
    candidates: dict[str, PropertyInfo] = {}
    for p in props:
        candidates.setdefault(p.name.casefold(), p)
        candidates.setdefault(p.label.casefold(), p)
    close = difflib.get_close_matches(name.casefold(), list(candidates), n=1, cutoff=0.6)
    return candidates[close[0]] if close else None


def _describe(p: PropertyInfo) -> str:
    return f"{p.name!r} ({p.label})" if p.label and p.label != p.name else repr(p.name)


def resolve(mapping: Mapping, schema: PortalSchema) -> Mapping:
    """The mapping checked against the portal and completed from it (types, options, labels)."""
    problems: list[str] = []
    mapped = {c.property for c in mapping.columns} | {p for p, _ in mapping.constants}
    columns = [
        c for c in (_column(spec, schema, problems, mapped) for spec in mapping.columns) if c
    ]
    for prop, _ in mapping.constants:
        info = _property(prop, f"constants.{prop}", schema, problems)
        if info is not None and (info.read_only or info.calculated):
            problems.append(f"constants.{prop}: {prop!r} is set by HubSpot (read-only); remove it")
    associations = [
        _association(i, a, mapping.object_type, schema, problems)
        for i, a in enumerate(mapping.associations)
    ]
    missing = check_set_values(
        mapping.missing_rows,
        schema.properties,
        mapping.object_type,
        problems,
        owner=functools.partial(_owner_set, schema) if schema.client is not None else None,
    )
    if problems:
        raise MappingError(mapping.source, problems)
    return dataclasses.replace(
        mapping,
        columns=tuple(columns),
        associations=tuple(associations),
        missing_rows=missing,
    )


def _owner_set(schema: PortalSchema, prop: str, value: str) -> tuple[str, str]:
    """The owner id `missing_rows: {set: {prop: value}}` stores for the active owner `value`
    names by id, email or full name (as an owner column's cells do), and what is wrong with
    it ("" if nothing); "" clears the property."""
    if value == "":
        return value, ""
    owners, word = schema.owners(), fold(value)
    found = owners.folded().get(word)
    if found is not None:
        return found, ""
    why = owners.folded_refusals().get(word)
    if why is not None:
        return value, f"{prop}: {why}"
    return value, (
        f"{value!r} is not one of the portal's owners; {prop} takes an owner's id, email or "
        "full name"
    )


def resolve_offline(mapping: Mapping) -> Mapping:
    """Without the portal (--no-portal-check): only what the mapping itself says."""
    problems = [
        f"columns.{c.column}.options: give the allowed values, or let the portal check supply "
        "them (drop --no-portal-check)"
        for c in mapping.columns
        if c.type is PropertyType.ENUMERATION and not c.options
    ]
    problems += [
        f"columns.{c.column}: {what} needs the portal check to read them (drop --no-portal-check)"
        for c in mapping.columns
        for what in (
            ["type: owner takes the portal's owners"] if c.type is PropertyType.OWNER else []
        )
        + ([f"pipeline: {c.pipeline} takes the portal's stages"] if c.pipeline else [])
    ]
    problems += [
        f"columns.{c.column}: a column with number: or currency: holds numbers; add type: "
        "number (without the portal check, the mapping gives the type)"
        for c in mapping.columns
        if (c.number or c.currency) and c.type is not PropertyType.NUMBER
    ]
    problems += [
        f"columns.{c.column}.format: only a date or datetime column takes a format; add "
        "type: date (or datetime)"
        for c in mapping.columns
        if c.format and c.type not in (PropertyType.DATE, PropertyType.DATETIME)
    ]
    for i, a in enumerate(mapping.associations):
        for j, t in enumerate(a.types):
            if t.label is not None:
                problems.append(
                    f"associations[{i}].types[{j}]: a type given by label needs the "
                    "portal check to find its id (drop --no-portal-check)"
                )
    if problems:
        raise MappingError(mapping.source, problems)
    # As online: an enumeration's own options count beside the words of its values: map.
    columns = tuple(
        dataclasses.replace(c, values=dataclasses.replace(c.values, exhaustive=False))
        if c.values is not None and c.type is PropertyType.ENUMERATION
        else c
        for c in mapping.columns
    )
    return dataclasses.replace(mapping, columns=columns)


def _property(
    prop: str, path: str, schema: PortalSchema, problems: list[str]
) -> PropertyInfo | None:
    info = schema.properties.get(prop)
    if info is None:
        near = nearest_property(prop, schema.properties.values())
        hint = f"; did you mean {_describe(near)}?" if near else ""
        problems.append(
            f"{path}: {schema.object_type} have no property {prop!r} in this portal{hint}"
        )
    return info


def _column(
    spec: ColumnSpec, schema: PortalSchema, problems: list[str], mapped: set[str]
) -> ColumnSpec | None:
    path = f"columns.{spec.column}"
    if not check_currency(spec, schema, problems):
        return None
    info = _property(spec.property, f"{path}.property", schema, problems)
    if info is None:
        return None
    if info.read_only or info.calculated:
        why = "calculated" if info.calculated else "read-only"
        problems.append(
            f"{path}.property: {_describe(info)} is {why} in HubSpot and cannot be "
            "imported; remove it from the mapping"
        )
        return None
    if spec.reference is not None:
        # The cell holds another record's key; the id sent is a record id, whatever the type.
        return dataclasses.replace(spec, unique=info.unique)
    portal_type = _TYPES.get(info.type, PropertyType.STRING)
    kind = spec.type if spec.type_given else portal_type
    words = value_changes(spec, kind, info, schema, problems, mapped)
    if words is None:
        return None
    if words.get("type") is PropertyType.OWNER:
        return dataclasses.replace(spec, unique=info.unique, **words)
    if kind not in _COMPATIBLE[portal_type]:
        problems.append(
            f"{path}.type: the mapping says {spec.type.value}, but {_describe(info)}"
            f" is a {info.type} property in HubSpot; use type: {portal_type.value}"
        )
        return None
    if spec.format and kind not in (PropertyType.DATE, PropertyType.DATETIME):
        problems.append(
            f"{path}.format: only a date or datetime column takes a format, and "
            f"{_describe(info)} is a {info.type} property"
        )
    changes: dict[str, Any] = {"type": kind, "unique": info.unique, **words}
    if kind is PropertyType.ENUMERATION:
        values = [v for _, v in info.options]
        unknown = [o for o in spec.options if o not in values]
        if unknown:
            listed = ", ".join(values[:30])
            problems.append(
                f"{path}.options: {', '.join(repr(o) for o in unknown)} "
                f"{'is' if len(unknown) == 1 else 'are'} not an option of "
                f"{_describe(info)}; its options are: {listed}"
            )
        changes["options"] = spec.options or tuple(values)
        changes["option_labels"] = tuple(
            (label, value) for label, value in info.options if value in (spec.options or values)
        )
        changes["multiple"] = info.multiple
    return dataclasses.replace(spec, **changes)


def _association(
    i: int, spec: AssociationSpec, object_type: str, schema: PortalSchema, problems: list[str]
) -> AssociationSpec:
    path = f"associations[{i}]"
    to = spec.to or _infer_target(object_type, spec.types)
    if to is None:
        problems.append(
            f"{path}: add `to:` (the object type the ids belong to, e.g. contacts)"
            " so the association types can be checked"
        )
        return spec
    available = schema.labels(to)
    types = []
    for j, t in enumerate(spec.types):
        tpath = f"{path}.types[{j}]"
        same_category = [a for a in available if a.category == t.category.value]
        if t.label is not None:
            hit = [a for a in same_category if (a.label or "").casefold() == t.label.casefold()]
            if not hit:
                names = ", ".join(repr(a.label) for a in same_category if a.label) or "none"
                problems.append(
                    f"{tpath}.label: no {t.category.value} association label "
                    f"{t.label!r} from {object_type} to {to}; labels: {names}"
                )
                continue
            types.append(
                AssociationTypeSpec(category=t.category, type_id=hit[0].type_id, label=t.label)
            )
        elif not any(a.type_id == t.type_id for a in same_category):
            known = (
                ", ".join(
                    f"{a.type_id}" + (f" ({a.label})" if a.label else "") for a in same_category
                )
                or "none"
            )
            problems.append(
                f"{tpath}.associationTypeId: {t.type_id} is not a {t.category.value}"
                f" association type from {object_type} to {to} in this portal; "
                f"known: {known}"
            )
        else:
            types.append(t)
    return dataclasses.replace(spec, to=to, types=tuple(types))


def _infer_target(object_type: str, types: Sequence[AssociationTypeSpec]) -> str | None:
    defaults = DEFAULT_ASSOCIATION_TYPES.get(object_type, {})
    for t in types:
        if t.category is AssociationCategory.HUBSPOT_DEFINED:
            for to, type_id in defaults.items():
                if type_id == t.type_id:
                    return to
    return None
