"""Mapping files: the YAML read (two equal keys are a mistake, not a silent overwrite) and
checked, every mistake listed at once, into a `Mapping`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping as AnyMapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..core.errors import MappingError
from ..core.hubspot import (
    DEFAULT_ASSOCIATION_TYPES,
    OBJECT_TYPE_IDS,
    AssociationCategory,
    canonical_object_type,
)
from .model import (
    _OBJECT_TYPE_RE,
    DEFAULT_SEPARATOR,
    AssociationSpec,
    AssociationTypeSpec,
    ColumnSpec,
    LinkPolicy,
    Mapping,
    OnMissing,
    PropertyType,
    Reference,
    SyncMode,
    _inferred_target,
    _suggest,
)

__all__ = ["load_mapping", "parse_mapping"]

E = TypeVar("E", bound=StrEnum)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word: here, that is a mistake."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{key!r} is given twice (lines {seen[key]} and {line}); YAML would keep "
                    "only the second: remove or rename one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; every mistake is reported at once."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(str(path), ["no such file; check the --mapping path"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(str(path), [f"cannot be read: {exc}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(str(path), [f"not valid YAML{where}: {problem}"]) from None
    return parse_mapping(data, source=str(path))


_TOP_KEYS = ("object_type", "key", "mode", "columns", "constants", "associations", "clear_empty")
_COLUMN_KEYS = (
    "property",
    "type",
    "required",
    "format",
    "options",
    "timezone",
    "clear_empty",
    "to",
    "by",
    "on_missing",
)
_ASSOC_KEYS = ("column", "separator", "types", "required", "to", "sync", "by", "on_missing")
_TYPE_KEYS = ("associationCategory", "associationTypeId", "label")


def _unknown_keys(
    problems: list[str], path: str, data: AnyMapping[Any, Any], allowed: tuple[str, ...]
) -> None:
    for k in data:
        if k not in allowed:
            where = f"{path}.{k}" if path else str(k)
            problems.append(
                f"{where}: unknown key{_suggest(str(k), allowed)} (allowed: {', '.join(allowed)})"
            )


def _scalar_text(value: Any) -> str:
    """YAML scalars as HubSpot wants them: strings, `true`/`false` for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def choice(self, path: str, raw: Any, enum: type[E], noun: str) -> E | None:
        """`raw` as a member of `enum`, or a problem naming the nearest value."""
        try:
            return enum(str(raw))
        except ValueError:
            allowed = [str(m.value) for m in enum]
            self.fail(
                path,
                f"{raw!r} is not a {noun}{_suggest(str(raw), allowed)} "
                f"(allowed: {', '.join(allowed)})",
            )
            return None

    def object_type(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail("object_type", "required: an object name such as products or carts")
            return ""
        value = value.strip()
        singular = {name.rstrip("s"): name for name in OBJECT_TYPE_IDS}
        singular["line_item"] = "line_items"
        if value in singular and value not in OBJECT_TYPE_IDS:
            self.fail(
                "object_type", f"{value!r} is not an object type; did you mean {singular[value]!r}?"
            )
        elif not _OBJECT_TYPE_RE.match(value):
            self.fail(
                "object_type",
                f"{value!r} is not an object type name or id "
                "(for example products, carts, 0-7 or a custom object's name)",
            )
        return canonical_object_type(value)

    def flag(self, path: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
            return False
        return value

    def column(self, name: str, spec: Any, *, clear_empty: bool = False) -> ColumnSpec | None:
        path = f"columns.{name}"
        if isinstance(spec, str):
            spec = {"property": spec}
        if not isinstance(spec, dict):
            self.fail(path, "give a property name, or a mapping with at least `property:`")
            return None
        _unknown_keys(self.problems, path, spec, _COLUMN_KEYS)
        prop = spec.get("property")
        if not isinstance(prop, str) or not prop.strip():
            self.fail(f"{path}.property", "required: the HubSpot property's internal name")
            prop = ""
        raw_type = spec.get("type", PropertyType.STRING.value)
        ptype = self.choice(f"{path}.type", raw_type, PropertyType, "type") or PropertyType.STRING
        required = self.flag(f"{path}.required", spec.get("required", False))
        clears = self.flag(f"{path}.clear_empty", spec.get("clear_empty", clear_empty))
        fmt = spec.get("format")
        if fmt is not None:
            fmt = self.date_format(f"{path}.format", fmt, ptype if "type" in spec else None)
        options: tuple[str, ...] = ()
        if "options" in spec:
            raw = spec["options"]
            if ptype is not PropertyType.ENUMERATION:
                self.fail(f"{path}.options", "only an enumeration column takes options")
            elif not isinstance(raw, list) or not raw:
                self.fail(f"{path}.options", "give a non-empty list of allowed values")
            else:
                options = tuple(_scalar_text(o) for o in raw)
        tz = spec.get("timezone", "UTC")
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"{path}.timezone", f"{tz!r} is not a time zone (e.g. UTC, Europe/Paris)")
            tz = "UTC"
        reference = self.reference(path, spec, to=spec.get("to"), column=True)
        if reference is not None and "type" in spec and ptype is not PropertyType.STRING:
            self.fail(f"{path}.type", "a column with `to:` and `by:` holds keys: leave out type")
        return ColumnSpec(
            type_given="type" in spec or reference is not None,
            column=name,
            property=prop.strip(),
            type=PropertyType.STRING if reference is not None else ptype,
            required=required,
            format=fmt,
            options=options,
            timezone=str(tz),
            clear_empty=clears,
            reference=reference,
        )

    def reference(
        self, path: str, spec: dict[str, Any], *, to: Any, column: bool
    ) -> Reference | None:
        """`to:` + `by:` (+ `on_missing:`) as a Reference; None when `by:` is not given."""
        by = spec.get("by")
        if by is None:
            if "on_missing" in spec:
                self.fail(f"{path}.on_missing", "only a reference (with `by:`) takes on_missing")
            if column and "to" in spec:
                self.fail(f"{path}.by", "required with `to:`: the property of the other record "
                          "that the cell holds (e.g. by: hs_sku)")  # fmt: skip
            return None
        if not isinstance(by, str) or not by.strip():
            self.fail(f"{path}.by", "give the property of the other record the cell holds")
            return None
        if not isinstance(to, str) or not to.strip():
            self.fail(f"{path}.to", "required with `by:`: the object type the cell names")
            return None
        on_missing = self.choice(
            f"{path}.on_missing", spec.get("on_missing", "invalid"), OnMissing, "choice"
        )
        return Reference(
            to=canonical_object_type(to.strip()),
            by=by.strip(),
            on_missing=on_missing or OnMissing.INVALID,
        )

    def date_format(self, path: str, fmt: Any, ptype: PropertyType | None) -> str | None:
        """A strftime format; `ptype` None: the type comes from the portal, checked there."""
        if ptype is not None and ptype not in (PropertyType.DATE, PropertyType.DATETIME):
            self.fail(path, "only a date or datetime column takes a format")
            return None
        if not isinstance(fmt, str) or "%" not in fmt:
            self.fail(path, f'{fmt!r} is not a strftime format such as "%d/%m/%Y"')
            return None
        sample = dt.datetime(2026, 11, 23, 13, 45, 30)
        try:
            parsed = dt.datetime.strptime(sample.strftime(fmt), fmt)
        except ValueError as exc:
            self.fail(path, f"{fmt!r} is not a usable format ({exc})")
            return None
        if parsed.date() != sample.date():
            self.fail(path, f"{fmt!r} does not name a whole date (day, month and year)")
            return None
        return fmt

    def association(self, i: int, spec: Any, object_type: str) -> AssociationSpec | None:
        path = f"associations[{i}]"
        if not isinstance(spec, dict):
            self.fail(path, "give a mapping with `column:` and `types:`")
            return None
        _unknown_keys(self.problems, path, spec, _ASSOC_KEYS)
        column = spec.get("column")
        if not isinstance(column, str | int) or not str(column).strip():
            self.fail(f"{path}.column", "required: the spreadsheet column holding target ids")
            column = ""
        separator = spec.get("separator", DEFAULT_SEPARATOR)
        if not isinstance(separator, str) or not separator or separator.isalnum():
            self.fail(f"{path}.separator", f'{separator!r} cannot separate ids; use ";" or ","')
            separator = DEFAULT_SEPARATOR
        required = spec.get("required", False)
        if not isinstance(required, bool):
            self.fail(f"{path}.required", "must be true or false")
            required = False
        to = spec.get("to")
        if to is not None:
            to = canonical_object_type(str(to))
        before = len(self.problems)
        types = self.association_types(path, spec.get("types"), object_type, to)
        if to is None:
            to = _inferred_target(object_type, types)
        if to is None and types and len(self.problems) == before:
            self.fail(
                f"{path}.to",
                "required: the object type the ids point at (e.g. `to: contacts`); HubSpot's "
                "associations API needs it, and no HUBSPOT_DEFINED type in `types` names it",
            )
        sync = self.choice(f"{path}.sync", spec.get("sync", "sync"), LinkPolicy, "policy")
        reference = self.reference(path, spec, to=to, column=False)
        return AssociationSpec(
            column=str(column).strip(),
            types=types,
            separator=separator,
            required=required,
            to=to,
            sync=sync or LinkPolicy.SYNC,
            reference=reference,
        )

    def association_types(
        self, path: str, raw: Any, object_type: str, to: str | None
    ) -> tuple[AssociationTypeSpec, ...]:
        if not isinstance(raw, list) or not raw:
            # HubSpot accepts an empty list and links nothing: that is never what was meant.
            self.fail(
                f"{path}.types",
                "required: a non-empty list of {associationCategory, "
                "associationTypeId}; an empty list would link nothing",
            )
            return ()
        out = []
        for j, item in enumerate(raw):
            tpath = f"{path}.types[{j}]"
            if not isinstance(item, dict):
                self.fail(tpath, "give {associationCategory: ..., associationTypeId: ...}")
                continue
            _unknown_keys(self.problems, tpath, item, _TYPE_KEYS)
            label = item.get("label")
            if label is not None and "associationTypeId" not in item:
                # The portal's labels give the id (and the category, when not given).
                raw_cat = item.get("associationCategory", AssociationCategory.USER_DEFINED.value)
                category = self.choice(
                    f"{tpath}.associationCategory", raw_cat, AssociationCategory, "category"
                )
                if category is not None:
                    out.append(AssociationTypeSpec(category=category, type_id=0, label=str(label)))
                continue
            raw_cat = item.get("associationCategory")
            category = self.choice(
                f"{tpath}.associationCategory", raw_cat, AssociationCategory, "category"
            )
            if category is None:
                continue
            type_id = item.get("associationTypeId")
            if isinstance(type_id, bool) or not isinstance(type_id, int) or type_id <= 0:
                self.fail(
                    f"{tpath}.associationTypeId",
                    f"{type_id!r} is not a positive whole "
                    "number (find ids in HubSpot's association labels)",
                )
                continue
            self.check_default_type(
                f"{tpath}.associationTypeId", category, type_id, object_type, to
            )
            out.append(AssociationTypeSpec(category=category, type_id=type_id))
        return tuple(out)

    def check_default_type(
        self,
        path: str,
        category: AssociationCategory,
        type_id: int,
        object_type: str,
        to: str | None,
    ) -> None:
        defaults = DEFAULT_ASSOCIATION_TYPES.get(object_type)
        if category is not AssociationCategory.HUBSPOT_DEFINED or defaults is None:
            return
        if to is not None and to in defaults and defaults[to] != type_id:
            self.fail(
                path,
                f"{type_id} is not the HUBSPOT_DEFINED type from {object_type} to "
                f"{to}; that is {defaults[to]}",
            )
        elif type_id not in defaults.values():
            known = ", ".join(f"{v} (to {k})" for k, v in defaults.items()) or "none"
            self.fail(
                path,
                f"{type_id} is not a HUBSPOT_DEFINED association type from "
                f"{object_type}; known: {known}",
            )

    def column_specs(self, data: dict[Any, Any]) -> list[ColumnSpec]:
        """The `columns:` section, each column checked."""
        columns: list[ColumnSpec] = []
        raw_columns = data.get("columns")
        if not isinstance(raw_columns, dict) or not raw_columns:
            self.fail("columns", "required: a mapping of spreadsheet column -> HubSpot property")
            raw_columns = {}
        clear_empty = self.flag("clear_empty", data.get("clear_empty", False))
        for name, spec in raw_columns.items():
            col = self.column(str(name).strip(), spec, clear_empty=clear_empty)
            if col is not None:
                columns.append(col)
        return columns

    def constants(self, data: dict[Any, Any]) -> list[tuple[str, str]]:
        """The `constants:` section: (property, value as text) pairs."""
        constants: list[tuple[str, str]] = []
        raw_constants = data.get("constants") or {}
        if not isinstance(raw_constants, dict):
            self.fail("constants", "give a mapping of property -> value")
            raw_constants = {}
        for prop, value in raw_constants.items():
            if value is None or isinstance(value, dict | list):
                self.fail(
                    f"constants.{prop}", "give a single value (quote it to keep leading zeros)"
                )
                continue
            constants.append((str(prop), _scalar_text(value)))
        return constants

    def association_specs(self, data: dict[Any, Any], object_type: str) -> list[AssociationSpec]:
        """The `associations:` section, each association checked."""
        associations: list[AssociationSpec] = []
        raw_assoc = data.get("associations") or []
        if not isinstance(raw_assoc, list):
            self.fail("associations", "give a list of {column, types}")
            raw_assoc = []
        for i, spec in enumerate(raw_assoc):
            assoc = self.association(i, spec, object_type)
            if assoc is not None:
                associations.append(assoc)
        return associations

    def check_mapped_once(
        self,
        columns: list[ColumnSpec],
        constants: list[tuple[str, str]],
        associations: list[AssociationSpec],
    ) -> None:
        """Each property is mapped once (by a column or a constant), and each spreadsheet
        column once (as a column or an association)."""
        owners: dict[str, str] = {}
        for col in columns:
            if col.property and col.property in owners:
                self.fail(
                    f"columns.{col.column}.property",
                    f"{col.property!r} is already mapped from "
                    f"{owners[col.property]}; map each property once",
                )
            owners.setdefault(col.property, f"column {col.column!r}")
        for prop, _ in constants:
            if prop in owners:
                self.fail(f"constants.{prop}", f"{prop!r} is also mapped from {owners[prop]}")
        mapped = {c.column for c in columns}
        for i, assoc in enumerate(associations):
            if assoc.column in mapped:
                self.fail(
                    f"associations[{i}].column", f"{assoc.column!r} is also mapped under columns"
                )

    def key(self, value: Any, mapped: set[str]) -> str | None:
        """The `key:` column, which must be one of the mapped columns; None if not given."""
        if value is None:
            return None
        key = str(value).strip()
        if key not in mapped:
            self.fail(
                "key",
                f"{key!r} must also be listed under columns, so its property can "
                f"identify the row in HubSpot{_suggest(key, mapped)}",
            )
            return None
        return key

    def mode(self, value: Any, key: str | None) -> SyncMode | None:
        """The `mode:`; upsert needs a key."""
        mode = self.choice("mode", value, SyncMode, "mode")
        if mode is SyncMode.UPSERT and key is None:
            self.fail(
                "mode",
                "upsert needs a key: a column whose property has unique values in "
                "HubSpot (e.g. SKU -> hs_sku)",
            )
        return mode


def parse_mapping(data: Any, *, source: str = "<mapping>") -> Mapping:
    """Build a `Mapping` from parsed YAML, collecting every problem before failing."""
    p = _Parser(source)
    if not isinstance(data, dict):
        raise MappingError(source, ["the file must be a YAML mapping with object_type and columns"])
    _unknown_keys(p.problems, "", data, _TOP_KEYS)
    object_type = p.object_type(data.get("object_type"))
    columns = p.column_specs(data)
    constants = p.constants(data)
    associations = p.association_specs(data, object_type)
    p.check_mapped_once(columns, constants, associations)
    key = p.key(data.get("key"), {c.column for c in columns})
    mode = p.mode(data.get("mode", SyncMode.CREATE.value), key)
    if p.problems:
        raise MappingError(source, p.problems)
    return Mapping(
        mode=mode or SyncMode.CREATE,
        object_type=object_type,
        columns=tuple(columns),
        key=key,
        constants=tuple(constants),
        associations=tuple(associations),
        source=source,
    )
