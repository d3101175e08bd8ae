"""Journal keys in one Unicode form: row keys written before keys were composed (NFC) are
rewritten once per journal, so that a row finds the entry an earlier run kept for it under a
decomposed spelling (`Café` typed on a Mac) instead of creating its record again."""

from __future__ import annotations

import contextlib
import sqlite3
import unicodedata
from pathlib import Path

import orjson

from .records import BatchState

__all__ = ["KEY_FORM", "compose_keys"]

KEY_FORM = "NFC"
"""The journal's meta `key_form` once its keys are composed."""
_BUSY_MS = 10_000


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def compose_keys(path: Path) -> list[str]:
    """Rewrite the journal's decomposed `key:` row keys in their composed form, in every table
    that holds row keys and in the batches still open, once per journal. Returns the keys held
    in both forms (two entries, each with its own record: the composed one is used from now
    on, and the other is left as it was, for the user to look at)."""
    if not path.is_file():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=_BUSY_MS / 1000)) as db:
        if _composed(db):
            return []
        db.create_function("nfc", 1, _nfc, deterministic=True)
        db.execute("BEGIN IMMEDIATE")
        try:
            both = _compose_tables(db)
            _compose_open_batches(db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('key_form', ?)", (KEY_FORM,)
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return both


def _composed(db: sqlite3.Connection) -> bool:
    """Whether the journal's keys are composed already (or it has no rows to compose)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "rows"} <= tables:
        return True
    found = db.execute("SELECT value FROM meta WHERE key = 'key_form'").fetchone()
    return found is not None and found[0] == KEY_FORM


def _compose_tables(db: sqlite3.Connection) -> list[str]:
    """Compose the `row_key` of every table that has one; the keys of `rows` held in both forms
    (the decomposed entry stays: the composed one was written later, by a run that saw it)."""
    decomposed = "row_key LIKE 'key:%' AND row_key != nfc(row_key)"
    both = [
        str(r[0])
        for r in db.execute(
            f"SELECT nfc(row_key) FROM rows WHERE {decomposed} "
            "AND nfc(row_key) IN (SELECT row_key FROM rows)"
        )
    ]
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        columns = {r[1] for r in db.execute(f'PRAGMA table_info("{table}")')}
        if "row_key" in columns:
            db.execute(f'UPDATE OR IGNORE "{table}" SET row_key = nfc(row_key) WHERE {decomposed}')
    return both


def _compose_open_batches(db: sqlite3.Connection) -> None:
    """Compose the keys of the rows that batches left open list (`items`, each entry's first
    field its row key), so that recovery settles them under the keys rows are now found by."""
    found = db.execute(
        "SELECT batch_id, items FROM batches WHERE state = ? AND items IS NOT NULL",
        (BatchState.SENT.value,),
    )
    for batch_id, items in found.fetchall():
        entries = orjson.loads(items)
        changed = False
        for entry in entries:
            key = str(entry[0])
            if key.startswith("key:") and _nfc(key) != key:
                entry[0], changed = _nfc(key), True
        if changed:
            db.execute(
                "UPDATE batches SET items = ? WHERE batch_id = ?",
                (orjson.dumps(entries).decode(), batch_id),
            )
