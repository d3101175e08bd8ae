"""`--verify`: read back the records the journal knows for this run's rows before deciding.

The journal remembers what this tool sent; HubSpot is what people change. A record deleted in
HubSpot is created again, one merged into another is followed to the survivor, and properties
edited in HubSpot since the last run are set back to the sheet's values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from ..api.client import HubSpotClient
from ..api.reads import read_batch
from ..core.hubspot import MERGED_IDS, chunks, same_value
from ..core.prepared import Prepared
from ..state.journal import KnownRow, RowState

__all__ = ["Drift", "apply_drift", "verify"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Drift:
    gone: dict[str, str] = field(default_factory=dict)
    """Row key -> the id HubSpot no longer has (deleted)."""
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Row key -> (merged-away id, the id of the record it was merged into)."""
    edited: dict[str, list[str]] = field(default_factory=dict)
    """Row key -> properties whose value in HubSpot is no longer what the sheet holds."""
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Row key -> HubSpot's value of each of its `edited` properties (write rules may leave
    it to HubSpot)."""
    requests: int = 0

    def notes(self) -> dict[str, str]:
        """What the workbook says of each row the read-back changed."""
        notes = {
            key: f"record {dead} had been deleted in HubSpot; created again"
            for key, dead in self.gone.items()
        }
        for key, (old, new) in self.moved.items():
            notes[key] = f"record {old} had been merged into {new} in HubSpot; following it"
        for key, props in self.edited.items():
            said = notes.get(key, "")
            changed = ", ".join(props)
            notes[key] = (said + "; " if said else "") + (
                f"set back to the sheet's values: {changed} had been changed in HubSpot"
            )
        return notes


def verify(
    client: HubSpotClient, object_type: str, rows: Prepared, known: dict[str, KnownRow]
) -> Drift:
    """Read every record the journal knows for `rows` (100 a request, paced by the client's
    limiter) and compare it with the sheet."""
    drift = Drift()
    targets: dict[str, str] = {}
    positions: dict[str, int] = {}
    for position, key in enumerate(rows.keys):
        prior = known.get(key)
        if prior is not None and prior.state is RowState.SYNCED and prior.hubspot_id:
            targets[key] = prior.hubspot_id
            positions[key] = position
    names = sorted({*rows.property_names, MERGED_IDS})
    ids = list(dict.fromkeys(targets.values()))
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids):
        reply = _read(client, object_type, chunk, names)
        drift.requests += 1
        for result in reply:
            props = result.get("properties") or {}
            found[str(result["id"])] = props
            for old in str(props.get(MERGED_IDS) or "").split(";"):
                if old and old in chunk and old != str(result["id"]):
                    found.setdefault(f"merged:{old}", {"into": str(result["id"])})
    for key, rid in targets.items():
        if rid in found:
            props = found[rid]
        elif f"merged:{rid}" in found:
            survivor = found[f"merged:{rid}"]["into"]
            drift.moved[key] = (rid, survivor)
            props = found[survivor]
        else:
            drift.gone[key] = rid
            continue
        sheet = rows.properties(positions[key])
        edited = [
            name
            for name, value in sheet.items()
            if not same_value(object_type, name, props.get(name), value)
        ]
        if edited:
            drift.edited[key] = edited
            drift.held[key] = {name: props.get(name) for name in edited}
    log.info(
        "verified %d records: %d deleted, %d merged, %d edited in HubSpot",
        len(targets),
        len(drift.gone),
        len(drift.moved),
        len(drift.edited),
    )
    return drift


def _read(
    client: HubSpotClient, object_type: str, ids: list[str], names: list[str]
) -> list[dict[str, Any]]:
    body = read_batch(client, object_type, ids, names)
    return [r for r in body.get("results") or [] if isinstance(r, dict) and "id" in r]


def apply_drift(drift: Drift, known: dict[str, KnownRow]) -> dict[str, KnownRow]:
    """The journal's rows as HubSpot has them now: deleted records forgotten, merged ones
    pointing at their survivor."""
    now = {k: v for k, v in known.items() if k not in drift.gone}
    for key, (_, survivor) in drift.moved.items():
        if key in now:
            now[key] = replace(now[key], hubspot_id=survivor)
    return now
