"""The journal's `missing` table: the records a mapping's `missing_rows:` archived or set
because their key left the feed. Each is written down (`sending`) with what HubSpot held
before, in the transaction before its request leaves, and settled after the answer: HubSpot's
API cannot take an archived record out of the recycling bin, so `undo` creates it again from
these values. A mixin of `Journal`, sharing its connection."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .records import JournalTables, RowState, _now

__all__ = ["COUNTED", "MISSING_SCHEMA", "MissingEntry", "MissingState", "MissingTables"]

MISSING_SCHEMA = """
CREATE TABLE IF NOT EXISTS missing (
    -- Records archived or set by a mapping's missing_rows: (see state/missing_table.py).
    run_id TEXT NOT NULL,  -- the run that archived or set the record
    row_key TEXT NOT NULL,
    hubspot_id TEXT NOT NULL,
    action TEXT NOT NULL,  -- 'archive' or 'set'
    state TEXT NOT NULL,  -- a MissingState
    set_to TEXT,  -- JSON: the values set ('set')
    before TEXT,  -- JSON: HubSpot's values, read just before the request
    kept_row TEXT NOT NULL,  -- JSON: the journal's row as it was (state, sent_hash, sent, run)
    message TEXT,
    new_id TEXT,  -- the record in its place since: created again by undo, or by the feed
    updated TEXT NOT NULL,
    PRIMARY KEY (run_id, row_key)
);
CREATE INDEX IF NOT EXISTS missing_state ON missing (state);
"""

UNSETTLED_HASH = ""
"""The fingerprint of a row the next run must decide again (`stages.decide.UNSETTLED`)."""


class MissingState(StrEnum):
    """Where one record of the `missing` table stands."""

    SENDING = "sending"  # the request is recorded, its answer not yet: the next run settles it
    DONE = "done"  # HubSpot archived it (its journal row is gone) or holds the values set
    FAILED = "failed"  # HubSpot refused it: the record and its journal row are as they were
    GONE = "gone"  # HubSpot no longer had it (deleted, archived or merged elsewhere)
    RETURNING = "returning"  # set, its key back in the feed: its earlier values being written
    RETURNED = "returned"  # its key came back in the feed (created again, or values back)
    RESTORING = "restoring"  # undo's request is recorded, its answer not yet
    UNDONE = "undone"  # undo brought it back (created again, or its earlier values written)
    LEFT = "left"  # undo left it alone, for good (the reason in `message`): see leave_missing


@dataclass(frozen=True, kw_only=True)
class MissingEntry:
    """One record of the `missing` table."""

    run_id: str
    row_key: str
    hubspot_id: str
    action: str
    state: MissingState = MissingState.SENDING
    set_to: dict[str, str] = field(default_factory=dict)
    before: dict[str, Any] | None = None
    kept_row: dict[str, Any] = field(default_factory=dict)
    """The journal's row as it was: state, sent_hash, sent (JSON text) and run_id."""
    message: str = ""
    new_id: str | None = None
    updated: str = ""

    @property
    def key_value(self) -> str:
        """The key's value, from the row key `key:<property>=<value>`."""
        return self.row_key.partition("=")[2]

    @property
    def last_run(self) -> str:
        """The run that last imported the record before it left the feed."""
        return str(self.kept_row.get("run_id") or "")


_COLUMNS = (
    "run_id, row_key, hubspot_id, action, state, set_to, before, kept_row, message, new_id, updated"
)


def _entry(row: Sequence[Any]) -> MissingEntry:
    """A MissingEntry from the table's columns, in `_COLUMNS` order."""
    run_id, key, hid, action, state, set_to, before, kept, message, new_id, updated = row
    return MissingEntry(
        run_id=run_id,
        row_key=key,
        hubspot_id=hid,
        action=action,
        state=MissingState(state),
        set_to=json.loads(set_to) if set_to else {},
        before=json.loads(before) if before else None,
        kept_row=json.loads(kept) if kept else {},
        message=message or "",
        new_id=new_id,
        updated=updated,
    )


class MissingTables(JournalTables):
    """Methods of `Journal` over the `missing` table (and the `rows` its outcomes change)."""

    def held_rows(self, key_prefix: str, mapping_file: str) -> list[tuple[str, str, str]]:
        """(row key, HubSpot id, run id) of every synced row keyed on `key_prefix`
        (`key:<property>=`) whose record a run of `mapping_file` created (`owner_run`: a
        create answered, or a lost create's record proven this app's; another mapping's later
        updates leave that), and that the journal still holds. A record a run only updated
        (update mode, an upsert or a refused create that found it there) has no owner, nor
        has a row an older version wrote: the mirror never takes what it cannot show it made.
        A run's mapping file is compared as the file it names."""
        runs = self._runs_of(mapping_file)
        if not runs:
            return []
        found: list[tuple[str, str, str]] = []
        for key, hid, run_id, owner in self._db.execute(
            "SELECT row_key, hubspot_id, run_id, owner_run FROM rows WHERE owner_run IS NOT NULL "
            "AND state = ? AND hubspot_id IS NOT NULL AND substr(row_key, 1, ?) = ? "
            "ORDER BY row_key",
            (RowState.SYNCED.value, len(key_prefix), key_prefix),
        ):
            if owner in runs:
                found.append((key, hid, run_id))
        return found

    def _runs_of(self, mapping_file: str) -> set[str]:
        """The runs of `mapping_file`: those whose recorded path (recorded resolved) is the
        file's. A relative path recorded by an earlier version names no file for certain
        (`m.yaml` in which folder?), so its runs hold nothing: the safe direction."""
        wanted = _same_file(mapping_file)
        return {
            run_id
            for run_id, path in self._db.execute("SELECT run_id, mapping_file FROM runs")
            if Path(path).is_absolute() and _same_file(path) == wanted
        }

    def holders(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """HubSpot id -> every row key the journal points at it (a merge can make two)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, list[str]] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            for key, hid in self._db.execute(
                f"SELECT row_key, hubspot_id FROM rows WHERE hubspot_id IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ):
                found.setdefault(hid, []).append(key)
        return found

    def kept_rows(self, row_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Row key -> the journal's row (state, sent_hash, sent, run_id), as undo restores it."""
        wanted = list(row_keys)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            for key, state, sent_hash, sent, run_id, owner in self._db.execute(
                f"SELECT row_key, state, sent_hash, sent, run_id, owner_run FROM rows WHERE "
                f"row_key IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                found[key] = {"state": state, "sent_hash": sent_hash, "sent": sent,
                              "run_id": run_id, "owner_run": owner}  # fmt: skip
        return found

    def missing_entries(
        self,
        *,
        run_id: str | None = None,
        states: Iterable[MissingState] = (),
        action: str | None = None,
    ) -> list[MissingEntry]:
        """The table's records, of one run, in some states, of one action (each optional)."""
        where, args = [], []
        if run_id is not None:
            where.append("run_id = ?")
            args.append(run_id)
        wanted = [s.value for s in states]
        if wanted:
            where.append(f"state IN ({','.join('?' * len(wanted))})")
            args += wanted
        if action is not None:
            where.append("action = ?")
            args.append(action)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [
            _entry(r)
            for r in self._db.execute(
                f"SELECT {_COLUMNS} FROM missing{clause} ORDER BY run_id, row_key", args
            )
        ]

    def missing_counts(self) -> dict[str, dict[str, int]]:
        """Run id -> what its `missing_rows:` did, for the runs it acted in: `archived` and
        `set` (every record it archived or set, whatever came of it since), `gone`, `failed`,
        `unconfirmed` (its answer not yet heard), and since then `restored` (by undo),
        `returned` (back in the feed) and `left` (undo left it alone)."""
        found: dict[str, dict[str, int]] = {}
        for run_id, action, state, n in self._db.execute(
            "SELECT run_id, action, state, COUNT(*) FROM missing GROUP BY run_id, action, state"
        ):
            counts = found.setdefault(run_id, dict.fromkeys(COUNTED, 0))
            for word in _counted_as(action, MissingState(state)):
                counts[word] += n
        return found

    def begin_missing(self, entries: Sequence[MissingEntry]) -> None:
        """Record the requests about to be sent for `entries` (or, for records HubSpot no
        longer had, what was found), in one transaction, before anything leaves."""
        now = _now()
        with self._txn() as db:
            db.executemany(
                f"INSERT INTO missing ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, row_key) DO UPDATE SET state = excluded.state, "
                "before = excluded.before, message = excluded.message, "
                "updated = excluded.updated",
                [
                    (e.run_id, e.row_key, e.hubspot_id, e.action, e.state.value,
                     json.dumps(e.set_to) if e.set_to else None,
                     json.dumps(e.before) if e.before is not None else None,
                     json.dumps(e.kept_row), e.message or None, e.new_id, now)
                    for e in entries
                ],
            )  # fmt: skip
            gone = [e for e in entries if e.state is MissingState.GONE]
            self._forget_rows(db, gone)

    def settle_missing(
        self, entries: Sequence[MissingEntry], failed: dict[str, str] | None = None
    ) -> None:
        """HubSpot answered for `entries`: each is done, except the row keys `failed` names
        (-> why). An archived record's journal row goes, so the feed bringing its key back
        creates it again; a set record's row remembers what HubSpot holds from this tool now
        and is decided again when its key comes back."""
        failed = failed or {}
        now = _now()
        done = [e for e in entries if e.row_key not in failed]
        with self._txn() as db:
            db.executemany(
                "UPDATE missing SET state = ?, message = ?, updated = ? WHERE run_id = ? AND "
                "row_key = ?",
                [(MissingState.DONE.value, None, now, e.run_id, e.row_key) for e in done]
                + [
                    (MissingState.FAILED.value, failed[e.row_key], now, e.run_id, e.row_key)
                    for e in entries
                    if e.row_key in failed
                ],
            )
            self._forget_rows(db, [e for e in done if e.action == "archive"])
            db.executemany(
                "UPDATE rows SET sent = ?, sent_hash = ?, updated = ? WHERE row_key = ? AND "
                "hubspot_id = ?",
                [
                    (_with_set(e), UNSETTLED_HASH, now, e.row_key, e.hubspot_id)
                    for e in done
                    if e.action == "set"
                ],
            )

    @staticmethod
    def _forget_rows(db: Any, entries: Sequence[MissingEntry]) -> None:
        """The journal forgets the rows of records HubSpot no longer holds live."""
        db.executemany(
            "DELETE FROM rows WHERE row_key = ? AND hubspot_id = ?",
            [(e.row_key, e.hubspot_id) for e in entries],
        )

    def mark_missing(
        self, entries: Sequence[MissingEntry], state: MissingState, *, message: str = ""
    ) -> None:
        """Move `entries` to `state` (a record back in the feed; undo's intent), keeping each
        entry's `new_id` when it has one."""
        now = _now()
        with self._txn() as db:
            db.executemany(
                "UPDATE missing SET state = ?, new_id = COALESCE(?, new_id), "
                "message = COALESCE(?, message), updated = ? WHERE run_id = ? AND row_key = ?",
                [
                    (state.value, e.new_id, message or None, now, e.run_id, e.row_key)
                    for e in entries
                ],
            )

    def leave_missing(self, left: Sequence[tuple[MissingEntry, str]]) -> None:
        """Undo left these records alone, each for the reason given: another record holds
        the key now (made by someone else), or HubSpot no longer has a set record (merged or
        deleted). They are settled, so no later undo says it again and the run counts as
        undone; a set record's journal row goes with the record it pointed at."""
        now = _now()
        with self._txn() as db:
            db.executemany(
                "UPDATE missing SET state = ?, message = ?, updated = ? WHERE run_id = ? AND "
                "row_key = ?",
                [(MissingState.LEFT.value, why, now, e.run_id, e.row_key) for e, why in left],
            )
            self._forget_rows(db, [e for e, _ in left if e.action == "set"])

    def reopen_returned(self, ids: Iterable[str]) -> None:
        """An undo archived records `ids` that a run created again when their key came back:
        the archived records they stood in for are archived ones again (done, nothing in
        their place), so undo of the run that archived them creates them again."""
        wanted = list(ids)
        now = _now()
        with self._txn() as db:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                db.execute(
                    f"UPDATE missing SET state = ?, new_id = NULL, updated = ? WHERE action = "
                    f"'archive' AND state = ? AND new_id IN ({','.join('?' * len(chunk))})",
                    [MissingState.DONE.value, now, MissingState.RETURNED.value, *chunk],
                )

    def record_restored(self, entries: Sequence[MissingEntry]) -> None:
        """Undo brought `entries` back: an archived record's row points at the record created
        again in its place (`new_id`), with its links; a set record's row remembers what it
        did before the rule set it."""
        now = _now()
        with self._txn() as db:
            for e in entries:
                row = e.kept_row
                if e.action == "set":
                    db.execute(
                        "UPDATE rows SET sent = ?, sent_hash = ?, updated = ? WHERE row_key = ? "
                        "AND hubspot_id = ?",
                        (row.get("sent"), row.get("sent_hash") or UNSETTLED_HASH, now,
                         e.row_key, e.hubspot_id),
                    )  # fmt: skip
                else:
                    self._repoint(db, e, e.new_id or e.hubspot_id, now)
                db.execute(
                    "UPDATE missing SET state = ?, new_id = ?, updated = ? WHERE run_id = ? "
                    "AND row_key = ?",
                    (MissingState.UNDONE.value, e.new_id, now, e.run_id, e.row_key),
                )

    @staticmethod
    def _repoint(db: Any, e: MissingEntry, hid: str, now: str) -> None:
        """An archived record's journal row as it was, pointing at the record `hid` in its
        place, and its links made from that record."""
        row = e.kept_row
        db.execute(
            "INSERT INTO rows (row_key, state, hubspot_id, sent_hash, sent, run_id, updated, "
            "owner_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (row_key) DO UPDATE SET "
            "state = excluded.state, hubspot_id = excluded.hubspot_id, "
            "sent_hash = excluded.sent_hash, sent = excluded.sent, run_id = excluded.run_id, "
            "updated = excluded.updated, owner_run = excluded.owner_run",
            (
                e.row_key,
                row.get("state") or RowState.SYNCED.value,
                hid,
                row.get("sent_hash") or UNSETTLED_HASH,
                row.get("sent"),
                row.get("run_id") or e.run_id,
                now,
                # The record in its place is the mapping's as the one archived was.
                row.get("owner_run"),
            ),
        )
        if hid != e.hubspot_id:
            db.execute(
                "UPDATE links SET from_id = ? WHERE row_key = ? AND from_id = ?",
                (hid, e.row_key, e.hubspot_id),
            )

    def links_of(self, row_key: str, hubspot_id: str) -> list[dict[str, Any]]:
        """The links this tool made from record `hubspot_id` for `row_key`: target and types,
        as batch/create takes them inline."""
        return [
            {"to": {"id": to_id}, "types": json.loads(types)}
            for to_id, types in self._db.execute(
                "SELECT to_id, types FROM links WHERE row_key = ? AND from_id = ? ORDER BY to_id",
                (row_key, hubspot_id),
            )
        ]


COUNTED = ("archived", "set", "gone", "failed", "unconfirmed", "restored", "returned", "left")
"""The words of `missing_counts`, in the order `runs` says them."""

_SINCE = {
    MissingState.UNDONE: "restored",
    MissingState.RETURNED: "returned",
    MissingState.LEFT: "left",
}
_NOT_DONE = {
    MissingState.GONE: "gone",
    MissingState.FAILED: "failed",
    MissingState.SENDING: "unconfirmed",
}


def _counted_as(action: str, state: MissingState) -> list[str]:
    """The words of `missing_counts` one record in `state` counts for."""
    if state in _NOT_DONE:
        return [_NOT_DONE[state]]
    done = "archived" if action == "archive" else "set"
    return [done, *([_SINCE[state]] if state in _SINCE else [])]


def _with_set(entry: MissingEntry) -> str | None:
    """What HubSpot holds from this tool for a set record: what was sent, with the values set
    where this tool sends those properties itself (so a row coming back sends its own)."""
    sent = entry.kept_row.get("sent")
    if not sent:
        return None
    held = json.loads(sent)
    held.update({p: v for p, v in entry.set_to.items() if p in held})
    return json.dumps(held, sort_keys=True)


def _same_file(path: str) -> str:
    """A mapping file's path resolved, as this process sees it."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return path
