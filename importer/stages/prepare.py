"""Prepare stage: the valid rows as HubSpot will receive them (`core.prepared.Prepared`)."""

from __future__ import annotations

import pyarrow.compute as pc

from ..core.prepared import Prepared, PreparedAssociation
from ..core.text import arrow, whole
from ..mapping.model import Mapping, PropertyType
from .cell_rules import stored_numbers
from .validate import Validated

__all__ = ["build_rows"]


def build_rows(
    validated: Validated, mapping: Mapping, run_id: str, *, generation: str = ""
) -> Prepared:
    """The valid rows, ready to send. `generation`: the keyless import the rows belong to."""
    values = validated.values
    columns = {str(p): arrow(values[p]) for p in values.columns}
    constants = dict(mapping.constants)
    for name in constants:
        columns.pop(name, None)  # a constant wins over a column (the mapping forbids both)
    if mapping.key is not None and mapping.by_column[mapping.key].type is PropertyType.NUMBER:
        # The key sent, journaled and looked up is the number HubSpot holds and answers, so
        # that `007` finds the record its run made (`7`), as `7` and `7.0` do.
        key_name = mapping.by_column[mapping.key].property
        if key_name in columns:
            columns[key_name] = whole(stored_numbers(columns[key_name]))
    rows: list[int] = values.index.tolist()
    key_prop = mapping.key_property
    if key_prop is None:
        key_values: list[str | None] = [None] * len(rows)
    elif key_prop in constants:
        key_values = [constants[key_prop]] * len(rows)
    else:
        key_column = columns.get(key_prop)
        key_values = (
            # An empty key is None: such a row is told apart by its values instead.
            pc.if_else(pc.equal(key_column, ""), None, key_column).to_pylist()
            if key_column is not None
            else [None] * len(rows)
        )
    associations = [
        PreparedAssociation(
            targets=validated.associations[a.column], types=[t.as_json() for t in a.types]
        )
        for a in mapping.associations
    ]
    return Prepared(
        rows=rows,
        key_values=key_values,
        columns=columns,
        constants=constants,
        associations=associations,
        run_id=run_id,
        key_property=key_prop,
        object_type=mapping.object_type,
        generation=generation,
    )
