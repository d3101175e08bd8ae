"""Mapping files: the YAML read (two equal keys are a mistake, not a silent overwrite) and
checked, every mistake listed at once, into a `Mapping`."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..core.errors import MappingError
from ..core.hubspot import (
    OBJECT_TYPE_IDS,
    canonical_object_type,
)
from .association_keys import AssociationKeys, unknown_keys
from .guard_keys import parse_guards
from .missing_keys import parse_missing_rows
from .model import (
    _OBJECT_TYPE_RE,
    AssociationSpec,
    ColumnSpec,
    Mapping,
    NumberFormat,
    PropertyType,
    SyncMode,
    WriteRule,
    _suggest,
)
from .row_skips import parse_skip_where
from .value_keys import default_property, parse_currency, parse_number_format, parse_values
from .webhooks import parse_notify
from .yaml_load import _UniqueKeyLoader as _UniqueKeyLoader  # plans read their YAML so too
from .yaml_load import quoted

__all__ = ["load_mapping", "parse_mapping"]

E = TypeVar("E", bound=StrEnum)


MAX_MAPPING_BYTES = 10_000_000
"""A mapping file larger than this is some other file given by mistake (or a hostile one)."""


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; every mistake is reported at once."""
    path = Path(path)
    try:
        with path.open("rb") as file:  # read, not stat: a device or a pipe has no size
            raw = file.read(MAX_MAPPING_BYTES + 1)
        if len(raw) > MAX_MAPPING_BYTES:
            raise MappingError(
                str(path),
                [
                    f"the file is over {MAX_MAPPING_BYTES:,} bytes; a mapping is a few "
                    "kilobytes: check that --mapping names it"
                ],
            )
        text = raw.decode("utf-8")
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


_TOP_KEYS = (
    "object_type",
    "key",
    "notify",
    "mode",
    "columns",
    "constants",
    "associations",
    "clear_empty",
    "number",
    "header_row",
    "fill_down",
    "group_by",
    "skip_rows_without",
    "skip_rows_where",
    "guards",
    "missing_rows",
)
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
    "number",
    "currency",
    "values",
    "values_file",
    "pipeline",
    "write",
)


def _scalar_text(value: Any) -> str:
    """YAML scalars as HubSpot wants them: strings, `true`/`false` for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Parser(AssociationKeys):
    """Reads a mapping's keys; problems are collected, never raised one by one."""

    def object_type(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail("object_type", "required: an object name such as products or carts")
            return ""
        value = value.strip()
        singular = {name.rstrip("s"): name for name in OBJECT_TYPE_IDS}
        singular["line_item"] = "line_items"
        if value in singular and value not in OBJECT_TYPE_IDS:
            self.fail(
                "object_type",
                f"{quoted(value)} is not an object type; did you mean {quoted(singular[value])}?",
            )
        elif not _OBJECT_TYPE_RE.match(value):
            self.fail(
                "object_type",
                f"{quoted(value)} is not an object type name or id "
                "(for example products, carts, 0-7 or a custom object's name)",
            )
        return canonical_object_type(value)

    def column(self, name: str, spec: Any, *, clear_empty: bool = False) -> ColumnSpec | None:
        path = f"columns.{name}"
        if isinstance(spec, str):
            spec = {"property": spec}
        if not isinstance(spec, dict):
            self.fail(path, "give a property name, or a mapping with at least `property:`")
            return None
        unknown_keys(self.problems, path, spec, _COLUMN_KEYS)
        raw_type = spec.get("type", PropertyType.STRING.value)
        ptype = self.choice(f"{path}.type", raw_type, PropertyType, "type") or PropertyType.STRING
        currency = (
            parse_currency(self.fail, f"{path}.currency", spec["currency"])
            if ("currency" in spec)
            else None
        )
        pipeline = self.pipeline(f"{path}.pipeline", spec.get("pipeline"))
        prop = self.column_property(path, spec.get("property"), ptype, currency, pipeline)
        if not prop and spec.get("property") is None and ("currency" in spec or "pipeline" in spec):
            # The key's own problem is said: no second one for the property it implied.
            self.problems = [p for p in self.problems if not p.startswith(f"{path}.property:")]
        required = self.flag(f"{path}.required", spec.get("required", False))
        clears = self.flag(f"{path}.clear_empty", spec.get("clear_empty", clear_empty))
        fmt = spec.get("format")
        if fmt is not None:
            fmt = self.date_format(f"{path}.format", fmt, ptype if "type" in spec else None)
        options = self.options(path, spec, ptype)
        tz = self.timezone(f"{path}.timezone", spec.get("timezone", "UTC"))
        reference = self.reference(path, spec, to=spec.get("to"), column=True)
        if reference is not None and "type" in spec and ptype is not PropertyType.STRING:
            self.fail(f"{path}.type", "a column with `to:` and `by:` holds keys: leave out type")
        number = self.number_format(path, spec, ptype)
        values = parse_values(
            self.fail, path, spec.get("values"), spec.get("values_file"), self.base
        )
        if values is not None and (ptype is PropertyType.OWNER or pipeline is not None):
            self.fail(f"{path}.values", "owners and stages take the portal's own words")
        write = self.choice(f"{path}.write", spec.get("write", "always"), WriteRule, "rule")
        return ColumnSpec(
            type_given="type" in spec or reference is not None,
            column=name,
            property=prop,
            type=PropertyType.STRING if reference is not None else ptype,
            required=required,
            format=fmt,
            options=options,
            timezone=str(tz),
            clear_empty=clears,
            reference=reference,
            number=number,
            currency=currency,
            values=values,
            pipeline=pipeline,
            write=write or WriteRule.ALWAYS,
        )

    def timezone(self, path: str, tz: Any) -> str:
        """A column's `timezone:` (UTC when it names none)."""
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(path, f"{quoted(tz)} is not a time zone (e.g. UTC, Europe/Paris)")
            return "UTC"
        return str(tz)

    def options(self, path: str, spec: dict[str, Any], kind: PropertyType) -> tuple[str, ...]:
        """An enumeration column's `options:` (the portal gives them when left out)."""
        if "options" not in spec:
            return ()
        raw = spec["options"]
        if kind is not PropertyType.ENUMERATION:
            self.fail(f"{path}.options", "only an enumeration column takes options")
        elif not isinstance(raw, list) or not raw:
            self.fail(f"{path}.options", "give a non-empty list of allowed values")
        else:
            return tuple(_scalar_text(o) for o in raw)
        return ()

    def number_format(
        self, path: str, spec: dict[str, Any], kind: PropertyType
    ) -> NumberFormat | None:
        """A column's `number:`, on a number column only."""
        if "number" not in spec:
            return None
        if "type" in spec and kind is not PropertyType.NUMBER:
            self.fail(f"{path}.number", "only a number column takes a number format")
        return parse_number_format(self.fail, f"{path}.number", spec["number"])

    def column_property(
        self,
        path: str,
        prop: Any,
        kind: PropertyType,
        currency: str | None,
        pipeline: str | None,
    ) -> str:
        """The column's property: as given, or the one its keys imply (an owner column's
        hubspot_owner_id, a price's hs_price_<currency>, a pipeline's stage property)."""
        implied = default_property(self.object_type_name, kind, currency, pipeline)
        if prop is None and implied is not None:
            return implied
        if not isinstance(prop, str) or not prop.strip():
            self.fail(f"{path}.property", "required: the HubSpot property's internal name")
            return ""
        prop = str(prop).strip()
        if currency is not None and prop != implied:
            if prop != "price":
                self.fail(
                    f"{path}.currency",
                    f"a currency goes with a product price: leave out property (or write "
                    f"price) and {implied} is written",
                )
            return implied or prop
        return str(prop)

    def row_keys(self, data: dict[Any, Any]) -> dict[str, Any]:
        """`header_row:`, `fill_down:`, `group_by:`, `skip_rows_without:` and
        `skip_rows_where:`: how the sheet's rows are found and shaped before they are read as
        records."""
        header = data.get("header_row")
        if header is not None and (
            isinstance(header, bool) or not isinstance(header, int) or header < 1
        ):
            self.fail("header_row", f"{quoted(header)} is not a row number (1 is the first row)")
            header = None
        group = data.get("group_by")
        if group is not None and (not isinstance(group, str | int) or not str(group).strip()):
            self.fail("group_by", "give the column whose equal values make a group")
            group = None
        fill = self.column_list("fill_down", data.get("fill_down"))
        if group is not None and not fill:
            self.fail("group_by", "goes with fill_down: the columns to carry down the group")
        return {
            "header_row": header,
            "fill_down": fill,
            "group_by": str(group).strip() if group is not None else None,
            "skip_rows_without": self.column_list(
                "skip_rows_without", data.get("skip_rows_without")
            ),
            "skip_rows_where": parse_skip_where(self.fail, data.get("skip_rows_where")),
        }

    def column_list(self, path: str, raw: Any) -> tuple[str, ...]:
        """A list of the sheet's columns (one column alone is taken as a list of one)."""
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(c, str | int) and str(c).strip() for c in items):
            self.fail(path, "give a list of the sheet's columns, e.g. [Title, Vendor]")
            return ()
        return tuple(dict.fromkeys(str(c).strip() for c in items))

    def pipeline(self, path: str, raw: Any) -> str | None:
        """`pipeline:`, a pipeline's label or id (checked against the portal's later)."""
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).strip():
            self.fail(path, "give the pipeline's label or id, e.g. Sales Pipeline")
            return None
        return str(raw).strip()

    def date_format(self, path: str, fmt: Any, ptype: PropertyType | None) -> str | None:
        """A strftime format; `ptype` None: the type comes from the portal, checked there."""
        if ptype is not None and ptype not in (PropertyType.DATE, PropertyType.DATETIME):
            self.fail(path, "only a date or datetime column takes a format")
            return None
        if not isinstance(fmt, str) or "%" not in fmt:
            self.fail(path, f'{quoted(fmt)} is not a strftime format such as "%d/%m/%Y"')
            return None
        sample = dt.datetime(2026, 11, 23, 13, 45, 30)
        try:
            parsed = dt.datetime.strptime(sample.strftime(fmt), fmt)
        except ValueError as exc:
            self.fail(path, f"{quoted(fmt)} is not a usable format ({exc})")
            return None
        if parsed.date() != sample.date():
            self.fail(path, f"{quoted(fmt)} does not name a whole date (day, month and year)")
            return None
        return fmt

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
                    f"{quoted(col.property)} is already mapped from "
                    f"{owners[col.property]}; map each property once",
                )
            owners.setdefault(col.property, f"column {quoted(col.column)}")
        for prop, _ in constants:
            if prop in owners:
                self.fail(f"constants.{prop}", f"{quoted(prop)} is also mapped from {owners[prop]}")
        mapped = {c.column for c in columns}
        for i, assoc in enumerate(associations):
            if assoc.column in mapped:
                self.fail(
                    f"associations[{i}].column",
                    f"{quoted(assoc.column)} is also mapped under columns",
                )

    def key(self, value: Any, mapped: set[str]) -> str | None:
        """The `key:` column, which must be one of the mapped columns; None if not given."""
        if value is None:
            return None
        key = str(value).strip()
        if key not in mapped:
            self.fail(
                "key",
                f"{quoted(key)} must also be listed under columns, so its property can "
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


PROBLEM_LIMIT = 600
"""Characters of one problem said: a problem that quotes a huge value (or names a huge
column) keeps its start and its end, where the advice is."""


def _cut(problem: str) -> str:
    """`problem`, its middle left out ("…") when longer than PROBLEM_LIMIT characters."""
    if len(problem) <= PROBLEM_LIMIT:
        return problem
    return problem[: PROBLEM_LIMIT - 200] + "…" + problem[-199:]


def parse_mapping(data: Any, *, source: str = "<mapping>") -> Mapping:
    """Build a `Mapping` from parsed YAML, collecting every problem before failing."""
    p = _Parser(source, base=Path(source).parent if not source.startswith("<") else None)
    if not isinstance(data, dict):
        raise MappingError(source, ["the file must be a YAML mapping with object_type and columns"])
    unknown_keys(p.problems, "", data, _TOP_KEYS)
    object_type = p.object_type(data.get("object_type"))
    p.object_type_name = object_type
    number = parse_number_format(p.fail, "number", data["number"]) if "number" in data else None
    columns = p.column_specs(data)
    constants = p.constants(data)
    associations = p.association_specs(data, object_type)
    p.check_mapped_once(columns, constants, associations)
    key = p.key(data.get("key"), {c.column for c in columns})
    if key is not None and (rule := next(c.write for c in columns if c.column == key)) != "always":
        p.fail(f"columns.{key}.write", f"the key finds the record, so it is always written: "
               f"remove write: {rule}")  # fmt: skip
    mode = p.mode(data.get("mode", SyncMode.CREATE.value), key)
    notify = parse_notify(p.fail, data.get("notify"))
    rows = p.row_keys(data)
    guards = parse_guards(p, data.get("guards"))
    key_property = next((c.property for c in columns if c.column == key), None)
    missing = parse_missing_rows(p.fail, data.get("missing_rows"), key_property)
    if p.problems:
        raise MappingError(source, [_cut(problem) for problem in p.problems])
    return Mapping(
        **rows,
        mode=mode or SyncMode.CREATE,
        object_type=object_type,
        columns=tuple(columns),
        key=key,
        constants=tuple(constants),
        associations=tuple(associations),
        source=source,
        notify=notify,
        number=number,
        guards=guards,
        missing_rows=missing,
    )
