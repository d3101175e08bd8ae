"""hubspot-import: import CSV and Excel spreadsheets into HubSpot CRM, every row accounted for."""

from .core.errors import (
    AuthError,
    ConfigError,
    EmptySheetError,
    HubSpotError,
    HubSpotImportError,
    HubSpotUnavailable,
    InputFileError,
    LockHeld,
    MappingError,
    RateLimitStop,
    UncertainDelivery,
)
from .core.outcome import Problem, RowIssue, RowResult, RowStatus
from .mapping.file import load_mapping, parse_mapping
from .mapping.model import Mapping, SyncMode
from .plans.runner import PlanResult, load_plan, run_plan
from .sheets.load import Table, load_table
from .sheets.results import RunSummary
from .stages.run import RunOptions, RunResult, run_import
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
