"""hubspot-import: import CSV and Excel spreadsheets into HubSpot CRM, every row accounted for."""

from ._errors import (
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
from .pipeline.mapping import Mapping, SyncMode
from .pipeline.mapping_file import load_mapping, parse_mapping
from .pipeline.outcome import RowResult, RowStatus
from .pipeline.plans import PlanResult, load_plan, run_plan
from .pipeline.run import RunOptions, RunResult, run_import
from .pipeline.validate import Problem, RowIssue, Validated, validate
from .sheets.load import Table, load_table
from .sheets.results import RunSummary
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
