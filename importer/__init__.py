"""hubspot-import: import CSV and Excel spreadsheets into HubSpot CRM, every row accounted for.

The public names are loaded when first used (PEP 562), so that `import importer`, and the
command line's `--help`, do not pay for pandas and the spreadsheet libraries."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The errors are loaded at once: they are small, and every caller may need to catch them.
from .core.errors import (
    AuthError,
    ConfigError,
    EmptySheetError,
    HubSpotError,
    HubSpotImportError,
    HubSpotUnavailable,
    InputFileError,
    KeylessRerun,
    LockHeld,
    MappingError,
    RateLimitStop,
    UncertainDelivery,
)

if TYPE_CHECKING:
    from .core.outcome import Problem, RowIssue, RowResult, RowStatus
    from .mapping.file import load_mapping, parse_mapping
    from .mapping.model import Mapping, SyncMode
    from .plans.runner import PlanResult, load_plan, run_plan
    from .sheets.load import Table, load_table
    from .sheets.results import RunSummary
    from .stages.options import RunOptions
    from .stages.run import RunResult, run_import
    from .stages.validate import Validated, validate
    from .state.journal import Journal

__all__ = [
    "AuthError",
    "ConfigError",
    "EmptySheetError",
    "HubSpotError",
    "HubSpotImportError",
    "HubSpotUnavailable",
    "InputFileError",
    "Journal",
    "KeylessRerun",
    "LockHeld",
    "Mapping",
    "MappingError",
    "PlanResult",
    "Problem",
    "RateLimitStop",
    "RowIssue",
    "RowResult",
    "RowStatus",
    "RunOptions",
    "RunResult",
    "RunSummary",
    "SyncMode",
    "Table",
    "UncertainDelivery",
    "Validated",
    "load_mapping",
    "load_plan",
    "load_table",
    "parse_mapping",
    "run_import",
    "run_plan",
    "validate",
]

_HOMES = {
    ".core.outcome": ("Problem", "RowIssue", "RowResult", "RowStatus"),
    ".mapping.file": ("load_mapping", "parse_mapping"),
    ".mapping.model": ("Mapping", "SyncMode"),
    ".plans.runner": ("PlanResult", "load_plan", "run_plan"),
    ".sheets.load": ("Table", "load_table"),
    ".sheets.results": ("RunSummary",),
    ".stages.options": ("RunOptions",),
    ".stages.run": ("RunResult", "run_import"),
    ".stages.validate": ("Validated", "validate"),
    ".state.journal": ("Journal",),
}
"""Each module and the public names it holds that load on first use, as imported above for
type checkers: keep the two alike."""
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use and kept here after."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones not loaded yet included."""
    return sorted({*globals(), *__all__})
