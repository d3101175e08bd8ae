"""hubspot-import: import CSV and Excel spreadsheets into HubSpot CRM, every row accounted for."""

from ._errors import (
    AuthError,
    ConfigError,
    HubSpotError,
    HubSpotImportError,
    HubSpotUnavailable,
    InputFileError,
    LockHeld,
    MappingError,
    RateLimitStop,
    UncertainDelivery,
)
from .journal import Journal
from .load import Table, load_table
from .mapping import Mapping, SyncMode, load_mapping, parse_mapping
from .outcome import RowResult, RowStatus
from .plans import PlanResult, load_plan, run_plan
from .results import RunSummary
from .run import RunOptions, RunResult, run_import
from .validate import Problem, RowIssue, Validated, validate

__all__ = [
    "AuthError",
    "ConfigError",
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
