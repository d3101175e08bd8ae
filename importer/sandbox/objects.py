"""What the sandbox's object endpoints share: the account state they work on, and how a batch
addresses its records (by id, or by a unique property)."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

from ..core.hubspot import MAX_BATCH_INPUTS, OBJECT_TYPE_IDS
from .checks import _normalised
from .config import SandboxConfig
from .portal import Portal
from .replies import Reply, error
from .search import SearchIndex
from .sources import RecordSource
from .store import Store

__all__ = ["ObjectEndpoints", "batch_inputs"]


class ObjectEndpoints:
    """The object endpoints of `Sandbox`, which holds the account's state."""

    if TYPE_CHECKING:
        config: SandboxConfig
        write_lock: threading.Lock
        _lock: threading.Lock
        _rng: random.Random

        @property
        def store(self) -> Store: ...

        @property
        def portal(self) -> Portal: ...

        @property
        def search_index(self) -> SearchIndex: ...

        @property
        def url(self) -> str: ...

        @property
        def request_version(self) -> str | None: ...

        @property
        def writer(self) -> RecordSource: ...

    def _unique_props(self, object_type: str) -> list[str]:
        defs = self.portal.property_defs(object_type) or {}
        return [name for name, d in defs.items() if d.unique and name != "hs_object_id"]

    def non_unique(self, object_type: str, prop: str | None, verb: str) -> Reply:
        """HubSpot's 400 for a batch addressed by a property it does not hold unique: `verb`
        is `update/upsert` (HubSpot's words for either) or `read`."""
        type_id = OBJECT_TYPE_IDS.get(object_type) or self.portal.custom_type_id(object_type)
        return Reply(
            400,
            error(
                f"Unable to perform {verb} by non-unique {type_id} property {prop} in portal "
                f"ID {self.portal.portal_id}",
                "VALIDATION_ERROR",
            ),
        )

    def _resolve(
        self, object_type: str, inputs: list[dict[str, Any]], verb: str
    ) -> list[str | None]:
        """The record id each input addresses (by id, or by a unique idProperty); `verb` as
        `non_unique` takes it."""
        props = {item.get("idProperty") for item in inputs} - {None}
        if len(props) > 1:
            raise Reply(400, error("All inputs must use the same idProperty", "VALIDATION_ERROR"))
        prop = props.pop() if props else None
        ids = [str(_normalised(object_type, str(prop), str(i.get("id", "")))) for i in inputs]
        if len(set(ids)) != len(ids):
            raise Reply(
                400,
                error(
                    f"Duplicate IDs found in batch input: {ids}. IDs must be unique",
                    "VALIDATION_ERROR",
                ),
            )
        if prop == "hs_object_id" and verb != "read":
            # HubSpot: "Unable to perform update/upsert by non-unique 0-2 property
            # hs_object_id in portal ID N" (the record id goes in `id`, without idProperty).
            raise self.non_unique(object_type, prop, verb)
        if prop is None or prop == "hs_object_id":
            present = self.store.exists(object_type, ids)
            # A merged-away id leads to the record it was merged into, as in HubSpot.
            merged = self.store.merged_into(object_type, [i for i in ids if i not in present])
            return [i if i in present else merged.get(i) for i in ids]
        if prop not in self._unique_props(object_type):
            raise self.non_unique(object_type, str(prop), verb)
        found = self.store.find(object_type, prop, ids)
        return [found[i][0] if i in found else None for i in ids]


def batch_inputs(body: Any) -> list[Any]:
    """The inputs of a batch read or archive, or HubSpot's 400 for a body without a list of
    them or with too many (their items are checked by the endpoint)."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise Reply(400, error("Invalid input JSON: expected inputs", "VALIDATION_ERROR"))
    inputs: list[Any] = body["inputs"]
    if len(inputs) > MAX_BATCH_INPUTS:
        raise Reply(
            400,
            error(
                f"The maximum number of inputs supported in a batch is {MAX_BATCH_INPUTS}.",
                "VALIDATION_ERROR",
            ),
        )
    return inputs
