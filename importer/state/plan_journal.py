"""The plan journal: one SQLite file per plan and portal, recording each run of the plan.

A plan's records live in the journals of their portal and object type, shared with
single-sheet runs (`run --mapping`), so that a catalogue imported now by the plan and now on
its own has one history and one lock, and is never created twice. What the plan journal adds
is the plan run as a whole: when it ran, which run of which journal each step was (the step's
run id is written down before the step sends anything), how each step ended, the plan's
workbook; and the plan's lock, so that a second run of the same plan stops before it starts
instead of half way. `runs`, `show PLAN-RUN [--out]` and `undo PLAN-RUN` read it.

    <state-dir>/plans/<host>-portal<id>-<plan name>-<hash of its path>.sqlite
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .paths import PLANS_FOLDER, plan_journal_path
from .records import _immediate, _now, _release_lock, _take_lock, keep_private

__all__ = [
    "PLAN_RUN_PREFIX",
    "PlanJournal",
    "PlannedStep",
    "list_plan_runs",
    "plan_journal_path",
]

PLAN_RUN_PREFIX = "plan-"
"""Plan run ids start so (`plan-20261202T212027Z-3f9a1c`): told apart from step runs' ids."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan_runs (
    plan_run_id TEXT PRIMARY KEY,
    plan_file TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    base_url TEXT NOT NULL,
    portal TEXT,
    stopped_by TEXT,
    workbook TEXT,
    retry_file TEXT,
    undone TEXT,
    pid INTEGER,
    plan_digest TEXT  -- the plan file's SHA-256 (run --skip-unchanged)
);
CREATE TABLE IF NOT EXISTS plan_steps (
    plan_run_id TEXT NOT NULL REFERENCES plan_runs (plan_run_id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    object_type TEXT NOT NULL,
    input_file TEXT NOT NULL,
    sheet TEXT,
    mapping_file TEXT NOT NULL,
    journal TEXT NOT NULL,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL,
    counts TEXT,
    requests INTEGER,
    note TEXT,
    PRIMARY KEY (plan_run_id, position)
);
"""

_ADDED_COLUMNS = (("plan_runs", "plan_digest", "TEXT"),)  # older: the plan file's was not kept
"""Columns later versions added to a table: a plan journal an older version made gets them."""

STEP_WAITING = "waiting"
STEP_RUNNING = "running"
STEP_DONE = "done"
STEP_NOT_RUN = "not run"
"""A step after one that stopped the plan: nothing of it was sent."""


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    """A step as the plan journal records it before the plan sends anything."""

    name: str
    object_type: str
    input_file: str
    sheet: str | None
    mapping_file: str
    journal: str
    """The journal of the step's portal and object type, which records its batches."""
    run_id: str
    """The id the step's run has in that journal."""


class PlanJournal:
    """The plan journal file; every method is one transaction."""

    def __init__(self, path: Path, *, lock: bool = False) -> None:
        self.path = Path(path)
        self._lock_fh: Any = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot make the folder of the plan journal {self.path} ({exc.strerror}); "
                "check --state-dir"
            ) from exc
        if lock:
            self._lock_fh = _take_lock(self.path.with_suffix(".lock"), "this plan and portal")
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            keep_private(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            _add_columns(self._db)
        except sqlite3.Error as exc:
            self.close()
            raise ConfigError(
                f"the plan journal {self.path} cannot be read ({exc}); it was left as it is. "
                f"Move it aside (e.g. rename it to {self.path.name}.damaged) and run again: "
                "the plan's records are in the journals of their object types, which are not "
                "affected; only the list of this plan's earlier runs starts afresh"
            ) from exc

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
        if self._lock_fh is not None:
            _release_lock(self._lock_fh)
            self._lock_fh = None

    def _txn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _immediate(self._db)

    def start(
        self,
        plan_run_id: str,
        *,
        plan_file: Path,
        base_url: str,
        portal: str | None,
        steps: Sequence[PlannedStep],
        plan_digest: str | None = None,
    ) -> None:
        """Record the plan run and every step's run id, before anything is sent (and the
        plan file's SHA-256, `plan_digest`)."""
        with self._txn() as db:
            db.execute(
                "INSERT INTO plan_runs (plan_run_id, plan_file, started, base_url, portal, pid, "
                "plan_digest) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (plan_run_id, str(plan_file), _now(), base_url, portal, os.getpid(), plan_digest),
            )
            db.executemany(
                "INSERT INTO plan_steps (plan_run_id, position, name, object_type, input_file, "
                "sheet, mapping_file, journal, run_id, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        plan_run_id,
                        n,
                        s.name,
                        s.object_type,
                        s.input_file,
                        s.sheet,
                        s.mapping_file,
                        s.journal,
                        s.run_id,
                        STEP_WAITING,
                    )
                    for n, s in enumerate(steps)
                ],
            )

    def step_started(self, plan_run_id: str, position: int) -> None:
        self._step(plan_run_id, position, state=STEP_RUNNING)

    def step_ended(
        self,
        plan_run_id: str,
        position: int,
        *,
        ran: bool,
        counts: dict[str, int],
        requests: int,
        note: str | None = None,
    ) -> None:
        self._step(
            plan_run_id,
            position,
            state=STEP_DONE if ran else STEP_NOT_RUN,
            counts=json.dumps(counts),
            requests=requests,
            note=note,
        )

    def _step(self, plan_run_id: str, position: int, **values: Any) -> None:
        names = ", ".join(f"{k} = ?" for k in values)
        with self._txn() as db:
            db.execute(
                f"UPDATE plan_steps SET {names} WHERE plan_run_id = ? AND position = ?",
                (*values.values(), plan_run_id, position),
            )

    def finish(self, plan_run_id: str, *, stopped_by: str | None) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE plan_runs SET finished = ?, stopped_by = ? WHERE plan_run_id = ?",
                (_now(), stopped_by, plan_run_id),
            )

    def record_files(self, plan_run_id: str, *, workbook: str, retry_file: str | None) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE plan_runs SET workbook = ?, retry_file = ? WHERE plan_run_id = ?",
                (workbook, retry_file, plan_run_id),
            )

    def record_undone(self, plan_run_id: str) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE plan_runs SET undone = ? WHERE plan_run_id = ?", (_now(), plan_run_id)
            )

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the plan, oldest first, each with its `steps` in the order they ran."""
        cur = self._db.execute("SELECT * FROM plan_runs ORDER BY started, plan_run_id")
        names = [c[0] for c in cur.description]
        found = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        steps: dict[str, list[dict[str, Any]]] = {}
        cur = self._db.execute("SELECT * FROM plan_steps ORDER BY plan_run_id, position")
        names = [c[0] for c in cur.description]
        for row in cur.fetchall():
            step = dict(zip(names, row, strict=True))
            step["counts"] = json.loads(step["counts"]) if step["counts"] else {}
            steps.setdefault(step["plan_run_id"], []).append(step)
        for run in found:
            run["steps"] = steps.get(run["plan_run_id"], [])
            run["plan_journal"] = str(self.path)
        return found


def _add_columns(db: sqlite3.Connection) -> None:
    """Add the columns `_ADDED_COLUMNS` names to a plan journal from an older version."""
    for table, column, kind in _ADDED_COLUMNS:
        columns = {c[1] for c in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def list_plan_runs(state_dir: Path) -> list[dict[str, Any]]:
    """Every run of every plan with a journal in `state_dir`, newest first."""
    found: list[dict[str, Any]] = []
    for path in sorted((Path(state_dir) / PLANS_FOLDER).glob("*.sqlite")):
        if not path.is_file():
            continue
        journal = PlanJournal(path)
        try:
            found += journal.runs()
        finally:
            journal.close()
    return sorted(found, key=lambda r: (r["started"], r["plan_run_id"]), reverse=True)
