"""The prepared row: each valid row as the properties and associations HubSpot will receive.

The rows are held column by column (`Prepared`): what the decision needs of every row (its key
and the fingerprint of its values) is computed a column at a time, and a row's request body
(`PreparedRow`) is made only when its batch is sent. A million rows then cost a few seconds and
no more memory than the values themselves, instead of a dict and an object per row.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, overload

import pyarrow as pa

from .hubspot import key_identity

__all__ = [
    "HASH_CHUNK",
    "Prepared",
    "PreparedAssociation",
    "PreparedRow",
    "journal_key",
    "trace_id",
    "values_hash",
]

_SEPARATOR = "\x00"  # JSON escapes it inside strings, so it can only be a separator
HASH_CHUNK = 50_000
"""Rows fingerprinted at a time: their fragments are freed before the next chunk's."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedRow:
    """One valid row, ready to send."""

    row: int
    """The sheet row (header = 1)."""
    key: str
    """Identifies the row across runs: `key:<property>=<value>` from the mapping's key (the
    value as HubSpot stores it), else a hash."""
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


def journal_key(object_type: str, prop: str, value: str) -> str:
    """A key value's journal key: the property named, the value as `key_identity` has it (two
    mappings keyed on different properties never share a key; case counts where HubSpot
    counts it; two Unicode spellings of one text are one key)."""
    return f"key:{prop}={key_identity(object_type, prop, value)}"


def trace_id(run_id: str, row: int) -> str:
    return f"{run_id}-row-{row}"


def values_hash(properties: dict[str, str]) -> str:
    """A stable fingerprint of the property values sent for a row (kept in the journal, so an
    unchanged row is not sent again). `Prepared` computes the same a column at a time."""
    canonical = json.dumps(properties, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _digest(canonical)


def _digest(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _fragments(label: str, values: list[str]) -> list[str]:
    """`label` + each value as a JSON string literal (as json.dumps writes it), made in a few
    C calls: the values are encoded as one JSON list and split at the separators."""
    if not values:
        return []
    encoded = json.dumps(values, ensure_ascii=False, separators=(_SEPARATOR, ":"))[1:-1]
    return (label + encoded.replace(_SEPARATOR, _SEPARATOR + label)).split(_SEPARATOR)


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedAssociation:
    targets: list[list[str]]
    types: list[dict[str, Any]]


class Prepared(Sequence[PreparedRow]):
    """Every valid row, ready to send: keys per row, values per column, fingerprints when
    asked for (a first run, whose journal knows no row, needs none before sending)."""

    def __init__(
        self,
        *,
        rows: list[int],
        key_values: list[str | None],
        columns: dict[str, pa.Array],
        constants: dict[str, str],
        associations: list[PreparedAssociation],
        run_id: str,
        key_property: str | None = None,
        object_type: str = "",
        generation: str = "",
    ) -> None:
        self.rows = rows
        """Sheet rows, in sheet order."""
        self.key_values = key_values
        self.key_property = key_property
        self.object_type = object_type
        self.generation = generation
        """Rows without a key belong to one import of one file (`row:<generation>:...`); ""
        for the `hash:` keys of journals from before imports were told apart."""
        self.run_id = run_id
        self._arrays = columns
        self._constants = constants
        self._associations = associations
        self.keys = self._keys()
        """Identify rows across runs: `key:<property>=<value>`, else
        `hash:<fingerprint>:<occurrence>`."""

    def key_of(self, value: str) -> str:
        return journal_key(self.object_type, self.key_property or "", value)

    def _keys(self) -> list[str]:
        if None not in self.key_values:
            return [self.key_of(v) for v in self.key_values if v is not None]
        keyless = [i for i, v in enumerate(self.key_values) if v is None]
        hashes = dict(zip(keyless, self.hashes(keyless), strict=True))
        keys: list[str] = []
        seen: Counter[str] = Counter()
        for i, key_value in enumerate(self.key_values):
            if key_value is not None:
                keys.append(self.key_of(key_value))
            else:
                # Without a key, identical rows are told apart by their order of appearance,
                # and rows of different imports (files) by the import's generation.
                seen[hashes[i]] += 1
                prefix = f"row:{self.generation}" if self.generation else "hash"
                keys.append(f"{prefix}:{hashes[i]}:{seen[hashes[i]]}")
        return keys

    def __len__(self) -> int:
        return len(self.rows)

    def targets(self, association: int, i: int) -> list[str]:
        """The target ids row `i`'s cell lists for the mapping's `association`-th association."""
        return list(self._associations[association].targets[i])

    @property
    def property_names(self) -> list[str]:
        """Every property a row may send (mapped columns and constants)."""
        return sorted({*self._arrays, *self._constants})

    @overload
    def __getitem__(self, i: int) -> PreparedRow: ...

    @overload
    def __getitem__(self, i: slice) -> list[PreparedRow]: ...

    def __getitem__(self, i: int | slice) -> PreparedRow | list[PreparedRow]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        properties = self.properties(i)
        associations = tuple(
            {"to": {"id": target}, "types": a.types}
            for a in self._associations
            for target in a.targets[i]
        )
        return PreparedRow(
            row=self.rows[i],
            key=self.keys[i],
            key_value=self.key_values[i],
            properties=properties,
            associations=associations,
            run_id=self.run_id,
            sent_hash=values_hash(properties),
        )

    def __iter__(self) -> Iterator[PreparedRow]:
        return (self[i] for i in range(len(self)))

    @cached_property
    def _columns(self) -> list[tuple[str, list[str]]]:
        """The values as Python strings, made when the first row is: a run that sends rows
        spends far longer waiting for HubSpot; a dry run never needs them."""
        return [(p, values.to_pylist()) for p, values in self._arrays.items()]

    def properties(self, i: int) -> dict[str, str]:
        """Row `i`'s properties: empty cells are left out, not sent as ""."""
        properties = {p: values[i] for p, values in self._columns if values[i] != ""}
        properties.update(self._constants)
        return properties

    def hashes(self, positions: Sequence[int]) -> list[str]:
        """`values_hash` of the properties of the rows at `positions`, built a column at a
        time and a chunk of rows at a time: each property's `,"name":"value"` (nothing when
        empty) in sorted order, joined per row. What changes a record is its properties;
        associations are set when it is created."""
        names = sorted([*self._arrays, *self._constants])
        labels = {name: f",{json.dumps(name, ensure_ascii=False)}:" for name in names}
        digests: list[str] = []
        for start in range(0, len(positions), HASH_CHUNK):
            at = positions[start : start + HASH_CHUNK]
            parts: list[list[str]] = []
            for name in names:
                if name in self._constants:
                    value = json.dumps(self._constants[name], ensure_ascii=False)
                    parts.append([labels[name] + value] * len(at))
                    continue
                cells = self._arrays[name].take(pa.array(at, type=pa.int64())).to_pylist()
                fragments = _fragments(labels[name], cells)
                if "" in cells:
                    fragments = [f if v else "" for f, v in zip(fragments, cells, strict=True)]
                parts.append(fragments)
            if not parts:
                digests.extend([_digest("{}")] * len(at))
                continue
            digests.extend(
                _digest("{" + "".join(row)[1:] + "}") for row in zip(*parts, strict=True)
            )
        return digests
