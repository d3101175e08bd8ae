"""The portal's owners as HubSpot's owners API gives them (the users records can be assigned
to), and the check HubSpot makes of an owner id written to a record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .checks import _query_int, _ReadQuery
from .replies import Reply, error

__all__ = [
    "DEFAULT_OWNERS",
    "OWNERS_PAGE_MAX",
    "Owner",
    "Team",
    "get_owner",
    "list_owners",
    "owner_problem",
]

OWNERS_PAGE_MAX = 500
"""The most owners one page of the owners API holds."""
_PAGE_DEFAULT = 100


@dataclass(frozen=True, kw_only=True)
class Team:
    """A team an owner is in (`primary`: the owner's main team)."""

    id: str
    name: str
    primary: bool = True


@dataclass(frozen=True, kw_only=True)
class Owner:
    """One owner: a user of the portal. An archived owner is a deactivated user: it still
    has its id, but no `userId` (HubSpot keeps it in `userIdIncludingInactive` alone)."""

    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    archived: bool = False
    teams: tuple[Team, ...] = ()
    created_at: str = "2024-01-15T09:00:00.000Z"
    updated_at: str = "2025-03-01T08:30:00.000Z"

    def as_json(self) -> dict[str, Any]:
        """The owner as HubSpot's owners API answers it (PublicOwner)."""
        body: dict[str, Any] = {
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": None if self.archived else self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }
        if self.teams:
            body["teams"] = [{"id": t.id, "name": t.name, "primary": t.primary} for t in self.teams]
        return body


_SALES = Team(id="4100001", name="Sales DACH")
_SUCCESS = Team(id="4100002", name="Customer Success")
DEFAULT_OWNERS = (
    # Two Annas: an owner named by first name alone is ambiguous.
    Owner(
        id="71000001",
        email="anna.schmidt@example.com",
        first_name="Anna",
        last_name="Schmidt",
        user_id=81000001,
        teams=(_SALES,),
    ),
    Owner(
        id="71000002",
        email="anna.weber@example.com",
        first_name="Anna",
        last_name="Weber",
        user_id=81000002,
        teams=(_SALES,),
    ),
    Owner(
        id="71000003",
        email="lukas.mueller@example.com",
        first_name="Lukas",
        last_name="Müller",
        user_id=81000003,
        teams=(_SUCCESS,),
    ),
    Owner(
        id="71000004",
        email="sophie.martin@example.com",
        first_name="Sophie",
        last_name="Martin",
        user_id=81000004,
        teams=(_SUCCESS, Team(id="4100001", name="Sales DACH", primary=False)),
    ),
    Owner(
        id="71000005",
        email="jonas.becker@example.com",
        first_name="Jonas",
        last_name="Becker",
        user_id=81000005,
        archived=True,
    ),
)
"""The demo portal's owners: four active users and one deactivated."""


def list_owners(
    owners: tuple[Owner, ...], query: dict[str, list[str]], link: str
) -> dict[str, Any]:
    """A page of the owners (`archived=true`: the archived ones alone), those with the `email`
    given (compared without regard to case) if one is; `link`: the URL the page was asked at."""
    archived = _ReadQuery(query).archived
    limit = _query_int(query, "limit", _PAGE_DEFAULT)
    if not 1 <= limit <= OWNERS_PAGE_MAX:
        # UNVERIFIED: HubSpot's wording for a limit past 500 was not found.
        raise Reply(
            400,
            error(
                f"limit must be between 1 and {OWNERS_PAGE_MAX}, not {limit}",
                "VALIDATION_ERROR",
                context={"limit": [str(limit)]},
            ),
        )
    after = _query_int(query, "after", 0)
    email = query.get("email", [""])[0].strip().lower()
    chosen = [
        o for o in owners if o.archived == archived and (not email or o.email.lower() == email)
    ]
    body: dict[str, Any] = {"results": [o.as_json() for o in chosen[after : after + limit]]}
    if after + limit < len(chosen):
        nxt = str(after + limit)
        kept = {k: v for k, v in query.items() if k not in ("after", "limit")}
        rest = urlencode({**kept, "after": nxt, "limit": limit}, doseq=True)
        body["paging"] = {"next": {"after": nxt, "link": f"{link}?{rest}"}}
    return body


def get_owner(
    owners: tuple[Owner, ...], owner_id: str, query: dict[str, list[str]]
) -> dict[str, Any]:
    """One owner by its id (or by its user id, `idProperty=userId`), among the active owners
    or, with `archived=true`, the archived ones; a 404 when there is none."""
    read = _ReadQuery(query)
    by = read.id_property or "id"
    if by not in ("id", "userId"):
        raise Reply(400, error(f"idProperty must be id or userId, not {by!r}", "VALIDATION_ERROR"))
    if not owner_id.isdigit():
        raise Reply(
            400,
            error(
                f"{owner_id!r} is not an owner id: owner ids are whole numbers",
                "VALIDATION_ERROR",
                context={"ownerId": [owner_id]},
            ),
        )
    for owner in owners:
        key = owner.id if by == "id" else str(owner.user_id)
        if key == owner_id and owner.archived == read.archived:
            return owner.as_json()
    # UNVERIFIED: HubSpot's wording for an owner it does not have was not found.
    raise Reply(404, error(f"No owner with {by} {owner_id} exists.", "OBJECT_NOT_FOUND"))


def owner_problem(owners: tuple[Owner, ...], name: str, value: str) -> dict[str, Any] | None:
    """HubSpot's problem with a value of owner property `name` that is not the id of an
    active owner (an archived owner's id included), or None (an empty value clears it)."""
    if value == "" or any(o.id == value and not o.archived for o in owners):
        return None
    # UNVERIFIED: the code is HubSpot's as remembered from its answers; the wording is ours.
    return {
        "message": f"{value} is not a valid owner id for {name}: it is no active owner's id",
        "code": "INVALID_OWNER_ID",
        "context": {"propertyName": [name]},
    }
