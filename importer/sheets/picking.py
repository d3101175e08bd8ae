"""A glob's match picked: the last by name (a dated name sorts by its date), or the newest by
modification time (ties by name)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PICKS", "Match", "pick_match"]

PICKS = ("name", "mtime")
"""`--pick`'s choices."""

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Match:
    """A file a glob matched."""

    name: str
    """Its path (in the store, for a remote glob)."""
    modified: dt.datetime | None
    """When it was last modified (aware), if known."""


def pick_match(matches: Sequence[Match], pick: str) -> Match:
    """The match `pick` ('name' or 'mtime') picks among `matches` (at least one). A file whose
    time the store does not give is taken for the oldest."""
    if pick == "mtime":
        return max(matches, key=lambda m: (m.modified or _NEVER, m.name))
    return max(matches, key=lambda m: m.name)
