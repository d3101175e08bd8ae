"""The sandbox's records, in SQLite: in memory by default, or a file a user can inspect."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..core.hubspot import DEFAULT_ASSOCIATION_TYPES
from .portal import default_inverse_type_id
from .sources import DEFAULT_APP_ID, RecordSource

__all__ = ["Record", "Store", "now_iso"]

FIRST_ID = 10_000_000_001

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    object_type TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS records_type ON records (object_type, id);
CREATE TABLE IF NOT EXISTS associations (
    from_type TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_type TEXT NOT NULL,
    to_id TEXT NOT NULL,
    category TEXT NOT NULL,
    type_id INTEGER NOT NULL
);
-- Links are read and changed by pair, from either end.
CREATE INDEX IF NOT EXISTS associations_from ON associations (from_type, from_id, to_type, to_id);
CREATE INDEX IF NOT EXISTS associations_to ON associations (to_type, to_id, from_type, from_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS merges (
    object_type TEXT NOT NULL,
    from_id TEXT NOT NULL,
    into_id TEXT NOT NULL,
    PRIMARY KEY (object_type, from_id)
);
-- Property values were once indexed in this table; the index now lives in memory.
DROP TABLE IF EXISTS prop_index;
"""

# Every record's properties hold its id (hs_object_id), as HubSpot's do: SQLite takes a batch
# as one JSON array and splits it itself, instead of an encoding and a bound row per record.
_INSERT_RECORDS = (
    "INSERT {verb} INTO records SELECT json_extract(value, '$.hs_object_id'), ?, value, ?, ?, 0 "
    "FROM json_each(?)"
)

Record = dict[str, Any]
OnWrite = Callable[[str, str, "Record | None"], None]
"""Told of each write, in order, under the store's lock: (type, id, record or None if archived)."""
Inverse = Callable[[str, str, str, int], "int | None"]
"""(from type, to type, category, type id) -> the type id of the same association read from
`to_type`'s end, or None where it reads from its own end only (`Portal.inverse_type_id`)."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """Thread-safe record store; every write is one transaction."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.on_write: OnWrite | None = None
        self.inverse_type_id: Inverse = default_inverse_type_id
        """How a link stored from one end reads from the other: the default portal's pairs
        (HubSpot's default types, the portal's labels) unless told its own portal's."""
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
        """(object type, property) -> value -> ids of live records, for the pairs looked up so
        far (built on the first lookup): unique-value checks and idProperty lookups then answer
        as fast from a full portal as from an empty one. Tuples of strings, which the garbage
        collector stops tracking, not sets, which it would scan on every full collection."""
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_id', ?)", (str(FIRST_ID),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def seed(self, object_type: str, records: Iterable[tuple[str, dict[str, str]]]) -> None:
        """Records the portal held before (made by hand, as a person does in HubSpot)."""
        stamp = now_iso()
        made = {**RecordSource.by_hand().properties(), "createdate": stamp}
        rows = [
            {**props, **made, "hs_lastmodifieddate": stamp, "hs_object_id": rid}
            for rid, props in records
        ]
        with self._lock:
            self._db.execute(
                _INSERT_RECORDS.format(verb="OR IGNORE"),
                (object_type, stamp, stamp, orjson.dumps(rows).decode()),
            )
            for props in rows:
                self._indexes(object_type, props["hs_object_id"], props, add=True)
                self._written(object_type, self._record(props["hs_object_id"], props, stamp, stamp))

    def _written(self, object_type: str, record: Record, *, archived: bool = False) -> None:
        if self.on_write is not None:
            self.on_write(object_type, record["id"], None if archived else record)

    def everything(self) -> Iterator[tuple[str, Record]]:
        """Every live record with its type (to build the search index from)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT object_type, id, properties, created_at, updated_at FROM records "
                "WHERE archived = 0"
            ).fetchall()
        for object_type, rid, props, created, updated in rows:
            yield object_type, self._record(rid, orjson.loads(props), created, updated)

    def exists(self, object_type: str, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM records WHERE object_type = ? AND archived = 0 "
                f"AND id IN ({marks})",
                [object_type, *wanted],
            ).fetchall()
        return {r[0] for r in rows}

    def create_many(
        self,
        object_type: str,
        inputs: list[tuple[dict[str, str], list[tuple[str, str, str, int]]]],
        source: RecordSource | None = None,
    ) -> list[Record]:
        """Create records (properties, [(to_type, to_id, category, type_id)]) in one
        transaction, each stamped with its `source` as HubSpot stamps every record: by
        default a write of the app every token belongs to (DEFAULT_APP_ID), as an earlier
        import would have made it; `RecordSource.by_hand()` for a person's create in HubSpot's
        app, `RecordSource.app(n)` for another app's."""
        stamp = now_iso()
        made = (source or RecordSource.app(DEFAULT_APP_ID)).properties()
        created = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                next_id = int(
                    self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()[0]
                )
                rows, links_rows = [], []
                for properties, links in inputs:
                    rid = str(next_id)
                    next_id += 1
                    props = {
                        **properties,
                        **made,
                        "hs_object_id": rid,
                        "createdate": stamp,
                        "hs_lastmodifieddate": stamp,
                    }
                    rows.append(props)
                    links_rows += [(object_type, rid, t, tid, c, n) for t, tid, c, n in links]
                    created.append(self._record(rid, props, stamp, stamp))
                self._db.execute(
                    _INSERT_RECORDS.format(verb=""),
                    (object_type, stamp, stamp, orjson.dumps(rows).decode()),
                )
                self._db.executemany(
                    "INSERT INTO associations VALUES (?, ?, ?, ?, ?, ?)", links_rows
                )
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_id'", (str(next_id),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for props, record in zip(rows, created, strict=True):
                self._indexes(object_type, props["hs_object_id"], props, add=True)
                self._written(object_type, record)
        return created

    def update(self, object_type: str, rid: str, properties: dict[str, str]) -> Record | None:
        """Merge `properties` into a record; None if there is no such record."""
        stamp = now_iso()
        with self._lock:
            row = self._db.execute(
                "SELECT properties, created_at FROM records "
                "WHERE object_type = ? AND id = ? AND archived = 0",
                (object_type, rid),
            ).fetchone()
            if row is None:
                return None
            old = orjson.loads(row[0])
            props = {**old, **properties, "hs_lastmodifieddate": stamp}
            self._db.execute(
                "UPDATE records SET properties = ?, updated_at = ? WHERE id = ?",
                (orjson.dumps(props).decode(), stamp, rid),
            )
            self._indexes(object_type, rid, old, add=False)
            self._indexes(object_type, rid, props, add=True)
            record = self._record(rid, props, row[1], stamp)
            self._written(object_type, record)
        return record

    def _indexes(self, object_type: str, rid: str, props: dict[str, str], *, add: bool) -> None:
        """Add a record to (or drop it from) the value indexes of its type. Under the lock."""
        for (indexed_type, prop), by_value in self._index.items():
            value = props.get(prop)
            if indexed_type != object_type or not value:
                continue
            held = by_value.get(value, ())
            if add and rid not in held:
                by_value[value] = (*held, rid)
            elif not add and rid in held:
                by_value[value] = tuple(h for h in held if h != rid)

    def archive(self, object_type: str, ids: Iterable[str]) -> None:
        """Archive records (unknown ids are ignored, as HubSpot does)."""
        stamp = now_iso()
        ids = list(ids)
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._lock:
            archived = self._db.execute(
                "UPDATE records SET archived = 1, updated_at = ? WHERE object_type = ? "
                f"AND archived = 0 AND id IN ({marks}) RETURNING id, properties",
                [stamp, object_type, *ids],
            ).fetchall()
            for rid, props in archived:
                self._indexes(object_type, rid, orjson.loads(props), add=False)
                self._written(object_type, {"id": rid}, archived=True)

    def merge(self, object_type: str, loser: str, winner: str) -> None:
        """Merge record `loser` into `winner`, as a person does in HubSpot: the loser is
        gone, its id leads to the winner, and the winner lists it in hs_merged_object_ids."""
        stamp = now_iso()
        with self._lock:
            row = self._db.execute(
                "SELECT properties, created_at FROM records WHERE object_type = ? AND id = ?",
                (object_type, winner),
            ).fetchone()
            lost = self._db.execute(
                "SELECT properties FROM records WHERE object_type = ? AND id = ? AND archived = 0",
                (object_type, loser),
            ).fetchone()
            if row is None or lost is None:
                raise KeyError(f"no {object_type} {loser} or {winner} to merge")
            props = orjson.loads(row[0])
            merged = [m for m in str(props.get("hs_merged_object_ids") or "").split(";") if m]
            props["hs_merged_object_ids"] = ";".join([*merged, loser])
            props["hs_lastmodifieddate"] = stamp
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE records SET archived = 1, updated_at = ? WHERE id = ?", (stamp, loser)
            )
            self._db.execute(
                "UPDATE records SET properties = ?, updated_at = ? WHERE id = ?",
                (orjson.dumps(props).decode(), stamp, winner),
            )
            self._db.execute(
                "UPDATE merges SET into_id = ? WHERE object_type = ? AND into_id = ?",
                (winner, object_type, loser),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO merges VALUES (?, ?, ?)", (object_type, loser, winner)
            )
            self._db.execute("COMMIT")
            self._indexes(object_type, loser, orjson.loads(lost[0]), add=False)
            self._written(object_type, {"id": loser}, archived=True)
            self._written(object_type, self._record(winner, props, row[1], stamp))

    def merged_into(self, object_type: str, ids: Iterable[str]) -> dict[str, str]:
        """Merged-away id -> the id of the record it was merged into."""
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                "SELECT from_id, into_id FROM merges "
                f"WHERE object_type = ? AND from_id IN ({marks})",
                [object_type, *wanted],
            ).fetchall()
        return dict(rows)

    def find(self, object_type: str, prop: str, values: Iterable[str]) -> dict[str, list[str]]:
        """value -> ids of the live records whose `prop` has that value (indexed lookups, so a
        full portal answers as fast as an empty one)."""
        with self._lock:
            by_value = self._index.get((object_type, prop))
            if by_value is None:  # first lookup: index what exists, then keep it up to date
                by_value = self._index[(object_type, prop)] = {}
                for rid, props in self._db.execute(
                    "SELECT id, properties FROM records WHERE object_type = ? AND archived = 0",
                    (object_type,),
                ):
                    if value := orjson.loads(props).get(prop):
                        by_value[value] = (*by_value.get(value, ()), rid)
            return {
                value: sorted(by_value[value], key=int) for value in values if by_value.get(value)
            }

    def scan(self, object_type: str) -> list[Record]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, properties, created_at, updated_at FROM records "
                "WHERE object_type = ? AND archived = 0 ORDER BY CAST(id AS INTEGER)",
                (object_type,),
            ).fetchall()
        return [self._record(r[0], orjson.loads(r[1]), r[2], r[3]) for r in rows]

    def get(self, object_type: str, rid: str, *, archived: bool = False) -> Record | None:
        """A live record (or, with `archived`, an archived one) by id."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, properties, created_at, updated_at FROM records "
                "WHERE object_type = ? AND id = ? AND archived = ?",
                (object_type, rid, int(archived)),
            ).fetchone()
        return self._record(row[0], orjson.loads(row[1]), row[2], row[3], archived) if row else None

    def page(
        self, object_type: str, after: str | None, limit: int, *, archived: bool = False
    ) -> list[Record]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, properties, created_at, updated_at FROM records "
                "WHERE object_type = ? AND archived = ? AND CAST(id AS INTEGER) > ? "
                "ORDER BY CAST(id AS INTEGER) LIMIT ?",
                (object_type, int(archived), int(after or 0), limit),
            ).fetchall()
        return [self._record(r[0], orjson.loads(r[1]), r[2], r[3], archived) for r in rows]

    def count(self, object_type: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM records WHERE object_type = ? AND archived = 0",
                (object_type,),
            ).fetchone()
        return int(row[0])

    def associations(self, object_type: str, rid: str) -> list[tuple[str, str, str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT to_type, to_id, category, type_id FROM associations "
                "WHERE from_type = ? AND from_id = ?",
                (object_type, rid),
            ).fetchall()
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def linked(self, object_type: str, rid: str, to_type: str) -> list[tuple[str, str, int, bool]]:
        """A record's links to records of `to_type`: (id, category, type id, outgoing).
        A link reads from both ends, as in HubSpot, with each end's type id; one whose type
        has no other half (`inverse_type_id`) reads from its own end only."""
        with self._lock:
            outgoing = self._db.execute(
                "SELECT to_id, category, type_id FROM associations "
                "WHERE from_type = ? AND from_id = ? AND to_type = ?",
                (object_type, rid, to_type),
            ).fetchall()
            incoming = self._db.execute(
                "SELECT from_id, category, type_id FROM associations "
                "WHERE to_type = ? AND to_id = ? AND from_type = ?",
                (object_type, rid, to_type),
            ).fetchall()
        found = [(r[0], r[1], int(r[2]), True) for r in outgoing]
        for from_id, category, type_id in incoming:
            back = self.inverse_type_id(to_type, object_type, category, int(type_id))
            if back is not None:
                found.append((from_id, category, back, False))
        return found

    def link(
        self,
        from_type: str,
        to_type: str,
        pairs: list[tuple[str, str, list[tuple[str, int]]]],
    ) -> list[list[tuple[str, int]]]:
        """Add to each (from id, to id) pair the `types` (category, type id) it lacks; a type
        a pair has is not repeated. Returns each pair's types afterwards, seen from `from_type`."""
        with self._lock:
            have = self._pairs(from_type, to_type, {f for f, _, _ in pairs})
            rows = []
            after = []
            for from_id, to_id, types in pairs:
                now = have.setdefault((from_id, to_id), [])
                for c, n in types:
                    if (c, n) not in now:
                        now.append((c, n))
                        rows.append((from_type, from_id, to_type, to_id, c, n))
                after.append(list(now))
            self._db.executemany("INSERT INTO associations VALUES (?, ?, ?, ?, ?, ?)", rows)
            return after

    def pair_types(
        self, from_type: str, from_id: str, to_type: str, to_id: str
    ) -> list[tuple[str, int]]:
        with self._lock:
            return self._pairs(from_type, to_type, {from_id}).get((from_id, to_id), [])

    def _pairs(
        self, from_type: str, to_type: str, from_ids: set[str]
    ) -> dict[tuple[str, str], list[tuple[str, int]]]:
        """(from id, to id) -> types, for every pair of the given records to `to_type`: their
        own rows, and the rows stored from the other end that read from this one (with this
        end's type id)."""
        found: dict[tuple[str, str], list[tuple[str, int]]] = {}
        wanted = list(from_ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for f, t, c, n in self._db.execute(
                f"SELECT from_id, to_id, category, type_id FROM associations WHERE "
                f"from_type = ? AND to_type = ? AND from_id IN ({marks})",
                (from_type, to_type, *chunk),
            ):
                kinds = found.setdefault((f, t), [])
                if (c, int(n)) not in kinds:
                    kinds.append((c, int(n)))
            for t, f, c, n in self._db.execute(
                f"SELECT from_id, to_id, category, type_id FROM associations WHERE "
                f"from_type = ? AND to_type = ? AND to_id IN ({marks})",
                (to_type, from_type, *chunk),
            ):
                back = self.inverse_type_id(to_type, from_type, c, int(n))
                if back is None:
                    continue
                kind = (c, back)
                kinds = found.setdefault((f, t), [])
                if kind not in kinds:
                    kinds.append(kind)
        return found

    def unlink(
        self,
        from_type: str,
        to_type: str,
        pairs: list[tuple[str, str, list[tuple[str, int]] | None]],
    ) -> None:
        """Remove from each (from id, to id) pair its `types`, or every type between them
        (None). Removing the unlabelled HUBSPOT_DEFINED type removes the pair's labelled ones
        too, as in HubSpot."""
        default = DEFAULT_ASSOCIATION_TYPES.get(from_type, {}).get(to_type)
        some: list[tuple[str, str, str, str, str, int]] = []
        every: list[tuple[str, str, str, str]] = []
        for from_id, to_id, types in pairs:
            if types is None or ("HUBSPOT_DEFINED", default) in types:
                every += [
                    (from_type, from_id, to_type, to_id),
                    (to_type, to_id, from_type, from_id),
                ]
                continue
            for c, n in types:
                some.append((from_type, from_id, to_type, to_id, c, n))
                back = self.inverse_type_id(from_type, to_type, c, n)
                if back is not None:
                    some.append((to_type, to_id, from_type, from_id, c, back))
        with self._lock:
            self._db.executemany(
                "DELETE FROM associations WHERE from_type = ? AND from_id = ? AND to_type = ? "
                "AND to_id = ? AND category = ? AND type_id = ?",
                some,
            )
            self._db.executemany(
                "DELETE FROM associations WHERE from_type = ? AND from_id = ? AND to_type = ? "
                "AND to_id = ?",
                every,
            )

    @staticmethod
    def _record(
        rid: str, props: dict[str, str], created: str, updated: str, archived: bool = False
    ) -> Record:
        record: Record = {
            "id": rid,
            "properties": props,
            "createdAt": created,
            "updatedAt": updated,
            "archived": archived,
        }
        if archived:
            record["archivedAt"] = updated
        return record
