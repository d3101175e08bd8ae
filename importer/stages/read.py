"""Read stage: the mapping and the sheet, and every file the run will write checked writable,
before HubSpot is asked anything."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from ..mapping.file import load_mapping
from ..mapping.model import Mapping, SyncMode
from ..mapping.portal import resolve_offline
from ..sheets.load import Table
from ..sheets.outputs import prepare_folder, prepare_workbook
from ..sheets.results import default_results_path
from ..state.paths import default_state_dir
from .empty_feed import load_feed
from .options import RunOptions, StepContext
from .unchanged import Feed, take_feed

__all__ = ["Inputs", "read_inputs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What a run reads before it asks HubSpot anything."""

    mapping: Mapping
    """As the file says it, to be checked against the portal; resolved offline already with
    --no-portal-check; for a step of a plan, as its plan checked it."""
    mode: SyncMode
    table: Table
    out: Path | None
    """The results workbook, checked writable; None for a step of a plan (its runner writes
    one workbook for every step)."""
    state_dir: Path
    feed: Feed
    """The input's fingerprint, taken before the sheet was read, and what read it."""


def read_inputs(
    options: RunOptions, started: dt.datetime, step: StepContext | None, feed: Feed | None = None
) -> Inputs:
    """The mapping, the output paths and the sheet (for a step of a plan: the sheet and the
    mapping its plan read and checked before its first write), the sheet's columns checked
    against the mapping; what the run reads (`feed`, unless taken already). Raises
    ConfigError/InputFileError on a mistake."""
    feed = feed or take_feed(options)
    mapping = load_mapping(options.mapping_path)
    mode = options.mode or mapping.mode
    mapping.check_mode(mode)
    # Everything this run writes can be written: checked (folders made) before HubSpot is
    # asked anything, so a run that creates records can always say which.
    keep = (options.input_path, options.mapping_path)
    out = (
        prepare_workbook(
            options.out or default_results_path(options.input_path, started), keep=keep
        )
        if step is None
        else None
    )
    state_dir = prepare_folder(options.state_dir or default_state_dir(), "--state-dir")
    # The command line's header row wins over the mapping's.
    header_row = options.header_row if options.header_row is not None else mapping.header_row
    table = step.table if step is not None else load_feed(options, mapping, header_row)
    mapping.check_columns(table.columns, table.where(), table.duplicate_headers)
    log.info("loaded %d rows from %s", len(table.frame), table.where())
    if step is not None:
        mapping = step.mapping  # checked by the plan before its first write
    elif not options.portal_check:
        mapping = resolve_offline(mapping)
    return Inputs(
        mapping=mapping,
        mode=mode,
        table=table,
        out=out,
        state_dir=state_dir,
        feed=feed,
    )
