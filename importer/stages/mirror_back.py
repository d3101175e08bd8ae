"""A record `missing_rows:` set whose key is back in the feed: what becomes of each property
the rule set. The row is sent as an update with the sheet's values, so a property the row
writes gets the sheet's value; one it does not write gets back the value it had before the
rule set it, unless someone changed it in HubSpot since (that value stays). A run writes the
earlier values back (`stages.mirror`); `check` and --dry-run say, record by record, which
came back and what would be put back (`would_set_back`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..api.client import HubSpotClient
from ..api.reads import read_values
from ..core.hubspot import chunks, same_value
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..sheets.results_missing import MissingLine
from ..state.missing_table import MissingEntry
from .mirror_send import add_note, back_line

__all__ = ["Back", "held_now", "plan_back", "shown", "would_set_back"]


@dataclass(frozen=True)
class Back:
    """One set record back in the feed: `entry` with `set_to` the earlier values to write
    back, the properties someone `changed` since the rule set them (-> their value now), and
    those the row `sends` itself (-> the sheet's value)."""

    entry: MissingEntry
    changed: dict[str, Any]
    sends: dict[str, str]


def held_now(
    client: HubSpotClient, object_type: str, entries: list[MissingEntry]
) -> dict[str, dict[str, Any]]:
    """Record id -> what HubSpot holds now of the properties the rule set, read before
    anything is written back (100 records a request)."""
    names = sorted({p for e in entries for p in e.set_to})
    ids = [e.hubspot_id for e in entries]
    held: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids):
        held.update(
            read_values(
                client,
                object_type,
                chunk,
                names,
                "read the values missing_rows: set, before writing back the earlier ones",
            )
        )
    return held


def plan_back(
    object_type: str,
    entries: list[MissingEntry],
    back: dict[str, int],
    rows: Prepared,
    held: dict[str, dict[str, Any]],
) -> list[Back]:
    """What becomes of each set property of `entries` (row key -> position in `rows`)."""
    planned = []
    for e in entries:
        row = rows.properties(back[e.row_key])
        sends = {p: row[p] for p in e.set_to if p in row}
        before = e.before or {}
        now = held.get(e.hubspot_id, {})
        # A value someone changed since the rule set it is theirs: it stays.
        changed = {
            p: now.get(p)
            for p, v in e.set_to.items()
            if p not in sends and not same_value(object_type, p, now.get(p), v)
        }
        values = {
            p: str(before.get(p) or "") for p in e.set_to if p not in sends and p not in changed
        }
        planned.append(Back(replace(e, set_to=values), changed, sends))
    return planned


def shown(values: dict[str, Any]) -> str:
    """`status: active, tax: (empty)`."""
    return ", ".join(f"{p}: {v or '(empty)'}" for p, v in sorted(values.items()))


def would_set_back(
    planned: list[Back], back: dict[str, int], rows: Prepared, results: dict[int, RowResult]
) -> list[MissingLine]:
    """A dry run's lines (and row notes) for set records whose key is back in the feed: which
    came back, and for each property the rule set whether it would be put back."""
    lines = []
    for b in planned:
        e = b.entry
        parts = []
        if e.set_to:
            parts.append(f"its earlier values would be written back: {shown(e.set_to)}")
        if b.sends:
            parts.append(f"its row would set {shown(b.sends)}")
        if b.changed:
            parts.append(
                f"left as HubSpot holds them, changed since the rule set them: {shown(b.changed)}"
            )
        note = f"back in the feed: run {e.run_id} had set it (missing_rows); " + "; ".join(parts)
        row = rows.rows[back[e.row_key]]
        results.setdefault(row, RowResult(row=row, status=RowStatus.WOULD_UPDATE))
        add_note(results, row, note)
        lines.append(back_line(e, e.hubspot_id, note))
    return lines
