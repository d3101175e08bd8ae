"""The journal's `runs` and `undone` tables: each run's description, counts and workbook, and
what undo archived of it (an undo stopped part way is resumed). A mixin of `Journal`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from ..sheets.fingerprint import Fingerprint
from .records import JournalTables, Outcome, _now

__all__ = ["RunTables"]


class RunTables(JournalTables):
    """Methods of `Journal` over the `runs` and `undone` tables."""

    def start_run(
        self,
        run_id: str,
        *,
        input_file: str,
        sheet: str | None,
        mapping_file: str,
        mode: str,
        base_url: str,
        object_type: str,
    ) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT INTO runs (run_id, started, input_file, sheet, mapping_file, mode, "
                "base_url, object_type, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    _now(),
                    input_file,
                    sheet,
                    mapping_file,
                    mode,
                    base_url,
                    object_type,
                    os.getpid(),
                ),
            )

    def run(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["run_id"] == run_id), None)

    def written_by(self, run_id: str) -> dict[str, list[tuple[str, str]]]:
        """Records a run created and updated: 'created'/'updated' -> [(row key, HubSpot id)]."""
        found: dict[str, list[tuple[str, str]]] = {"created": [], "updated": []}
        wrote = (Outcome.CREATED.value, Outcome.FOUND.value, Outcome.UPDATED.value)
        for batch_id, items in self._db.execute(
            "SELECT batch_id, items FROM batches WHERE run_id = ? ORDER BY batch_id", (run_id,)
        ).fetchall():
            for row, outcome, hid in self._rows_of(batch_id, items):
                if outcome in wrote and hid is not None:
                    kind = "updated" if outcome == Outcome.UPDATED else "created"
                    found[kind].append((row.row_key, hid))
        return found

    def record_undo(
        self, run_id: str, archived: Sequence[tuple[str, str]], *, complete: bool
    ) -> None:
        """Records of the run were archived: remember each (an undo that stops part way is
        resumed by the next), and forget their rows, so they can be created again. With
        `complete`, every record the run created is archived: the run is undone."""
        now = _now()
        with self._txn() as db:
            for row_key, hid in archived:
                db.execute("DELETE FROM rows WHERE row_key = ? AND hubspot_id = ?", (row_key, hid))
                db.execute(
                    "INSERT OR IGNORE INTO undone (run_id, hubspot_id, archived) VALUES (?, ?, ?)",
                    (run_id, hid, now),
                )
            (total,) = db.execute(
                "SELECT COUNT(*) FROM undone WHERE run_id = ?", (run_id,)
            ).fetchone()
            db.execute(
                "UPDATE runs SET undone = ?, archived = ? WHERE run_id = ?",
                (now if complete else None, total, run_id),
            )

    def archived_by_undo(self, run_id: str) -> set[str]:
        """Ids of the run's records an undo has archived so far."""
        return {
            hid
            for (hid,) in self._db.execute(
                "SELECT hubspot_id FROM undone WHERE run_id = ?", (run_id,)
            )
        }

    def finish_run(
        self, run_id: str, *, counts: dict[str, int], workbook: str | None, stopped_by: str | None
    ) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE runs SET finished = ?, counts = ?, workbook = ?, stopped_by = ? "
                "WHERE run_id = ?",
                (_now(), json.dumps(counts), workbook, stopped_by, run_id),
            )

    def record_input(
        self, run_id: str, *, fingerprint: Fingerprint | None, settings: str | None
    ) -> None:
        """What the run read: its input's fingerprint, and the digest of its mapping and of
        the options that read the input (`run --skip-unchanged` compares both)."""
        found = json.dumps(fingerprint.as_json()) if fingerprint is not None else None
        with self._txn() as db:
            db.execute(
                "UPDATE runs SET input_fingerprint = ?, run_settings = ? WHERE run_id = ?",
                (found, settings, run_id),
            )

    def record_workbook(self, run_id: str, workbook: str) -> None:
        with self._txn() as db:
            db.execute("UPDATE runs SET workbook = ? WHERE run_id = ?", (workbook, run_id))

    def runs(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM runs ORDER BY started, run_id")
        names = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            record = dict(zip(names, row, strict=True))
            record["counts"] = json.loads(record["counts"]) if record["counts"] else {}
            found = record.get("input_fingerprint")
            record["input_fingerprint"] = json.loads(found) if found else None
            out.append(record)
        return out
