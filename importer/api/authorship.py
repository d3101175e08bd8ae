"""Whether a record found by key was created by this run: HubSpot's own data must prove it.

After an answer is lost (or a 2xx answer leaves a created row unsaid) the record that holds
the row's key may be the one this run created, or one that was there before, made by hand or
by another app, or made meanwhile. It counts as this run's only when HubSpot's data shows all
three of:

1. it was created inside the send window: from just before the batch was sent to when the
   lookup ran, give or take CLOCK_ALLOWANCE for the difference between HubSpot's clock and
   ours (its `createdate`);
2. it was created by this app: HubSpot stamps every record with what made it,
   `hs_object_source` (INTEGRATION for an app's API write, CRM_UI for a person in HubSpot,
   IMPORT...) and `hs_object_source_id` (the app's id for an app). When HubSpot will not say
   which app the token belongs to, a record whose source is not an app's is still not ours,
   and the window and the values decide the rest; so they do for a record that does not say
   its source;
3. it holds the values sent, for every property sent (as HubSpot stores them), when they are
   known (a batch a crashed run left open is judged by 1 and 2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.hubspot import epoch_seconds, same_value

__all__ = ["CLOCK_ALLOWANCE", "INTEGRATION", "PROOF_PROPERTIES", "Window", "not_ours"]

CLOCK_ALLOWANCE = 10.0
"""Seconds HubSpot's clock may differ from ours, on either side of the send window."""
INTEGRATION = "INTEGRATION"
"""`hs_object_source` of a record an app created through the API."""
SOURCE = "hs_object_source"
SOURCE_ID = "hs_object_source_id"
CREATED_BY = "hs_created_by_user_id"
PROOF_PROPERTIES = ("createdate", SOURCE, SOURCE_ID, CREATED_BY)
"""What a lookup reads of each record found, besides the key and the values sent."""


@dataclass(frozen=True, kw_only=True)
class Window:
    """When this run may have created a record (epoch seconds): from just before the batch
    was sent (`start`; None when not known) to when the lookup ran (`end`)."""

    start: float | None
    end: float

    def holds(self, moment: float) -> bool:
        """Whether `moment` (HubSpot's clock) falls inside, give or take CLOCK_ALLOWANCE."""
        return (
            self.start is not None
            and self.start - CLOCK_ALLOWANCE <= moment <= self.end + CLOCK_ALLOWANCE
        )

    def describe(self) -> str:
        """`10:00:01 to 10:00:05 UTC`, as a message names it."""
        start = _clock_time(self.start) if self.start is not None else "(not known)"
        return f"{start} to {_clock_time(self.end)} UTC"


def not_ours(
    object_type: str,
    props: Mapping[str, object],
    window: Window,
    app_id: int | None,
    sent: Mapping[str, str] | None,
) -> str | None:
    """Why the record whose properties (as read) are `props` is not proven created by this
    run, in words; None when it is. `app_id`: the token's app (None: not known); `sent`: the
    values sent (None: not known)."""
    return (
        _outside(props, window)
        or _made_by_another(props, app_id)
        or (_other_values(object_type, props, sent) if sent is not None else None)
    )


def _outside(props: Mapping[str, object], window: Window) -> str | None:
    """Why the record's createdate does not prove it was created inside `window`."""
    stamp = props.get("createdate")
    moment = epoch_seconds(str(stamp)) if stamp else None
    if moment is None:
        return "HubSpot gave no creation date for it"
    if window.holds(moment):
        return None
    return f"it was created at {stamp}, outside this send ({window.describe()})"


def _made_by_another(props: Mapping[str, object], app_id: int | None) -> str | None:
    """Why the record's source says something other than this app made it."""
    source, source_id = props.get(SOURCE), props.get(SOURCE_ID)
    if not source:
        # HubSpot did not say what made it: the window and the values decide.
        return None
    if source != INTEGRATION:
        user = props.get(CREATED_BY)
        return f"it was made by {source}" + (f" (user {user})" if user else "")
    if app_id is not None and str(source_id) != str(app_id):
        other = f"another app ({source_id})" if source_id else "an app HubSpot does not name"
        return f"it was made by {other}, not by this one ({app_id})"
    return None


def _other_values(
    object_type: str, props: Mapping[str, object], sent: Mapping[str, str]
) -> str | None:
    """Why the record's values are not the ones sent: the first property that differs."""
    for prop, value in sent.items():
        held = props.get(prop)
        if not same_value(object_type, prop, held, value):
            shown = "no value" if held is None or held == "" else repr(held)
            return f"its {prop} is {shown}, not {value!r} as sent"
    return None


def _clock_time(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%H:%M:%S")
