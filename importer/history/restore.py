"""Undo of what a run's `missing_rows:` did. The records it set get the values they had
written back (batch/update). The records it archived are created again from the values the
journal kept (batch/create, with the links the journal knew for them inline): HubSpot's API
cannot take a record out of its recycling bin, so each comes back with a new id, and the
journal's row points at it (the recycling bin, in HubSpot's app, restores the original with
its id within 90 days). A key back in the feed since is left as it is. A key HubSpot holds
again is taken only in the record archived (restored from the recycling bin) or in one an
undo that stopped before its answer is proven to have created (authorship.py); a record
someone else made with the key is left alone, and the journal never points at it. Each
request is recorded before it leaves and settled after its answer."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..api.account import client_token, fingerprint, token_app
from ..api.authorship import CREATED_BY, INTEGRATION, SOURCE, SOURCE_ID, Window
from ..api.client import HubSpotClient, Verdict, error_message
from ..api.id_writes import IdWrite, write_by_id
from ..api.lookup import Finder
from ..api.reads import read_values
from ..core.hubspot import chunks, error_context, same_value, stored_value
from ..state.journal import Journal
from ..state.missing_table import MissingEntry, MissingState

__all__ = ["Restored", "restore_missing"]

log = logging.getLogger(__name__)

_EXISTING_ID = re.compile(r"Existing ID: (\d+)")


@dataclass(frozen=True)
class Restored:
    """What undo made of one record `missing_rows:` archived or set."""

    entry: MissingEntry
    said: str
    done: bool = True

    @property
    def new_id(self) -> str:
        """The record in its place now (its own id when it was not created again)."""
        return self.entry.new_id or self.entry.hubspot_id


def restore_missing(
    client: HubSpotClient, journal: Journal, object_type: str, entries: Sequence[MissingEntry]
) -> list[Restored]:
    """Bring back the records of `entries` (set: earlier values; archived: created again),
    100 a request. Raises HubSpotError when HubSpot stops it (what was done is recorded, and
    the next undo goes on from there)."""
    done: list[Restored] = []
    for action, bring in (("set", _write_back), ("archive", _create_again)):
        todo = [e for e in entries if e.action == action]
        for chunk in chunks(todo):
            done += bring(client, journal, object_type, chunk)
    return done


def _write_back(
    client: HubSpotClient, journal: Journal, object_type: str, entries: list[MissingEntry]
) -> list[Restored]:
    """Set records get the values they had before the rule set them, where HubSpot still
    holds the values the rule set (a value someone changed since is theirs: it stays)."""
    held = _held_now(client, object_type, entries)
    # A record HubSpot no longer holds under its id (merged into another, or deleted) is not
    # written to: an update by a merged-away id would land on the record it was merged into.
    gone = [(e, _no_longer_held(e)) for e in entries if e.hubspot_id not in held]
    journal.leave_missing(gone)
    entries = [e for e in entries if e.hubspot_id in held]
    changed = {e.row_key: _changed(object_type, e, held.get(e.hubspot_id)) for e in entries}
    journal.mark_missing(entries, MissingState.RESTORING)
    inputs = [
        IdWrite(e.hubspot_id, values, f"{e.run_id}-undo-{e.hubspot_id}")
        for e in entries
        if (values := _earlier(e, changed[e.row_key]))
    ]
    refused = write_by_id(client, object_type, "update", inputs) if inputs else {}
    ok = [e for e in entries if e.hubspot_id not in refused]
    journal.record_restored(ok)
    for e in entries:
        if e.hubspot_id in refused:
            journal.mark_missing([e], MissingState.DONE, message=refused[e.hubspot_id])
    return [Restored(e, why) for e, why in gone] + [
        Restored(e, f"not written back: {refused[e.hubspot_id]}", done=False)
        if e.hubspot_id in refused
        else Restored(e, _written_back(_earlier(e, changed[e.row_key]), changed[e.row_key]))
        for e in entries
    ]


def _no_longer_held(entry: MissingEntry) -> str:
    """What undo says of a set record HubSpot no longer holds under its id."""
    return (
        f"HubSpot no longer has record {entry.hubspot_id} (merged into another, or deleted): "
        "nothing written back, left as it is"
    )


def _held_now(
    client: HubSpotClient, object_type: str, entries: list[MissingEntry]
) -> dict[str, dict[str, Any]]:
    """Record id -> what HubSpot holds now of the properties the rule set, for the records
    it holds live (one batch/read of at most 100 records; an answer lost is asked again)."""
    names = sorted({p for e in entries for p in e.set_to})
    return read_values(
        client,
        object_type,
        [e.hubspot_id for e in entries],
        names,
        "read the values missing_rows: set, before writing back the earlier ones",
    )


def _changed(object_type: str, entry: MissingEntry, now: dict[str, Any] | None) -> dict[str, str]:
    """The properties whose value someone changed since the rule set it -> that value (none
    when HubSpot did not return the record: the write says what became of it)."""
    if now is None:
        return {}
    return {
        p: "" if now.get(p) is None else str(now[p])
        for p, v in entry.set_to.items()
        if not same_value(object_type, p, now.get(p), v)
    }


def _earlier(entry: MissingEntry, changed: dict[str, str] | None = None) -> dict[str, str]:
    """The values a set record had before, for the properties the rule set ("" clears),
    less those `changed` since."""
    before = entry.before or {}
    return {
        p: "" if before.get(p) is None else str(before[p])
        for p in entry.set_to
        if p not in (changed or {})
    }


def _written_back(written: dict[str, str], changed: dict[str, str]) -> str:
    """What undo says of a set record whose values it wrote back (or left as they are)."""
    said = "earlier values written back: " + _shown(written) if written else "nothing written back"
    if changed:
        said += "; left as HubSpot holds them, changed since the rule set them: " + _shown(changed)
    return said


def _shown(values: dict[str, str]) -> str:
    """`status: active, tax: (empty)`."""
    return ", ".join(f"{p}: {v or '(empty)'}" for p, v in sorted(values.items()))


def _create_again(
    client: HubSpotClient, journal: Journal, object_type: str, entries: list[MissingEntry]
) -> list[Restored]:
    """Archived records created again from their kept values, unless their key is back in
    the journal (the feed brought it back) or HubSpot holds it (taken as it is)."""
    now = journal.known(e.row_key for e in entries)
    # A row pointing at another record: the feed brought the key back since. One pointing at
    # the archived record itself is a request whose run stopped before its answer.
    back = [e for e in entries if e.row_key in now and now[e.row_key].hubspot_id != e.hubspot_id]
    said: list[Restored] = []
    for e in back:
        journal.mark_missing([replace(e, new_id=now[e.row_key].hubspot_id)], MissingState.UNDONE)
        said.append(Restored(e, "back in the feed since: left as it is"))
    entries = [e for e in entries if e not in back]
    finder, held = _held(client, object_type, entries)
    others = _not_taken(client, journal, finder, entries, held)
    found = [
        replace(e, new_id=held[e.row_key])
        for e in entries
        if e.row_key in held and e.row_key not in others
    ]
    journal.record_restored(found)
    said += [Restored(e, _found_again(e)) for e in found]
    # Someone else's record holds the key: settled for good, so it is said once.
    left = [(e, why) for e in entries if (why := others.get(e.row_key))]
    journal.leave_missing(left)
    said += [Restored(e, why) for e, why in left]
    to_create = [e for e in entries if e.row_key not in held]
    if to_create:
        said += _create(client, journal, object_type, to_create)
    return said


def _not_taken(
    client: HubSpotClient,
    journal: Journal,
    finder: Finder,
    entries: list[MissingEntry],
    held: dict[str, str],
) -> dict[str, str]:
    """Row key -> what undo says of a live record holding the key that it cannot prove is
    the record archived or one an earlier undo created in its place (left as it is)."""
    said: dict[str, str] = {}
    for e in entries:
        hid = held.get(e.row_key)
        if hid is None or hid == e.hubspot_id or _undo_made(client, journal, finder, e, hid):
            continue
        key = e.row_key[4:]
        said[e.row_key] = (
            f"HubSpot holds {key} in record {hid}, {_maker(finder.records.get(hid, {}))}: left "
            "as it is, not taken back; the archived record stays in HubSpot's recycling bin"
        )
    return said


def _undo_made(
    client: HubSpotClient, journal: Journal, finder: Finder, entry: MissingEntry, hid: str
) -> bool:
    """Whether record `hid` is proven created by an earlier undo of `entry` that stopped
    before its answer: by this app, since that undo's request, with the values it sent."""
    if entry.state is not MissingState.RESTORING:
        return False
    if finder.app_id is None:
        finder.app_id = _app_id(client, journal)
    window = Window(start=_epoch(entry.updated), end=time.time())
    return finder.not_ours(hid, window, _kept_values(entry)) is None


def _app_id(client: HubSpotClient, journal: Journal) -> int | None:
    """The app the token belongs to, as the journal remembers it (stages/lookups.py keeps
    it per token fingerprint) or HubSpot says; None when neither does."""
    token = client_token(client)
    known = journal.get_meta(f"app:{fingerprint(client.base_url, token)}")
    if known is not None and known.isdigit():
        return int(known)
    return token_app(client, token)


def _maker(props: dict[str, object]) -> str:
    """`made by CRM_UI (user 7)`: what HubSpot says made a record."""
    source, source_id, user = props.get(SOURCE), props.get(SOURCE_ID), props.get(CREATED_BY)
    if not source:
        return "made by whom HubSpot does not say"
    if source == INTEGRATION:
        return f"made by an app ({source_id or 'not named'})"
    return f"made by {source}" + (f" (user {user})" if user else "")


def _kept_values(entry: MissingEntry) -> dict[str, str]:
    """The values an undo sends to create an archived record again: those kept, not empty."""
    return {p: str(v) for p, v in (entry.before or {}).items() if v not in (None, "")}


def _found_again(entry: MissingEntry) -> str:
    """What undo says of an archived record whose key HubSpot holds live."""
    if entry.new_id != entry.hubspot_id:
        return f"created by an earlier undo (record {entry.new_id}): taken as it is"
    if entry.state is MissingState.SENDING:
        return "never archived (its run stopped before the answer): left as it is"
    return "restored in HubSpot (its recycling bin): taken as it is"


def _held(
    client: HubSpotClient, object_type: str, entries: list[MissingEntry]
) -> tuple[Finder, dict[str, str]]:
    """The finder (with what it read of each record) and row key -> the live record HubSpot
    holds with its key, for `entries`; a record an undo may have created before it stopped
    is waited for (search lags writes)."""
    prop = entries[0].row_key[4:].partition("=")[0] if entries else ""
    finder = Finder(client, object_type, prop)
    if not entries:
        return finder, {}
    restoring = [e for e in entries if e.state is MissingState.RESTORING]
    written = max((_epoch(e.updated) for e in restoring), default=None)
    read = sorted({p for e in restoring for p in _kept_values(e)})
    found = finder.find([e.key_value for e in entries], written, read=read) or {}
    return finder, {
        e.row_key: found[stored_value(object_type, prop, e.key_value)]
        for e in entries
        if stored_value(object_type, prop, e.key_value) in found
    }


def _epoch(stamp: str) -> float:
    """A journal's time stamp (ISO 8601) as epoch seconds."""
    return dt.datetime.fromisoformat(stamp).timestamp()


def _create(
    client: HubSpotClient, journal: Journal, object_type: str, entries: list[MissingEntry]
) -> list[Restored]:
    """One batch/create of archived records from their kept values and links; a record the
    answer names is recorded with its new id, one it refuses left to a later undo."""
    journal.mark_missing(entries, MissingState.RESTORING)
    traces = {f"{e.run_id}-undo-{e.hubspot_id}": e for e in entries}
    inputs = [
        {
            "properties": _kept_values(e),
            "associations": journal.links_of(e.row_key, e.hubspot_id),
            "objectWriteTraceId": trace,
        }
        for trace, e in traces.items()
    ]
    path = client.paths.batch(object_type, "create")
    # A create answered 5xx may have been carried out: the next undo looks it up first.
    reply = client.request("POST", path, {"inputs": inputs}, resend_after_5xx=False)
    if reply.verdict not in (Verdict.SUCCESS, Verdict.PARTIAL):
        why = f"HubSpot refused it: {error_message(reply.body, reply.status)}"
        journal.mark_missing(entries, MissingState.DONE, message=why)
        return [Restored(e, f"not created again: {why}", done=False) for e in entries]
    made, refused = _answered(object_type, reply.body, traces)
    created = [replace(e, new_id=made[e.row_key]) for e in entries if e.row_key in made]
    journal.record_restored(created)
    failed = [e for e in entries if e.row_key in refused]
    for e in failed:
        journal.mark_missing([e], MissingState.DONE, message=refused[e.row_key])
    said = [Restored(e, "created again") for e in created]
    said += [Restored(e, f"not created again: {refused[e.row_key]}", False) for e in failed]
    unsaid = [e for e in entries if e.row_key not in made and e.row_key not in refused]
    said += [
        Restored(e, "not confirmed by HubSpot's answer: the next undo looks it up", False)
        for e in unsaid
    ]
    return said


def _answered(
    object_type: str, body: dict[str, Any], traces: dict[str, MissingEntry]
) -> tuple[dict[str, str], dict[str, str]]:
    """(row key -> new id, row key -> why refused) from a batch/create's answer: results by
    their echoed trace id, else their key's value; a refusal because a record holds the key
    already takes that record."""
    by_value: dict[str, MissingEntry] = {}
    for e in traces.values():
        prop = e.row_key[4:].partition("=")[0]
        by_value[f"{prop}={stored_value(object_type, prop, e.key_value)}"] = e
    made: dict[str, str] = {}
    for result in body.get("results") or []:
        if not isinstance(result, dict) or "id" not in result:
            continue
        entry = traces.get(str(result.get("objectWriteTraceId")))
        props = result.get("properties") or {}
        for key, e in by_value.items() if entry is None else ():
            prop, _, value = key.partition("=")
            if stored_value(object_type, prop, str(props.get(prop) or "")) == value:
                entry = e
        if entry is not None:
            made[entry.row_key] = str(result["id"])
    refused: dict[str, str] = {}
    for err in body.get("errors") or []:
        if not isinstance(err, dict):
            continue
        for trace in error_context(err).get("objectWriteTraceId", []):
            named = traces.get(str(trace))
            if named is None:
                continue
            held = _EXISTING_ID.search(str(err.get("message") or ""))
            if held is not None and err.get("category") == "CONFLICT":
                made[named.row_key] = held.group(1)
            else:
                refused[named.row_key] = f"HubSpot refused it: {error_message(err, 0)}"
    return made, refused
