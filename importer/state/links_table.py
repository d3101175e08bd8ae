"""The journal's tables of links and run data: the links this tool made per row (so `sync`
removes only its own), the links it is about to send (so a run killed mid-stage leaves word
of what it may have made), the links a row's cell lists that others made, every link change
a run made (for undo), and each run's rows and outcome (for `show RUN --out`). A mixin of
`Journal`, sharing its connection."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import JournalTables

__all__ = ["INLINE", "LINKS_SCHEMA", "LinkFindings", "LinkTables"]

LINKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS link_intents (
    -- Links about to be sent, written before the request leaves and cleared once HubSpot's
    -- answer says what became of them: one left behind is a link a stopped (killed) run may
    -- have made, which is this tool's if HubSpot holds it (the run read it absent first).
    row_key TEXT NOT NULL,
    association TEXT NOT NULL,
    -- '' (INLINE) for a link sent with its record on batch/create, before the record had an
    -- id: it is the record's that the journal says run_id created for row_key.
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (row_key, association, to_id)
);
CREATE TABLE IF NOT EXISTS links_found (
    -- Links a row's cell lists that HubSpot held before this tool sent them (made by a person
    -- or another tool): never this tool's, so never removed by `sync` nor by undo; kept so
    -- later runs need not read them again.
    row_key TEXT NOT NULL,
    association TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (row_key, association, to_id)
);
"""

_CHUNK = 900
"""Row keys per query: SQLite's bound-parameter limit, with room for the others."""

INLINE = ""
"""The record id of an intent sent inline on batch/create: not known until HubSpot answers."""


@dataclass(kw_only=True)
class LinkFindings:
    """What reading one association's links from HubSpot taught about the journal's."""

    adopted: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(run id, row key, from id, to id): links a stopped run of this tool meant to make
    (`link_intents`) that HubSpot holds: that run's, recorded now as it made them."""
    found: list[tuple[str, str, str]] = field(default_factory=list)
    """(row key, from id, to id): links the cell lists that others made."""
    forgotten: list[tuple[str, str]] = field(default_factory=list)
    """(row key, to id): intents HubSpot does not hold (never made), and others' links the
    cell no longer lists or HubSpot no longer holds."""

    def __bool__(self) -> bool:
        return bool(self.adopted or self.found or self.forgotten)


class LinkTables(JournalTables):
    """Methods of `Journal` over the `links`, `link_changes` and `run_data` tables."""

    # --- links ---------------------------------------------------------------------------------

    def made_links(self, association: str, row_keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Row key -> {target id: record id it was made from} of the links this tool made for
        `association`."""
        found: dict[str, dict[str, str]] = {}
        for key, to_id, from_id in self._per_row("links", "from_id", association, row_keys):
            found.setdefault(key, {})[to_id] = from_id
        return found

    def links_found(self, association: str, row_keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Row key -> {target id: record id} of the links the row's cell lists that others
        made (`links_found`)."""
        found: dict[str, dict[str, str]] = {}
        for key, to_id, from_id in self._per_row("links_found", "from_id", association, row_keys):
            found.setdefault(key, {})[to_id] = from_id
        return found

    def link_intents(
        self, association: str, row_keys: Iterable[str]
    ) -> dict[str, dict[str, tuple[str, str]]]:
        """Row key -> {target id: (record id, run id)} of the links a run was about to send
        and never heard back about (`link_intents`)."""
        found: dict[str, dict[str, tuple[str, str]]] = {}
        for key, to_id, from_id, run_id in self._per_row(
            "link_intents", "from_id, run_id", association, row_keys
        ):
            found.setdefault(key, {})[to_id] = (from_id, run_id)
        return found

    def _per_row(
        self, table: str, columns: str, association: str, row_keys: Iterable[str]
    ) -> Iterator[tuple[Any, ...]]:
        """(row key, to id, *`columns`) of `table`'s rows for `association` and `row_keys`."""
        wanted = list(row_keys)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT row_key, to_id, {columns} FROM {table} WHERE association = ? "
                f"AND row_key IN ({marks})",
                (association, *chunk),
            )

    def intend_links(
        self, run_id: str, association: str, pairs: Sequence[tuple[str, str, str]]
    ) -> None:
        """Links (row key, from id, to id) about to be sent: written before the request leaves."""
        with self._txn() as db:
            db.executemany(
                "INSERT INTO link_intents VALUES (?, ?, ?, ?, ?) ON CONFLICT (row_key, "
                "association, to_id) DO UPDATE SET from_id = excluded.from_id, "
                "run_id = excluded.run_id",
                [(key, association, f, t, run_id) for key, f, t in pairs],
            )

    def intend_inline(
        self, run_id: str, row_keys: Sequence[str], links: Sequence[tuple[str, str, str]]
    ) -> None:
        """Links (row key, association, to id) about to be sent inline with the records of
        `row_keys` on batch/create: written before the request leaves, in place of every
        intent the rows had (a row created again has no earlier record to link from)."""
        with self._txn() as db:
            db.executemany("DELETE FROM link_intents WHERE row_key = ?", [(k,) for k in row_keys])
            db.executemany(
                "INSERT INTO link_intents VALUES (?, ?, ?, ?, ?) ON CONFLICT (row_key, "
                "association, to_id) DO UPDATE SET from_id = excluded.from_id, "
                "run_id = excluded.run_id",
                [(key, association, INLINE, t, run_id) for key, association, t in links],
            )

    def drop_inline_intents(self, run_id: str, keep: Collection[str]) -> None:
        """Forget the inline intents `run_id` left but for the rows `keep` (rows whose create
        is uncertain): the others' records were created and their links recorded, or were
        never created."""
        left = {
            key
            for (key,) in self._db.execute(
                "SELECT DISTINCT row_key FROM link_intents WHERE run_id = ? AND from_id = ?",
                (run_id, INLINE),
            )
        }
        gone = [(key, run_id, INLINE) for key in left - set(keep)]
        if gone:
            with self._txn() as db:
                db.executemany(
                    "DELETE FROM link_intents WHERE row_key = ? AND run_id = ? AND from_id = ?",
                    gone,
                )

    def settle_findings(
        self,
        association: str,
        link_types: str,
        findings: LinkFindings,
        *,
        from_type: str,
        to_type: str,
        run_id: str,
    ) -> None:
        """Keep what a read of `association`'s links found (`LinkFindings`): each adopted
        link recorded as its run made it, others' links noted, the rest forgotten."""
        runs: dict[str, list[tuple[str, str, str]]] = {}
        for made_by, key, f, t in findings.adopted:
            runs.setdefault(made_by, []).append((key, f, t))
        for made_by, added in runs.items():
            self.record_links(
                made_by, association, link_types, from_type=from_type, to_type=to_type, added=added
            )
        with self._txn() as db:
            gone = [(key, association, t) for key, t in findings.forgotten]
            for table in ("link_intents", "links_found"):
                db.executemany(
                    f"DELETE FROM {table} WHERE row_key = ? AND association = ? AND to_id = ?",
                    gone,
                )
            db.executemany(
                "INSERT INTO links_found VALUES (?, ?, ?, ?, ?) ON CONFLICT (row_key, "
                "association, to_id) DO UPDATE SET from_id = excluded.from_id, "
                "run_id = excluded.run_id",
                [(key, association, f, t, run_id) for key, f, t in findings.found],
            )

    def record_links(
        self,
        run_id: str,
        association: str,
        link_types: str,
        *,
        from_type: str,
        to_type: str,
        added: Sequence[tuple[str, str, str]] = (),
        removed: Sequence[tuple[str, str, str]] = (),
        made: bool = True,
        settled: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Links HubSpot confirmed: (row key, from id, to id) added and removed. `made=False`:
        made with the record (inline on batch/create), so not a change of their own to undo.
        The intents of the links added and of those `settled` (refused) are done with."""
        with self._txn() as db:
            db.executemany(
                "DELETE FROM link_intents WHERE row_key = ? AND association = ? AND to_id = ?",
                [(key, association, t) for key, _, t in (*added, *settled)],
            )
            # A link this tool made is no longer someone else's (a run now adds it).
            db.executemany(
                "DELETE FROM links_found WHERE row_key = ? AND association = ? AND to_id = ?",
                [(key, association, t) for key, _, t in added],
            )
            db.executemany(
                "INSERT INTO links VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (row_key, association, "
                "to_id) DO UPDATE SET from_id = excluded.from_id, types = excluded.types, "
                "run_id = excluded.run_id",
                [(key, association, f, t, link_types, run_id) for key, f, t in added],
            )
            db.executemany(
                "DELETE FROM links WHERE row_key = ? AND association = ? AND to_id = ?",
                [(key, association, t) for key, _, t in removed],
            )
            if made:
                db.executemany(
                    "INSERT INTO link_changes (run_id, from_type, to_type, from_id, to_id, types, "
                    "change) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, from_type, to_type, f, t, link_types, "add") for _, f, t in added]
                    + [
                        (run_id, from_type, to_type, f, t, link_types, "remove")
                        for _, f, t in removed
                    ],
                )

    def link_changes(self, run_id: str) -> list[dict[str, Any]]:
        """The links `run_id` added or removed and no undo has reverted yet."""
        cur = self._db.execute(
            "SELECT rowid, from_type, to_type, from_id, to_id, types, change FROM link_changes "
            "WHERE run_id = ? AND undone = 0 ORDER BY rowid",
            (run_id,),
        )
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def link_changes_undone(self, rowids: Sequence[int]) -> None:
        with self._txn() as db:
            db.executemany(
                "UPDATE link_changes SET undone = 1 WHERE rowid = ?", [(r,) for r in rowids]
            )
            # What undo put back is no longer a link this tool made, nor one it removed.
            db.executemany(
                "DELETE FROM links WHERE (from_id, to_id) IN (SELECT from_id, to_id FROM "
                "link_changes WHERE rowid = ? AND change = 'add')",
                [(r,) for r in rowids],
            )

    def keep_run_data(self, run_id: str, part: str, data: bytes, *, keep_runs: int) -> None:
        """Keep `data` for `run_id`; the data of all but the newest `keep_runs` runs goes."""
        with self._txn() as db:
            db.execute(
                "INSERT INTO run_data VALUES (?, ?, ?) ON CONFLICT (run_id, part) DO UPDATE "
                "SET data = excluded.data",
                (run_id, part, data),
            )
            db.execute(
                "DELETE FROM run_data WHERE run_id NOT IN (SELECT run_id FROM runs "
                "ORDER BY started DESC, run_id DESC LIMIT ?) AND run_id != ?",
                (keep_runs, run_id),
            )

    def run_data(self, run_id: str, part: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM run_data WHERE run_id = ? AND part = ?", (run_id, part)
        ).fetchone()
        return bytes(row[0]) if row else None

    def sent_rows(self, run_id: str) -> list[tuple[int, int, str | None, str | None]]:
        """(batch id, sheet row, outcome or None while in flight, HubSpot id) of every row the
        run sent, in the order sent: a row sent twice (a retry) ends with its last outcome."""
        return [
            (batch_id, row.source_row, outcome, hid)
            for batch_id, items in self._db.execute(
                "SELECT batch_id, items FROM batches WHERE run_id = ? ORDER BY batch_id", (run_id,)
            ).fetchall()
            for row, outcome, hid in self._rows_of(batch_id, items)
        ]
