"""Payload stage: each valid row as the properties and associations HubSpot will receive."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .journal import values_hash
from .mapping import Mapping
from .validate import Validated

__all__ = ["PreparedRow", "build_rows", "trace_id"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedRow:
    """One valid row, ready to send."""

    row: int
    """The sheet row (header = 1)."""
    key: str
    """Identifies the row across runs: `key:<value>` from the mapping's key, else a hash."""
    key_value: str | None
    """The key property's value, used to find the record in HubSpot (read, search, upsert)."""
    properties: dict[str, str]
    associations: tuple[dict[str, Any], ...]
    """A tuple: the many rows without associations share the one empty tuple."""
    run_id: str
    sent_hash: str

    @property
    def trace_id(self) -> str:
        """The objectWriteTraceId sent with the row. Made when asked: a million of them
        held at once would cost ~85 MB."""
        return trace_id(self.run_id, self.row)


def trace_id(run_id: str, row: int) -> str:
    return f"{run_id}-row-{row}"


def build_rows(validated: Validated, mapping: Mapping, run_id: str) -> Iterator[PreparedRow]:
    """One prepared row per valid row; empty cells are left out, not sent as ""."""
    values = validated.values
    props = list(values.columns)
    constants = dict(mapping.constants)
    key_prop = mapping.key_property
    assoc_specs = [(a, validated.associations[a.column]) for a in mapping.associations]
    type_lists = {a.column: [t.as_json() for t in a.types] for a in mapping.associations}
    seen: Counter[str] = Counter()
    for position, (row, *cells) in enumerate(values.itertuples(name=None)):
        properties = {p: v for p, v in zip(props, cells, strict=True) if v != ""}
        properties.update(constants)
        associations = tuple(
            {"to": {"id": target}, "types": type_lists[spec.column]}
            for spec, targets in assoc_specs
            for target in targets[position]
        )
        # What changes the record: its properties. Associations are set when it is created.
        sent_hash = values_hash(properties)
        key_value = properties.get(key_prop) if key_prop else None
        if key_value is not None:
            key = f"key:{key_value}"
        else:
            # Without a key, identical rows are told apart by their order of appearance.
            seen[sent_hash] += 1
            key = f"hash:{sent_hash}:{seen[sent_hash]}"
        yield PreparedRow(
            row=int(row),
            key=key,
            key_value=key_value,
            properties=properties,
            associations=associations,
            run_id=run_id,
            sent_hash=sent_hash,
        )
