"""The sandbox's records, in SQLite: in memory by default, or a file a user can inspect."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prop_index (
    object_type TEXT NOT NULL,
    prop TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS prop_index_lookup ON prop_index (object_type, prop, value);
CREATE INDEX IF NOT EXISTS prop_index_id ON prop_index (id);
"""

Record = dict[str, Any]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """Thread-safe record store; every write is one transaction."""

    def __init__(self, path: Path | str | None = None) -> None:
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._lock = threading.Lock()
        self._indexed: set[tuple[str, str]] = set()
        """(object type, property) pairs kept in prop_index: built on first lookup."""
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_id', ?)", (str(FIRST_ID),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def seed(self, object_type: str, records: Iterable[tuple[str, dict[str, str]]]) -> None:
        stamp = now_iso()
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, 0)",
                [(rid, object_type, json.dumps(props), stamp, stamp) for rid, props in records],
            )

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
        self, object_type: str, inputs: list[tuple[dict[str, str], list[tuple[str, str, str, int]]]]
    ) -> list[Record]:
        """Create records (properties, [(to_type, to_id, category, type_id)]) in one transaction."""
        stamp = now_iso()
        created = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                next_id = int(
                    self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()[0]
                )
                rows, links_rows, index_rows = [], [], []
                for properties, links in inputs:
                    rid = str(next_id)
                    next_id += 1
                    props = {
                        **properties,
                        "hs_object_id": rid,
                        "createdate": stamp,
                        "hs_lastmodifieddate": stamp,
                    }
                    rows.append((rid, object_type, json.dumps(props), stamp, stamp))
                    links_rows += [(object_type, rid, t, tid, c, n) for t, tid, c, n in links]
                    index_rows += self._index_rows(object_type, rid, props)
                    created.append(self._record(rid, props, stamp, stamp))
                # One statement per table: a batch is one round of SQLite work, not hundreds.
                self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, 0)", rows)
                self._db.executemany(
                    "INSERT INTO associations VALUES (?, ?, ?, ?, ?, ?)", links_rows
                )
                self._db.executemany("INSERT INTO prop_index VALUES (?, ?, ?, ?)", index_rows)
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_id'", (str(next_id),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
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
            props = {**json.loads(row[0]), **properties, "hs_lastmodifieddate": stamp}
            self._db.execute(
                "UPDATE records SET properties = ?, updated_at = ? WHERE id = ?",
                (json.dumps(props), stamp, rid),
            )
            self._db.execute("DELETE FROM prop_index WHERE id = ?", (rid,))
            self._db.executemany(
                "INSERT INTO prop_index VALUES (?, ?, ?, ?)",
                self._index_rows(object_type, rid, props),
            )
        return self._record(rid, props, row[1], stamp)

    def _index_rows(
        self, object_type: str, rid: str, props: dict[str, str]
    ) -> list[tuple[str, str, str, str]]:
        """prop_index rows for a record: its values of the properties looked up so far."""
        return [
            (object_type, p, props[p], rid)
            for t, p in self._indexed
            if t == object_type and props.get(p)
        ]

    def archive(self, object_type: str, ids: Iterable[str]) -> None:
        """Archive records (unknown ids are ignored, as HubSpot does)."""
        stamp = now_iso()
        with self._lock:
            ids = list(ids)
            self._db.executemany(
                "UPDATE records SET archived = 1, updated_at = ? WHERE object_type = ? AND id = ?",
                [(stamp, object_type, rid) for rid in ids],
            )
            self._db.executemany("DELETE FROM prop_index WHERE id = ?", [(rid,) for rid in ids])

    def find(self, object_type: str, prop: str, values: Iterable[str]) -> dict[str, list[str]]:
        """value -> ids of the live records whose `prop` has that value (indexed lookups, so a
        full portal answers as fast as an empty one)."""
        wanted = list(dict.fromkeys(values))
        if (object_type, prop) not in self._indexed:
            records = self.scan(object_type)
            with self._lock:
                self._indexed.add((object_type, prop))
                self._db.execute(
                    "DELETE FROM prop_index WHERE object_type = ? AND prop = ?", (object_type, prop)
                )
                self._db.executemany(
                    "INSERT INTO prop_index VALUES (?, ?, ?, ?)",
                    [
                        (object_type, prop, r["properties"][prop], r["id"])
                        for r in records
                        if r["properties"].get(prop)
                    ],
                )
        found: dict[str, list[str]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for value, rid in self._db.execute(
                    "SELECT value, id FROM prop_index WHERE object_type = ? AND prop = ? "
                    f"AND value IN ({marks}) ORDER BY CAST(id AS INTEGER)",
                    [object_type, prop, *chunk],
                ):
                    found.setdefault(value, []).append(rid)
        return found

    def scan(self, object_type: str) -> list[Record]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, properties, created_at, updated_at FROM records "
                "WHERE object_type = ? AND archived = 0 ORDER BY CAST(id AS INTEGER)",
                (object_type,),
            ).fetchall()
        return [self._record(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]

    def get(self, object_type: str, rid: str) -> Record | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, properties, created_at, updated_at FROM records "
                "WHERE object_type = ? AND id = ? AND archived = 0",
                (object_type, rid),
            ).fetchone()
        return self._record(row[0], json.loads(row[1]), row[2], row[3]) if row else None

    def page(self, object_type: str, after: str | None, limit: int) -> list[Record]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, properties, created_at, updated_at FROM records "
                "WHERE object_type = ? AND archived = 0 AND CAST(id AS INTEGER) > ? "
                "ORDER BY CAST(id AS INTEGER) LIMIT ?",
                (object_type, int(after or 0), limit),
            ).fetchall()
        return [self._record(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]

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

    @staticmethod
    def _record(rid: str, props: dict[str, str], created: str, updated: str) -> Record:
        return {
            "id": rid,
            "properties": props,
            "createdAt": created,
            "updatedAt": updated,
            "archived": False,
        }
