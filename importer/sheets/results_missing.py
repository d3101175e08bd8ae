"""The records a mapping's `missing_rows:` acted on in one run (`MissingReport`), and the
Missing sheet of the results workbook that lists them: a line per record whose key is no
longer in the feed, what was done to it (archived, set, failed, ...) and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from openpyxl import Workbook

from .workbook import _AMBER, _GREEN, _GREY, _RED, _Sheet

__all__ = [
    "MISSING_COLUMNS",
    "MissingLine",
    "MissingOutcome",
    "MissingReport",
    "add_missing_sheet",
    "recycling_bin",
]

MISSING_COLUMNS = (
    "key",
    "hubspot_id",
    "action",
    "message",
    "values_set",
    "values_before",
    "last_imported_by",
)


def recycling_bin(run_id: str) -> str:
    """How an archived record comes back, as its line in the Missing sheet says it."""
    return (
        "HubSpot's recycling bin restores the original record (same id) within 90 days; "
        f"`hubspot-import undo {run_id}` creates it again from the values kept in the journal "
        "(a new id: HubSpot's API cannot restore an archived record)"
    )


class MissingOutcome(StrEnum):
    """What became of one record whose key left the feed (the Missing sheet's `action`)."""

    ARCHIVED = "archived"
    SET = "set"
    FAILED = "failed"
    WOULD_ARCHIVE = "would archive"
    WOULD_SET = "would set"
    NOT_SENT = "not sent"
    GONE = "gone"
    """HubSpot no longer had it (deleted, archived or merged outside this tool)."""
    RETURNED = "returned"
    """Its key is back in the feed: created again, or the values set written back."""

    @property
    def counted(self) -> str:
        """Its key in the summary's `missing` counts: `would_archive`, `not_sent`."""
        return self.value.replace(" ", "_")


_COLOURS = {
    MissingOutcome.ARCHIVED: _GREEN,
    MissingOutcome.SET: _GREEN,
    MissingOutcome.FAILED: _RED,
    MissingOutcome.WOULD_ARCHIVE: _GREEN,
    MissingOutcome.WOULD_SET: _GREEN,
    MissingOutcome.NOT_SENT: _AMBER,
    MissingOutcome.GONE: _GREY,
    MissingOutcome.RETURNED: _GREY,
}


@dataclass(frozen=True, kw_only=True)
class MissingLine:
    """One record of the Missing sheet."""

    key: str
    """The key's value (`00420`)."""
    hubspot_id: str
    outcome: MissingOutcome
    message: str = ""
    values_set: dict[str, str] = field(default_factory=dict)
    values_before: dict[str, Any] | None = None
    """HubSpot's values read before the request (None: not read)."""
    last_run: str = ""
    """The run that last imported the record."""


@dataclass(kw_only=True)
class MissingReport:
    """What `missing_rows:` did in one run: its rule, the records the mapping held, a line per
    record whose key left the feed (and per record whose key came back), or why it sat out."""

    rule: str
    """`archive`, `set status: discontinued`."""
    held: int = 0
    """Records the mapping held when the run began (those already set by an earlier run
    left out)."""
    lines: list[MissingLine] = field(default_factory=list)
    sits_out: str = ""
    """Why the rule did nothing this run ("" when it ran)."""
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        """Records per outcome, every outcome of the run's kind named (zeros too)."""
        kinds = (
            [MissingOutcome.WOULD_ARCHIVE, MissingOutcome.WOULD_SET, MissingOutcome.RETURNED]
            if self.dry_run
            else [o for o in MissingOutcome if not o.value.startswith("would")]
        )
        found = {o.counted: 0 for o in kinds}
        for line in self.lines:
            found[line.outcome.counted] = found.get(line.outcome.counted, 0) + 1
        return found

    @property
    def missing(self) -> int:
        """Records whose key is no longer in the feed (those back in it left out)."""
        return sum(1 for line in self.lines if line.outcome is not MissingOutcome.RETURNED)

    @property
    def unsettled(self) -> int:
        """Records whose archive or set failed or was not sent (the run exits 1)."""
        bad = (MissingOutcome.FAILED, MissingOutcome.NOT_SENT)
        return sum(1 for line in self.lines if line.outcome in bad)

    def as_json(self) -> dict[str, Any]:
        """The summary JSON's `missing`."""
        return {
            "rule": self.rule,
            "held": self.held,
            "missing": self.missing,
            **self.counts(),
            "sits_out": self.sits_out or None,
        }

    def said(self) -> str:
        """One line for the console and the Summary sheet."""
        head = f"missing_rows {self.rule}"
        if self.sits_out:
            return f"{head}: {self.sits_out}"
        back = MissingOutcome.RETURNED.counted
        counts = {k: n for k, n in self.counts().items() if n and k != back}
        said = (
            f"{head}: {self.missing:,} of the {self.held:,} records it holds are no longer in "
            "the feed: " + ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in counts.items())
            if self.missing
            else f"{head}: every one of the {self.held:,} records it holds is in the feed"
        )
        returned = self.counts().get(back, 0)
        return f"{said}; {returned:,} back in the feed" if returned else said


def add_missing_sheet(wb: Workbook, report: MissingReport, record_link: str | None) -> None:
    """The Missing sheet: a line per record `report` names, its id linked to the record."""
    ws = _Sheet(wb.create_sheet("Missing"))
    ws.ws.freeze_panes = "B2"
    ws.widths([16, 14, 14, 60, 30, 40, 26])
    ws.printable(repeat_header=True)
    ws.append(list(MISSING_COLUMNS), bold=True)
    for line in report.lines:
        link = f"{record_link}{line.hubspot_id}" if record_link and line.hubspot_id else None
        ws.ws.append(
            [
                ws.cell(line.key),
                ws.cell(line.hubspot_id, link=link),
                ws.cell(line.outcome.value, fill=_COLOURS[line.outcome], align="center"),
                ws.cell(line.message),
                ws.cell(_values(line.values_set)),
                ws.cell(_values(line.values_before or {})),
                ws.cell(line.last_run),
            ]
        )
    ws.ws.auto_filter.ref = f"A1:G{len(report.lines) + 1}"


def _values(values: dict[str, Any]) -> str:
    """`status: discontinued; price: 12`: properties and values as the sheet shows them."""
    return "; ".join(f"{p}: {'' if v is None else v}" for p, v in sorted(values.items()))
