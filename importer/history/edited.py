"""Before undo archives the records a run created, it reads each one back: a record someone
changed since this tool last wrote it (a person in HubSpot, another app, a workflow) is theirs
now as much as the run's, and is listed and left alone unless the user says `--force`; a
record no longer live under its id (deleted, archived, or merged into another) is not
archived, so that the survivor of a merge is never archived in its place.

A record counts as changed when HubSpot holds, for a property this tool wrote, a value other
than the one it wrote (the journal keeps what it last sent of each row), when other records
were merged into it (`hs_merged_object_ids`), when HubSpot names a
user who last updated it (`hs_updated_by_user_id`), or when its `hs_lastmodifieddate` is
later than this tool's last write of it (the run's end, or a later run's) by more than the
clocks may differ (CLOCK_ALLOWANCE)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.authorship import CLOCK_ALLOWANCE
from ..api.client import HubSpotClient
from ..api.reads import read_values
from ..core.hubspot import MERGED_IDS, chunks, epoch_seconds, same_value
from ..state.journal import Journal, KnownRow

__all__ = ["Checked", "check_created"]

MODIFIED = "hs_lastmodifieddate"
UPDATED_BY = "hs_updated_by_user_id"
"""The user who last changed a record, as HubSpot keeps it (empty for an app's writes)."""


@dataclass(frozen=True)
class Checked:
    """The records a run created, sorted by what HubSpot holds of them now."""

    unchanged: list[tuple[str, str]] = field(default_factory=list)
    """(row key, id) of records as this tool left them: undo archives them."""
    changed: list[tuple[str, str, str]] = field(default_factory=list)
    """(row key, id, what changed) of records changed since: archived only with --force."""
    gone: list[tuple[str, str]] = field(default_factory=list)
    """(row key, id) of records not live under their id: nothing to archive."""


def check_created(
    client: HubSpotClient,
    journal: Journal,
    run: dict[str, Any],
    created: Sequence[tuple[str, str]],
) -> Checked:
    """Read back the records of `created` ((row key, id) pairs), 100 a request, and sort
    them (see Checked)."""
    known = journal.known(key for key, _ in created)
    checked = Checked()
    for chunk in chunks(created):
        sent = {hid: _sent(known.get(key), hid) for key, hid in chunk}
        names = sorted(
            {p for values in sent.values() for p in values} | {MODIFIED, UPDATED_BY, MERGED_IDS}
        )
        held = read_values(
            client,
            run["object_type"],
            [hid for _, hid in chunk],
            names,
            "read the records the run created, to leave alone those changed since",
        )
        for key, hid in chunk:
            now = held.get(hid)
            if now is None:
                checked.gone.append((key, hid))
                continue
            why = _changed(run, known.get(key), hid, sent[hid], now)
            if why is None:
                checked.unchanged.append((key, hid))
            else:
                checked.changed.append((key, hid, why))
    return checked


def _sent(row: KnownRow | None, hid: str) -> dict[str, str]:
    """What this tool last wrote of the record (the journal's row for its key, when it
    still names this record); empty when the journal does not keep it."""
    if row is None or row.hubspot_id != hid or not row.sent:
        return {}
    try:
        values = json.loads(row.sent)
    except ValueError:
        return {}
    return {str(p): "" if v is None else str(v) for p, v in values.items()}


def _changed(
    run: dict[str, Any],
    row: KnownRow | None,
    hid: str,
    sent: dict[str, str],
    now: dict[str, Any],
) -> str | None:
    """What shows that someone changed the record since this tool last wrote it, in words;
    None when nothing does."""
    object_type = run["object_type"]
    for prop, value in sorted(sent.items()):
        if not same_value(object_type, prop, now.get(prop), value):
            held = now.get(prop)
            shown = "empty" if held in (None, "") else repr(str(held))
            return f"its {prop} is {shown}, not {value!r} as this tool wrote it"
    if merged := str(now.get(MERGED_IDS) or "").strip(";"):
        return f"HubSpot merged record {merged.replace(';', ', ')} into it since the run"
    if now.get(UPDATED_BY):
        return f"HubSpot says user {now[UPDATED_BY]} changed it last"
    stamp = str(now.get(MODIFIED) or "")
    modified = epoch_seconds(stamp) if stamp else None
    wrote = _last_write(run, row, hid)
    if modified is not None and wrote is not None and modified > wrote + CLOCK_ALLOWANCE:
        return f"it was changed at {stamp}, after this tool last wrote it"
    return None


def _last_write(run: dict[str, Any], row: KnownRow | None, hid: str) -> float | None:
    """When this tool last wrote the record, as epoch seconds: the latest of the run's end
    (its links and rules come after its rows) and the journal's last change of its row."""
    stamps = [run.get("finished"), run.get("started")]
    if row is not None and row.hubspot_id == hid:
        stamps.append(row.updated)
    moments = [m for s in stamps if s and (m := epoch_seconds(str(s))) is not None]
    return max(moments, default=None)
