"""The journal under concurrent upload workers: shared commits, separate outcomes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from importer.journal import BatchRow, Journal, Outcome


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
    assert other.execute("SELECT COUNT(*) FROM batch_rows").fetchone() == (120,)
    other.close()


def test_a_failing_piece_of_work_is_undone_alone(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    good = journal.begin_batch("run", "create", _rows(1))

    def broken(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO batches (run_id, operation, state, created) VALUES ('x', 'y', 'z', 'w')"
        )
        raise ValueError("half done")

    with pytest.raises(ValueError, match="half done"):
        journal._grouped(broken)
    assert [b.batch_id for b in journal.open_batches()] == [good]
    journal.close()
