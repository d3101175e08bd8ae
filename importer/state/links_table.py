"""The journal's tables of links and run data: the links this tool made per row (so `sync`
removes only its own), every link change a run made (for undo), and each run's rows and
outcome (for `show RUN --out`). A mixin of `Journal`, sharing its connection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .records import JournalTables

__all__ = ["LinkTables"]


class LinkTables(JournalTables):
    """Methods of `Journal` over the `links`, `link_changes` and `run_data` tables."""

    # --- links ---------------------------------------------------------------------------------

    def made_links(self, association: str, row_keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Row key -> {target id: record id it was made from} of the links this tool made for
        `association`."""
        wanted = list(row_keys)
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for key, to_id, from_id in self._db.execute(
                f"SELECT row_key, to_id, from_id FROM links WHERE association = ? "
                f"AND row_key IN ({marks})",
                (association, *chunk),
            ):
                found.setdefault(key, {})[to_id] = from_id
        return found

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
    ) -> None:
        """Links HubSpot confirmed: (row key, from id, to id) added and removed. `made=False`:
        made with the record (inline on batch/create), so not a change of their own to undo."""
        with self._txn() as db:
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
