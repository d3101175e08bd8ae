"""What a run is told: the user's settings (`RunOptions`), and what a plan hands each of its
steps besides (`StepContext`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..api.client import DEFAULT_TIMEOUT, HubSpotClient, RetryPolicy
from ..api.limiter import RateLimiter
from ..api.lookup import DEFAULT_SEARCH_SETTLE
from ..core.errors import ConfigError
from ..core.hubspot import (
    DEFAULT_BASE_URL,
    MAX_ASSOCIATION_INPUTS,
    MAX_BATCH_INPUTS,
)
from ..mapping.guards import Guards
from ..mapping.model import SyncMode

if TYPE_CHECKING:  # the command line imports this module before it knows it needs pandas
    from ..mapping.model import Mapping
    from ..sheets.table import Table
    from .resolve import Known

__all__ = ["DEFAULT_CONCURRENCY", "Prefetched", "RunOptions", "StepContext", "client_for"]

DEFAULT_CONCURRENCY = 0
"""Auto: as many senders as the learned limit allows in one window (8 to MAX_SENDERS), so a
whole window's requests can go out in one burst, which is how the limit is filled."""


Prefetched = dict[tuple[str, str], dict[str, list[str]]]
"""(object type, property) -> stored key -> ids of keys no step of a plan imports, looked up
before its first write."""


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What the user sets for a run (the command line's options); a plan's steps share them."""

    token: str = field(repr=False)
    input_file: Path | None = None
    """The sheet to import; None in the options a plan's steps share (each names its own)."""
    mapping_file: Path | None = None
    sheet: str | None = None
    encoding: str | None = None
    header_row: int | None = None
    """The sheet row that holds the header; overrides the mapping's `header_row:`. None (and
    none in the mapping): found among the sheet's first rows."""
    out: Path | None = None
    base_url: str = DEFAULT_BASE_URL
    journal_base: str | None = None
    """Names the journal instead of `base_url` (the demo sandbox answers on a new port each
    run; its records stay)."""
    api_version: str | None = None
    """HubSpot's API version, pinned: a date (`2026-09`) or `legacy` for the numbered paths.
    None: 2026-09, then 2026-03 and legacy where HubSpot does not serve it at `base_url`."""
    mode: SyncMode | None = None
    """Overrides the mapping's `mode:`."""
    state_dir: Path | None = None
    """Where journals live; default: the user's data directory."""
    forget_uncertain: bool = False
    import_again: bool = False
    """Without a key: create every row again, although an earlier run imported this file."""
    verify: bool = False
    """Read back every record the journal knows for this run's rows before deciding."""
    portal_id: int | None = None
    """For links to records in the workbook; default: asked of HubSpot once, then remembered."""
    portal_check: bool = True
    """Check the mapping against the portal's properties and labels before anything else."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Batches in flight at once; the limiter keeps them within HubSpot's rate limit."""
    max_rps: float | None = None
    """A cap of our own on requests per second (for an app that shares its quota)."""
    dry_run: bool = False
    """`check` and `--dry-run`: everything but sending; the workbook shows what would happen."""
    batch_size: int = MAX_BATCH_INPUTS
    association_batch_size: int = MAX_ASSOCIATION_INPUTS
    """Inputs per associations batch request (at most 100)."""
    search_settle: float = DEFAULT_SEARCH_SETTLE
    """Seconds after a write by which HubSpot's search is trusted to find it (lookups by a
    key property without unique values, after a lost answer)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    guards: Guards = field(default_factory=Guards)
    """The command line's guards, over each mapping's `guards:` (a plan's, over each step's)."""

    @property
    def input_path(self) -> Path:
        """The sheet of a run of one sheet (ConfigError without one)."""
        if self.input_file is None:
            raise ConfigError("a run of one sheet needs its input_file (a plan names its own)")
        return self.input_file

    @property
    def mapping_path(self) -> Path:
        """The mapping of a run of one sheet (ConfigError without one)."""
        if self.mapping_file is None:
            raise ConfigError("a run of one sheet needs its mapping_file (a plan names its own)")
        return self.mapping_file


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """What a plan hands one of its steps besides the options: the step runs as a run of its
    own, but reads nothing twice, keeps to the plan's rate limit and writes no files (the plan
    writes one workbook for every step)."""

    run_id: str
    """Written in the plan's journal before the step sends anything."""
    table: Table = field(repr=False)
    """The sheet, read by the plan's check before its first write."""
    mapping: Mapping = field(repr=False)
    """The mapping as the plan checked it against the portal (or offline)."""
    limiter: RateLimiter = field(repr=False)
    """Shared by every step: HubSpot counts one window for all of them."""
    known: Known = field(default_factory=dict)
    """Keys of records earlier steps imported (see resolve.Resolver)."""
    known_where: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """The cell each of those keys came from."""
    prefetched: Prefetched = field(default_factory=dict)


def client_for(options: RunOptions, limiter: RateLimiter | None = None) -> HubSpotClient:
    """The HubSpot client a run (or a plan's own requests) sends with, paced by `limiter`
    when a plan shares one."""
    return HubSpotClient(
        token=options.token,
        base_url=options.base_url,
        api_version=options.api_version,
        retry=options.retry,
        timeout=options.timeout,
        limiter=limiter or RateLimiter(max_rps=options.max_rps),
    )
