"""Recovery of the batches a crashed run left open, each settled by the key property it was sent
with, whichever mapping runs next: a run keyed on another property of the same object type
must not look the rows up by its own key, find nothing, and call them not created (the first
mapping's next run would then create them again).

A batch's rows are looked up as the uploader looks up its own (lookups.py); only the key they
are looked up by differs."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from ..api.lookup import DEFAULT_SEARCH_SETTLE, Finder
from ..mapping.model import ColumnSpec, Mapping
from ..state.batches_table import SentBatch
from .lookups import LookingUp
from .send import Uploader

__all__ = ["recover_open_batches"]

log = logging.getLogger(__name__)


class _SentKeyLookup(LookingUp):
    """The uploader's lookups, by the key property another mapping sent its batches with."""

    def __init__(self, uploader: Uploader, key_property: str | None) -> None:
        """Look up on the uploader's portal and object type, by `key_property` (None: the
        batches carry no key, and nothing can be looked up)."""
        kind = uploader.mapping.object_type
        self.client = uploader.client
        self.journal = uploader.journal
        self.run_id = uploader.run_id
        self.mapping = _keyed_on(kind, key_property, uploader.mapping.source)
        settle = uploader.finder.settle if uploader.finder is not None else DEFAULT_SEARCH_SETTLE
        self.finder = (
            Finder(uploader.client, kind, key_property, settle=settle) if key_property else None
        )
        self._sent_again = set()


def _keyed_on(object_type: str, key_property: str | None, source: str) -> Mapping:
    """A mapping of `object_type` keyed on `key_property`: what a lookup needs of a mapping."""
    if key_property is None:
        return Mapping(object_type=object_type, columns=(), source=source)
    column = ColumnSpec(column=key_property, property=key_property)
    return Mapping(object_type=object_type, columns=(column,), key=key_property, source=source)


def recover_open_batches(uploader: Uploader, batches: Sequence[SentBatch]) -> int:
    """Settle the batches a crashed run left open, each by the key property it was sent with
    (the uploader's own lookups for batches sent with its mapping's key); returns how many
    rows were settled."""
    by_key: dict[str | None, list[SentBatch]] = defaultdict(list)
    for batch in batches:
        by_key[batch.key_property].append(batch)
    settled = 0
    for key_property, sent in by_key.items():
        if key_property == uploader.mapping.key_property:
            settled += uploader.recover(sent)
            continue
        log.warning("%s", _other_key(len(sent), key_property, uploader.mapping.key_property))
        settled += _SentKeyLookup(uploader, key_property).recover(sent)
    return settled


def _other_key(batches: int, sent_with: str | None, own: str | None) -> str:
    """What the log says of batches left open by a mapping keyed otherwise than this one."""
    which = (
        "1 batch left open by an earlier run was"
        if batches == 1
        else f"{batches} batches left open by an earlier run were"
    )
    mine = f"this mapping's key, {own}" if own else "this mapping, which has no key"
    if sent_with is None:
        return (
            f"{which} sent without a key, unlike {mine}: creates among them stay uncertain "
            "(nothing to look them up by)"
        )
    return f"{which} sent keyed on {sent_with}, not on {mine}: looked up by {sent_with}"
