"""Which object type a mapping names: HubSpot's own types by their fixed names and ids
(`products` is `0-7`), a custom object by what its schema says (`GET
/crm-object-schemas/2026-09/schemas/{objectType}`: `p4242424_pets`, `pets` and `2-4242424` are
one type), so that one object type has one journal and one lock however it is named."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..core.errors import AuthError, ConfigError, HubSpotUnavailable, UncertainDelivery
from ..core.hubspot import OBJECT_TYPE_IDS, canonical_object_type
from .client import HubSpotClient, Verdict, error_message, route_missing

__all__ = ["ObjectTypeIdentity", "resolve_object_type"]

log = logging.getLogger(__name__)

_TYPE_ID_PREFIX = "2-"
"""Custom objects' type ids start so (HubSpot's own types' with `0-`)."""


@dataclass(frozen=True)
class ObjectTypeIdentity:
    """One object type: what its journal is named by, and its other names."""

    journal_name: str
    """`products` for HubSpot's own types (as journals were always named), the type id
    (`2-4242424`) for a custom object."""
    names: tuple[str, ...] = ()
    """Its other names (a custom object's fully qualified name and short name), under which
    an earlier version may have kept its journal."""


def resolve_object_type(client: HubSpotClient, object_type: str) -> ObjectTypeIdentity:
    """The object type `object_type` names: HubSpot's own types without a request, a custom
    object by its schema (one read). ConfigError when HubSpot has no such type, or when a
    custom object named by its name cannot be told by its id (the token may not read
    schemas): its journal would not be found under another of its names."""
    canonical = canonical_object_type(object_type)
    if canonical in OBJECT_TYPE_IDS:
        return ObjectTypeIdentity(canonical)
    path = client.paths.schema(object_type)
    try:
        reply = client.request("GET", path)
    except AuthError as exc:
        if exc.status != 403:
            raise
        return _unreadable(object_type, str(exc))
    except (UncertainDelivery, HubSpotUnavailable) as exc:
        raise ConfigError(
            f"could not read the schema of {object_type} from {client.base_url}: {exc} Check "
            "--base-url (or HUBSPOT_BASE_URL) and the network."
        ) from None
    if reply.verdict is not Verdict.SUCCESS:
        message = error_message(reply.body, reply.status)
        if route_missing(reply):
            return _unreadable(object_type, f"{client.version_hint()} (HTTP 404 for {path})")
        raise ConfigError(
            f"HubSpot has no object type {object_type!r} ({message}); check "
            "object_type in the mapping"
        )
    return _identity(object_type, reply.body)


def _identity(object_type: str, schema: dict[str, object]) -> ObjectTypeIdentity:
    """The identity a custom object's schema gives it; ConfigError when it names no type id."""
    type_id = str(schema.get("objectTypeId") or "")
    if not type_id.startswith(_TYPE_ID_PREFIX):
        raise ConfigError(
            f"HubSpot's schema of {object_type!r} names no custom object type id "
            f"(objectTypeId {type_id or 'missing'}); check object_type in the mapping"
        )
    others = (object_type, schema.get("fullyQualifiedName"), schema.get("name"))
    names = tuple(dict.fromkeys(str(n) for n in others if n and str(n) != type_id))
    return ObjectTypeIdentity(type_id, names)


def _unreadable(object_type: str, why: str) -> ObjectTypeIdentity:
    """A custom object whose schema cannot be read: its journal is kept under the name the
    mapping gives (named by its id, that is still the one journal; named otherwise, a mapping
    naming it by its id keeps another), and the log says so. Refusing would stop every import
    of a custom object by a token without the schema scope."""
    if object_type.startswith(_TYPE_ID_PREFIX):
        log.warning(
            "could not read the schema of %s (%s): a journal an earlier version kept under "
            "its name was not looked for",
            object_type,
            why,
        )
    else:
        log.warning(
            "could not read the schema of custom object %r (%s): its journal and lock are "
            "kept under that name, so a mapping that names it by its type id (2-...) keeps "
            "others. Give the token the crm.schemas.custom.read scope, or write the type id "
            "as object_type in every mapping of it.",
            object_type,
            why,
        )
    return ObjectTypeIdentity(object_type)
