"""What a run's `missing_rows:` did, as `runs` and `show` say it: counted from the journal's
`missing` table (archived, set, gone, failed), and what became of those records since
(restored by undo, back in the feed, left alone by undo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..state.journal import Journal
from ..state.missing_table import COUNTED

__all__ = ["mirror_counts", "mirror_text"]


def mirror_counts(runs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Run id -> what its `missing_rows:` did, for the runs of `runs` it acted in (each
    journal read once)."""
    found: dict[str, dict[str, int]] = {}
    for path in dict.fromkeys(r["journal"] for r in runs):
        journal = Journal(Path(path))
        try:
            found.update(journal.missing_counts())
        finally:
            journal.close()
    return found


_SINCE_WORDS = {
    "restored": "restored by undo",
    "returned": "back in the feed",
    "left": "left alone by undo",
}


def mirror_text(counts: dict[str, int]) -> str:
    """`2 archived, 1 set; since then 1 restored by undo, 1 back in the feed`: what a run's
    `missing_rows:` did, and what became of those records since."""
    done = ", ".join(f"{counts[w]} {w}" for w in COUNTED if counts[w] and w not in _SINCE_WORDS)
    since = ", ".join(f"{counts[w]} {said}" for w, said in _SINCE_WORDS.items() if counts[w])
    return f"{done or 'nothing done'}; since then {since}" if since else done or "nothing done"
