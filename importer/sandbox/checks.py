"""How the sandbox checks what it is sent: property values, dates, GET parameters."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ..core.hubspot import MAX_TEXT_LENGTH, stored_value
from .portal import PropertyDef
from .replies import Reply, error

_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DAY_MS = 86_400_000


def _singular(object_type: str) -> str:
    return object_type[:-1] if object_type.endswith("s") else object_type


def _query_int(query: dict[str, list[str]], name: str, default: int) -> int:
    value = query.get(name, [str(default)])[0]
    if not value.isdigit():
        raise Reply(400, error(f"{name} must be a whole number, not {value!r}", "VALIDATION_ERROR"))
    return int(value)


class _ReadQuery:
    """A GET's `properties`, `archived`, `associations` and `idProperty` parameters (each
    repeated or comma-separated, as HubSpot takes them)."""

    def __init__(self, query: dict[str, list[str]]) -> None:
        def listed(name: str) -> list[str]:
            return [p for v in query.get(name, []) for p in v.split(",") if p]

        self.properties: list[str] | None = listed("properties") if "properties" in query else None
        self.associations = listed("associations")
        archived = query.get("archived", ["false"])[0].lower()
        if archived not in ("true", "false"):
            raise Reply(
                400, error(f"archived must be true or false, not {archived!r}", "VALIDATION_ERROR")
            )
        self.archived = archived == "true"
        self.id_property = query.get("idProperty", [None])[0]


def _check_value(prop: PropertyDef | None, name: str, value: str) -> tuple[str | None, str]:
    if prop is None:
        return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
    if prop.read_only or prop.calculated:
        return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
    if value == "":
        return None, ""  # an empty string clears the value
    if prop.type == "number" and not _NUMBER.fullmatch(value):
        return "INVALID_INTEGER", f'"{value}" was not a valid number.'
    if prop.type == "bool" and value not in ("true", "false"):
        return "INVALID_BOOLEAN", f'"{value}" was not a valid boolean (true or false).'
    if prop.type == "date" and not _valid_date(value):
        return "INVALID_DATE", (
            f'"{value}" was not a valid date: use YYYY-MM-DD or epoch milliseconds at midnight UTC.'
        )
    if prop.type == "datetime" and not _valid_datetime(value):
        return "INVALID_DATETIME", f'"{value}" was not a valid ISO 8601 datetime.'
    chosen = value.split(";") if prop.field_type == "checkbox" else [value]  # multi-select
    listed = prop.type == "enumeration" and not prop.external_options  # an owner's: not listed
    if listed and any(v not in prop.options for v in chosen):
        allowed = ", ".join(prop.options)
        return "INVALID_OPTION", f'"{value}" was not one of the allowed options: [{allowed}]'
    if len(value) > MAX_TEXT_LENGTH:
        return "INVALID_STRING", f"Value for {name} is longer than {MAX_TEXT_LENGTH} characters."
    return None, ""


def _valid_date(value: str) -> bool:
    """YYYY-MM-DD that is a day of the calendar, or epoch milliseconds at midnight UTC."""
    if value.isdigit():
        return int(value) % _DAY_MS == 0
    if not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _valid_datetime(value: str) -> bool:
    """ISO 8601 (a real moment of the calendar) or epoch milliseconds."""
    if value.isdigit():
        return True
    if len(value) < 10 or not _DATE.fullmatch(value[:10]):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _normalised(object_type: str, name: str, value: Any) -> Any:
    """A value as HubSpot stores it: emails trimmed and lowercased."""
    return stored_value(object_type, name, value) if isinstance(value, str) else value
