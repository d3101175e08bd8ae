"""Who made a record, as HubSpot records it on every create: the source (an app's API write, a
person in HubSpot's UI, an import), the app's or the user's id, and the label HubSpot shows.

HubSpot sets these itself and refuses writes to them ("These properties are set automatically
by HubSpot and the values cannot be manually edited": its knowledge base, "View and use record
source properties"). Their values here are those HubSpot's answers show: an app's API write
has `hs_object_source` INTEGRATION, `hs_object_source_id` the app's id and
`hs_object_source_label` INTEGRATION, and no user; a record made in HubSpot's UI has CRM_UI,
`userId:<user>` as its source id, and the user in `hs_object_source_user_id` and
`hs_created_by_user_id` (HubSpot's orders guide shows one such answer).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CRM_UI",
    "DEFAULT_APP_ID",
    "DEFAULT_USER_ID",
    "INTEGRATION",
    "SOURCE_PROPERTIES",
    "RecordSource",
]

INTEGRATION = "INTEGRATION"
"""The source of a record an app created through the API."""
CRM_UI = "CRM_UI"
"""The source of a record a person created in HubSpot's app."""
DEFAULT_APP_ID = 4_242_001
"""The app every token belongs to, but those `SandboxConfig.app_ids` names."""
DEFAULT_USER_ID = 7_100_001
"""The person who makes records by hand (and who made the private app)."""
SOURCE_PROPERTIES = (
    "hs_object_source",
    "hs_object_source_id",
    "hs_object_source_label",
    "hs_object_source_user_id",
    "hs_created_by_user_id",
)
"""The properties a create's source sets (read-only, as HubSpot's are)."""


@dataclass(frozen=True, kw_only=True)
class RecordSource:
    """What made a record: its kind (INTEGRATION, CRM_UI, IMPORT...), the id HubSpot keeps
    for it, and the user who made it (None for an app)."""

    kind: str
    source_id: str
    user_id: int | None = None

    @classmethod
    def app(cls, app_id: int) -> RecordSource:
        """An app's write through the API (the token's app)."""
        return cls(kind=INTEGRATION, source_id=str(app_id))

    @classmethod
    def by_hand(cls, user_id: int = DEFAULT_USER_ID) -> RecordSource:
        """A person's create in HubSpot's app."""
        return cls(kind=CRM_UI, source_id=f"userId:{user_id}", user_id=user_id)

    def properties(self) -> dict[str, str]:
        """The source properties a record made so gets."""
        props = {
            "hs_object_source": self.kind,
            "hs_object_source_id": self.source_id,
            "hs_object_source_label": self.kind,
        }
        if self.user_id is not None:
            props["hs_object_source_user_id"] = str(self.user_id)
            props["hs_created_by_user_id"] = str(self.user_id)
        return props
