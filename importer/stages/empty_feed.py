"""A feed that arrives with its header row and no data rows. Under a mapping whose
`missing_rows:` is not `keep` it is a feed that lost every row: the run goes on to the guards,
and max_missing stops it (exit 3) whenever the mapping holds records, whatever its limit (a
feed without rows is never mirrored). With nothing held, or under `keep`, it is what it always
was: nothing to import (EmptySheetError, exit 2), the summary saying what the rule did."""

from __future__ import annotations

import logging
from typing import Any

from ..core.errors import EmptySheetError
from ..mapping.model import Mapping
from ..sheets.load import Table, load_table
from .options import RunOptions

__all__ = ["NO_ROWS", "NoRows", "load_feed", "no_rows"]

log = logging.getLogger(__name__)

NO_ROWS = "the feed has no data rows"
"""Why the rule does nothing with a header-only feed (the summary's `missing.sits_out`)."""


class NoRows(EmptySheetError):
    """A header-only feed under a `missing_rows:` rule, with no record held: nothing to import
    (exit 2); `missing` is the summary JSON's `missing` object, saying the rule sat out."""

    def __init__(self, message: str, table: object, missing: dict[str, Any]) -> None:
        super().__init__(message, table)
        self.missing = missing


def load_feed(options: RunOptions, mapping: Mapping, header_row: int | None) -> Table:
    """The sheet of a run of one sheet. A header-only one raises EmptySheetError, unless the
    mapping's `missing_rows:` is not `keep`: then it is read as a feed that lost every row."""
    try:
        return load_table(
            options.input_path, sheet=options.sheet, encoding=options.encoding,
            header_row=header_row,
        )  # fmt: skip
    except EmptySheetError as exc:
        if mapping.missing_rows.keeps or not isinstance(exc.table, Table):
            raise
        log.warning(
            "%s has no data rows: judged as a feed that lost every row (missing_rows: %s)",
            exc.table.where(),
            mapping.missing_rows.describe(),
        )
        return exc.table


def no_rows(table: Table, missing: dict[str, Any]) -> NoRows:
    """The error of a header-only feed whose mapping holds nothing: nothing to import."""
    where = f"{table.source}, sheet {table.sheet}" if table.sheet is not None else table.source
    return NoRows(
        f"{where}: the header row is there but no data rows follow; nothing to import.",
        table,
        missing,
    )
