"""Custom object schemas as HubSpot's schemas API gives them (`GET
/crm-object-schemas/v3/schemas` and `.../schemas/{objectType}`, by type id, fully qualified
name or name): what tells the names of one custom object apart from another's."""

from __future__ import annotations

from typing import Any

from .portal import Portal
from .replies import Reply, error

__all__ = ["custom_schema", "custom_schemas"]

_SET_UP = "2024-01-15T09:00:00Z"
"""When the demo portal's custom object was defined."""


def custom_schemas(portal: Portal) -> dict[str, Any]:
    """Every custom object the portal defines."""
    names = sorted(set(portal.custom_object_ids.values()))
    return {"results": [_schema(portal, name) for name in names]}


def custom_schema(portal: Portal, object_type: str) -> dict[str, Any]:
    """One custom object's schema; 404 for a type the portal does not define as a custom
    object (HubSpot's own types have no schema here)."""
    name = portal.custom_object_ids.get(object_type, object_type)
    if name not in portal.custom_object_ids.values():
        raise Reply(
            404,
            error(f"Unable to find object type {object_type}", "OBJECT_NOT_FOUND"),
        )
    return _schema(portal, name)


def _schema(portal: Portal, name: str) -> dict[str, Any]:
    """The schema of the custom object whose fully qualified name is `name`."""
    type_id = portal.custom_type_id(name)
    short = name.split("_", 1)[1] if "_" in name else name
    defs = portal.property_defs(name)
    return {
        "id": type_id.split("-", 1)[1],
        "objectTypeId": type_id,
        "fullyQualifiedName": name,
        "name": short,
        "labels": {"singular": short.title(), "plural": short.title()},
        "properties": [d.as_json(name, i) for i, d in enumerate(defs.values())],
        "requiredProperties": [],
        "searchableProperties": [],
        "associations": [],
        "archived": False,
        "createdAt": _SET_UP,
        "updatedAt": _SET_UP,
    }
