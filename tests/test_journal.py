"""The journal under concurrent upload workers: shared commits, separate outcomes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from importer.state.journal import BatchRow, Journal, Outcome


def _rows(batch: int, n: int = 3) -> list[BatchRow]:
    return [
        BatchRow(
            row_key=f"key:{batch}-{i}",
            key_value=f"{batch}-{i}",
            trace_id=f"t-{batch}-{i}",
            sent_hash="h",
            source_row=batch * 10 + i,
        )
        for i in range(n)
    ]


def test_concurrent_intents_and_outcomes_are_all_recorded(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    ids: dict[int, int] = {}
    start = threading.Barrier(40)

    def worker(batch: int) -> None:
        start.wait()
        rows = _rows(batch)
        ids[batch] = journal.begin_batch("run", "create", rows)
        journal.settle(ids[batch], "run", [(r, Outcome.CREATED, f"id-{r.key_value}") for r in rows])

    threads = [threading.Thread(target=worker, args=(b,)) for b in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(set(ids.values())) == 40
    assert journal.open_batches() == []
    known = journal.known([r.row_key for b in range(40) for r in _rows(b)])
    assert len(known) == 120
    assert known["key:7-2"].hubspot_id == "id-7-2"
    journal.close()
    # Committed, not just visible to the writing connection.
    other = sqlite3.connect(tmp_path / "j.sqlite")
    (rows,) = other.execute("SELECT SUM(json_array_length(items)) FROM batches").fetchone()
    assert rows == 120
    other.close()


def test_a_failing_group_fails_every_job_in_it_and_writes_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    good = journal.begin_batch("run", "create", _rows(1))
    journal._db.execute("PRAGMA query_only = ON")  # every write now fails, as on a full disk
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(batch: int) -> None:
        start.wait()
        try:
            journal.begin_batch("run", "create", _rows(batch))
        except sqlite3.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(b,)) for b in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 8
    journal._db.execute("PRAGMA query_only = OFF")
    assert [b.batch_id for b in journal.open_batches()] == [good]
    # The journal goes on: the next intent gets the next id.
    assert journal.begin_batch("run", "create", _rows(10)) == good + 1
    journal.close()


def test_rows_keep_their_values_and_outcomes(tmp_path: Path) -> None:
    """Intents and outcomes go to SQLite as JSON: NULLs, numbers and text come back as such."""
    journal = Journal(tmp_path / "j.sqlite")
    rows = [
        BatchRow(row_key="hash:ab:0", key_value=None, trace_id="t", sent_hash="h", source_row=7),
        BatchRow(
            row_key="key:0042",
            key_value="0042",
            trace_id="t2",
            sent_hash="h2",
            source_row=8,
            record_id="123",
        ),
    ]
    first = journal.begin_batch("run", "update", rows)
    (open_batch,) = journal.open_batches()
    assert open_batch.batch_id == first
    assert open_batch.rows == tuple(rows)
    journal.settle(
        first, "run", [(rows[0], Outcome.FAILED, None), (rows[1], Outcome.UPDATED, "123")]
    )
    assert journal.open_batches() == []
    assert journal.written_by("run") == {"created": [], "updated": [("key:0042", "123")]}
    known = journal.known(["key:0042", "hash:ab:0"])
    assert list(known) == ["key:0042"]
    assert known["key:0042"].hubspot_id == "123"
    assert known["key:0042"].sent_hash == "h2"
    journal.close()


def test_a_journal_of_an_older_version_is_read_and_recovered(tmp_path: Path) -> None:
    """Older versions kept a batch's rows in batch_rows, one row each, and had no
    batches.items: a batch such a run left open is still recovered, and undo still finds
    what an older run created."""
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE batches (batch_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,
            operation TEXT NOT NULL, state TEXT NOT NULL, created TEXT NOT NULL, settled TEXT);
        CREATE TABLE batch_rows (batch_id INTEGER NOT NULL, row_key TEXT NOT NULL,
            key_value TEXT, trace_id TEXT NOT NULL, sent_hash TEXT NOT NULL, record_id TEXT,
            source_row INTEGER NOT NULL, outcome TEXT, hubspot_id TEXT);
        INSERT INTO batches VALUES (1, 'old', 'create', 'confirmed', 'then', 'then');
        INSERT INTO batch_rows VALUES (1, 'key:a', 'a', 't-a', 'h', NULL, 2, 'created', '501');
        INSERT INTO batch_rows VALUES (1, 'key:b', 'b', 't-b', 'h', NULL, 3, 'failed', NULL);
        INSERT INTO batches VALUES (2, 'crashed', 'create', 'sent', 'then', NULL);
        INSERT INTO batch_rows VALUES (2, 'key:c', 'c', 't-c', 'h', NULL, 4, NULL, NULL);
        """
    )
    old.close()
    journal = Journal(path)
    assert journal.written_by("old") == {"created": [("key:a", "501")], "updated": []}
    (left_open,) = journal.open_batches()
    assert left_open.batch_id == 2
    assert [r.row_key for r in left_open.rows] == ["key:c"]
    journal.settle(2, "crashed", [(left_open.rows[0], Outcome.FOUND, "502")])
    assert journal.open_batches() == []
    assert journal.written_by("crashed") == {"created": [("key:c", "502")], "updated": []}
    # New batches are numbered after the old ones.
    assert journal.begin_batch("new", "create", _rows(1)) == 3
    journal.close()
