"""Guards stage: before anything is sent, each guard the run was given (the command line's over
the mapping's `guards:`) judges what the earlier stages found (the sheet's data rows, the
invalid rows, the records that would be updated) and may stop the run (`GuardStop`, exit 3):
then no row is sent, and every row that would have been says which guard stopped it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..api.client import HubSpotClient
from ..api.reads import read_batch
from ..core.errors import HubSpotImportError
from ..core.hubspot import MAX_BATCH_INPUTS
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..mapping.guards import DEFAULT_MAX_MISSING, Limit, RowRange
from ..mapping.model import Mapping, SyncMode
from ..sheets.results import RunSummary
from ..state.journal import Journal, KnownRow
from .decide import Decisions, Operation
from .dry_run import link_changes
from .options import RunOptions

__all__ = [
    "GuardStop",
    "Guarding",
    "MissingCount",
    "Verdict",
    "changed_records",
    "not_sent",
    "would_change",
]

log = logging.getLogger(__name__)

NOTHING_TO_COUNT = "no missing_rows: rule in the mapping, nothing to count"
"""What max_missing says when the mapping keeps the records no row names (`keep`)."""


class MissingCount(Protocol):
    """What the max_missing guard asks of the run's `missing_rows:` (`stages.mirror`)."""

    @property
    def verb(self) -> str:
        """What would become of the records: `archived`, `set`."""
        ...

    @property
    def empty(self) -> bool:
        """The feed has no data rows (every record held is missing)."""
        ...

    def counted(self) -> tuple[int, int, str]:
        """(records no longer in the feed, records the mapping holds, why the rule sits out
        this run or "")."""
        ...


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What one guard says of a run: `said` what it counted, `reason` (when it stops the run)
    why, naming where its limit was set."""

    name: str
    limit: str
    said: str
    reason: str = ""
    counted: bool = True
    """False when there was nothing to count: the line then says neither passes nor stops."""

    @property
    def stops(self) -> bool:
        return bool(self.reason)

    def line(self, *, dry_run: bool) -> str:
        """`max_invalid 10 %: 3 of 200 rows invalid (1.5 %): passes`."""
        said = f"{self.name} {self.limit}: {self.said}"
        if not self.counted:
            return said
        if not self.stops:
            return f"{said}: passes"
        return f"{said}: {'would stop' if dry_run else 'stops'} the run"


class GuardStop(HubSpotImportError):
    """A guard stopped the run before it wrote anything (exit 3); `verdict` says which and
    why."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(f"the run stopped before writing: {verdict.reason}")


class Guarding:
    """The guards of one run (the command line's over the mapping's), judged once, after the
    decisions and before the first write."""

    def __init__(
        self,
        options: RunOptions,
        mapping: Mapping,
        *,
        rows: int,
        invalid: int,
        missing: MissingCount | None = None,
    ) -> None:
        self.guards = options.guards.over(mapping.guards)
        self.rows = rows
        """The sheet's data rows, skipped rows included: the feed's size."""
        self.invalid = invalid
        self.missing = missing
        """The mapping's missing_rows: (None: keep); with one, max_missing is DEFAULT_MAX_MISSING
        unless given."""
        self.dry_run = options.dry_run
        self.verdicts: list[Verdict] = []

    def judge(self, summary: RunSummary, changed: Callable[[], int]) -> GuardStop | None:
        """Each guard's verdict (`changed` counts the records that would be updated, asked only
        of a max_changed guard), logged and in the run's summary; the first that stops the
        run, or None."""
        g = self.guards
        found: list[Verdict] = []
        if g.expect_rows is not None:
            found.append(_in_range(g.expect_rows, self.rows))
        if g.max_invalid is not None:
            found.append(
                self._share("max_invalid", g.max_invalid, self.invalid, "invalid", be=True)
            )
        max_missing = g.max_missing
        if max_missing is None and self.missing is not None:
            max_missing = DEFAULT_MAX_MISSING
        if max_missing is not None:
            found.append(self._missing(max_missing))
        if g.max_changed is not None:
            found.append(
                self._share("max_changed", g.max_changed, changed(), "would update a record")
            )
        self.verdicts = found
        summary.guards = [v.line(dry_run=self.dry_run) for v in self.verdicts]
        for line in summary.guards:
            log.info("guard %s", line)
        stop = next((v for v in self.verdicts if v.stops), None)
        summary.guard = stop.name if stop is not None else None
        return GuardStop(stop) if stop is not None else None

    def _share(
        self, name: str, limit: Limit, count: int, what: str, *, be: bool = False
    ) -> Verdict:
        """A guard of at most N (or N %) of the sheet's data rows; `be`: its reason says "are
        `what`" ("3 of 200 rows are invalid")."""
        counted = f"{count:,} of {self.rows:,} rows"
        share = _percent(count, self.rows)
        if not limit.exceeded(count, self.rows):
            return Verdict(name=name, limit=str(limit), said=f"{counted} {what} ({share})")
        verb = ("is " if count == 1 else "are ") if be else ""
        return Verdict(
            name=name,
            limit=str(limit),
            said=f"{counted} {what} ({share})",
            reason=f"{counted} {verb}{what} ({share}), more than {limit.given} {limit}",
        )

    def _missing(self, limit: Limit) -> Verdict:
        """max_missing: the records whose key left the feed, of those the mapping holds."""
        name = "max_missing"
        if self.missing is None:
            return Verdict(name=name, limit=str(limit), said=NOTHING_TO_COUNT, counted=False)
        count, held, sits_out = self.missing.counted()
        if sits_out:
            said = f"missing_rows sits out ({sits_out}), nothing to count"
            return Verdict(name=name, limit=str(limit), said=said, counted=False)
        counted = f"{count:,} of {held:,} records the mapping holds"
        share = _percent(count, held)
        said = f"{counted} would be {self.missing.verb} ({share})"
        if self.missing.empty and held:
            why = (
                f"the feed has no data rows: {counted} are no longer in it ({share}); a feed "
                f"without rows is never mirrored, whatever {limit.given} {limit} allows"
            )
            return Verdict(name=name, limit=str(limit), said=said, reason=why)
        if not limit.exceeded(count, held):
            return Verdict(name=name, limit=str(limit), said=said)
        why = f"{counted} are no longer in the feed ({share}), more than {limit.given} {limit}"
        return Verdict(name=name, limit=str(limit), said=said, reason=why)


def not_sent(decisions: Decisions, stop: GuardStop) -> dict[int, RowResult]:
    """Each row's result once a guard stopped the run: the rows that needed no request as
    they were decided (unchanged, ...), every other row `not_sent`, naming the guard."""
    message = f"not sent: {stop}"
    results = dict(decisions.settled)
    actions = decisions.actions
    for position in actions.positions:
        row = actions.prepared.rows[position]
        results[row] = RowResult(row=row, status=RowStatus.NOT_SENT, message=message)
    return results


def changed_records(
    decisions: Decisions,
    known: dict[str, KnownRow],
    rows: Prepared,
    mapping: Mapping,
    journal: Journal,
    client: HubSpotClient,
) -> int:
    """The records a run would update: its updates, its upserts of records the journal
    knows, the creates and upserts whose key HubSpot already holds (`held_elsewhere`), and
    the unchanged records whose links would change."""
    actions = decisions.actions
    count = 0
    unknown: list[int] = []
    for position, operation in zip(actions.positions, actions.operations, strict=True):
        if operation is Operation.UPDATE or (
            operation is Operation.UPSERT and _has_record(known, rows.keys[position])
        ):
            count += 1
        elif operation in (Operation.CREATE, Operation.UPSERT):
            unknown.append(position)
    count += held_elsewhere(client, rows, unknown, mapping)
    if mapping.associations:
        unchanged = {
            row: r
            for row, r in decisions.settled.items()
            if r.status is RowStatus.UNCHANGED and r.hubspot_id
        }
        linked = link_changes(unchanged, mapping, rows, journal)
        count += sum(1 for r in linked.values() if r.status is RowStatus.WOULD_UPDATE)
    return count


def would_change(
    results: dict[int, RowResult],
    rows: Prepared,
    mode: SyncMode,
    journal: Journal,
    client: HubSpotClient,
    mapping: Mapping,
) -> int:
    """The records a dry run's results would update: `would_update` rows, in upsert mode the
    rows whose record the journal knows (an upsert of it is an update), and the rows that
    would be created whose key HubSpot already holds (`held_elsewhere`)."""
    count = sum(1 for r in results.values() if r.status is RowStatus.WOULD_UPDATE)
    known = journal.known(rows.keys) if mode is SyncMode.UPSERT else {}
    unknown: list[int] = []
    for position, (row, key) in enumerate(zip(rows.rows, rows.keys, strict=True)):
        result = results.get(row)  # a plain create has none: it is would_create
        if result is not None and result.status is not RowStatus.WOULD_CREATE:
            continue
        if _has_record(known, key):
            count += 1
        else:
            unknown.append(position)
    return count + held_elsewhere(client, rows, unknown, mapping)


def held_elsewhere(
    client: HubSpotClient, rows: Prepared, positions: list[int], mapping: Mapping
) -> int:
    """How many of the rows at `positions` (creates and upserts of records the journal does
    not know) name by their key a record HubSpot already holds: sending them updates it (an
    upsert does; a create is refused and the run adopts the record). Read by the key's
    property, 100 keys a request; asked only of a max_changed guard. A key property HubSpot
    does not hold unique cannot be read so: such rows are created, and not counted."""
    key = mapping.key
    if key is None or not positions or not mapping.by_column[key].unique:
        return 0
    prop = mapping.by_column[key].property
    keys = list(dict.fromkeys(v for p in positions if (v := rows.key_values[p])))
    found = 0
    for start in range(0, len(keys), MAX_BATCH_INPUTS):
        body = read_batch(
            client,
            mapping.object_type,
            keys[start : start + MAX_BATCH_INPUTS],
            [prop],
            id_property=prop,
            purpose="count the records the run would update for --max-changed",
        )
        found += sum(1 for r in body.get("results") or [] if isinstance(r, dict))
    return found


def _has_record(known: dict[str, KnownRow], key: str) -> bool:
    """Whether the journal holds a record for the row key."""
    prior = known.get(key)
    return prior is not None and bool(prior.hubspot_id)


def _in_range(expected: RowRange, rows: int) -> Verdict:
    """expect_rows: the sheet's data rows within MIN[:MAX]."""
    said = f"{rows:,} data rows"
    inside = rows >= expected.low and (expected.high is None or rows <= expected.high)
    reason = (
        ""
        if inside
        else f"the sheet has {said}; {expected.given} {expected} expects {expected.expected()}"
    )
    return Verdict(name="expect_rows", limit=str(expected), said=said, reason=reason)


def _percent(count: int, total: int) -> str:
    """`51.2 %`, `50 %`, `0.01 %`: a share of `total`, to a tenth (a small share keeps its
    first digits, so that it does not read 0)."""
    if not total:
        return "0 %"
    share = count * 100 / total
    text = f"{share:.1f}"
    if text == "0.0" and count:
        text = f"{share:.1g}"
    return f"{text.removesuffix('.0')} %"
