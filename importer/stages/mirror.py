"""Mirror stage: a mapping's `missing_rows:` (archive, or set properties) applied to the
records it holds whose key is no longer in the feed.

The records a mapping holds are the journal's synced rows keyed on its key property whose
last write was by a run of the same mapping file: the records it created or adopted, less
those its rule set already. One is missing when no row of tonight's feed carries its key:
valid, invalid or skipped by a row rule alike (an invalid row is no discontinued product, and
a row a rule skips is still in the feed). The rule sits out when no row has a key to read.
They are counted before the first write (the max_missing guard, 10 % by default), and
archived or set after the run's own writes, never when the run stopped before its end. A key
that comes back is created again (or, set, has its earlier values written back)."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np

from ..api.client import HubSpotClient
from ..api.reads import read_values
from ..core.errors import HubSpotError, RunInterrupted
from ..core.hubspot import chunks
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared, journal_key
from ..core.shutdown import Stop, arrived
from ..mapping.missing_keys import MissingAction, refuse_in_plan
from ..mapping.model import Mapping, PropertyType
from ..sheets.results import RunSummary
from ..sheets.results_missing import MissingLine, MissingReport, recycling_bin
from ..sheets.results_missing import MissingOutcome as Outcome
from ..state.journal import Journal
from ..state.missing_table import MissingEntry, MissingState
from .cell_rules import Cells, ColumnRules
from .empty_feed import NO_ROWS, no_rows
from .guards import GuardStop
from .mirror_back import held_now, plan_back, shown, would_set_back
from .mirror_send import (
    Candidate,
    Flight,
    add_note,
    back_line,
    gone_message,
    send_back,
    send_entries,
    uncertain,
    would_return,
)
from .reconcile import Reconciled
from .shape import Shaped

__all__ = ["Mirror", "Stopped", "feed_keys", "mirror_for", "unsettled"]

Stopped = HubSpotError | RunInterrupted | GuardStop
"""What stopped a run part way (as `stages.run` says it)."""

log = logging.getLogger(__name__)

NO_KEY = "no row of the feed has a key to read"
SET_ALREADY = (MissingState.DONE, MissingState.SENDING, MissingState.RETURNING)
"""States of a set record its rule is done with until its key comes back."""
WRITTEN = (RowStatus.CREATED, RowStatus.UPDATED, RowStatus.INCOMPLETE)


def feed_keys(mapping: Mapping, shaped: Shaped, rows: Prepared) -> frozenset[str]:
    """The journal key of every row of the feed whose key can be read: the valid rows', and
    those of the rows found invalid or skipped, read as the validate stage reads the key."""
    keys = {k for k, v in zip(rows.keys, rows.key_values, strict=True) if v is not None}
    if mapping.key is None or mapping.key_property is None:
        return frozenset(keys)
    frame = shaped.table.frame
    others = np.flatnonzero(~frame.index.isin(rows.rows))
    if not len(others):
        return frozenset(keys)
    spec = mapping.by_column[mapping.key]
    cells = Cells(frame[mapping.key])
    excel = shaped.table.sheet is not None
    rules = ColumnRules(spec, cells, mapping.object_type, mapping.number, excel=excel)
    if spec.type is PropertyType.STRING:
        values = rules.convert(others).to_pylist()
    elif spec.type is PropertyType.NUMBER:  # the number HubSpot holds, as a valid row's key
        values = rules.keys.take(others).to_pylist()
    else:  # a date as key: its cell as written
        values = cells.text.take(others).to_pylist()
    kind, prop = mapping.object_type, mapping.key_property
    keys.update(journal_key(kind, prop, v) for v in values if v)
    return frozenset(keys)


def unsettled(rows: Prepared, exc: HubSpotError) -> Reconciled:
    """Every row `not_sent`: HubSpot stopped the settling of the requests of `missing_rows:`
    an earlier run left open, and nothing may be sent before they are settled."""
    reason = (
        "not sent: could not settle first the missing_rows: requests an interrupted run left "
        f"open ({exc})"
    )
    return Reconciled(
        known={},
        stopped_by=exc,
        not_sent={
            r: RowResult(row=r, status=RowStatus.NOT_SENT, message=reason) for r in rows.rows
        },
    )


def mirror_for(
    mapping: Mapping,
    journal: Journal,
    run_id: str,
    *,
    mapping_file: str,
    shaped: Shaped,
    rows: Prepared,
    dry_run: bool,
    in_plan: bool,
) -> Mirror | None:
    """The run's `missing_rows:`; None when the mapping keeps what leaves the feed."""
    rule = mapping.missing_rows
    if rule.keeps:
        return None
    if in_plan:
        refuse_in_plan(rule, mapping.source)
    present = feed_keys(mapping, shaped, rows)
    # A header-only feed lost every row: the guard judges it (stages/empty_feed.py).
    empty = shaped.table.frame.empty
    mirror = Mirror(
        mapping,
        journal,
        run_id,
        mapping_file=mapping_file,
        present=present,
        rows=rows,
        dry_run=dry_run,
        sits_out="" if present or empty else NO_KEY,
        empty=empty,
    )
    if empty and not mirror.held:
        mirror.report.sits_out = NO_ROWS
        raise no_rows(shaped.table, mirror.report.as_json())
    return mirror


class Mirror:
    """One run's `missing_rows:`: counted for the max_missing guard before the first write
    (`counted`), applied after the run's own writes (`apply`)."""

    def __init__(
        self,
        mapping: Mapping,
        journal: Journal,
        run_id: str,
        *,
        mapping_file: str,
        present: frozenset[str],
        rows: Prepared,
        dry_run: bool,
        sits_out: str = "",
        empty: bool = False,
    ) -> None:
        self.mapping = mapping
        self.empty = empty
        """The feed has no data rows: never mirrored (max_missing stops the run)."""
        self.rule = mapping.missing_rows
        self.journal = journal
        self.run_id = run_id
        self.mapping_file = mapping_file
        self.present = present
        self.rows: Prepared | None = rows
        """The valid rows (let go once applied): keys back in the feed, their values."""
        self.names = rows.property_names
        self.dry_run = dry_run
        self.report = MissingReport(rule=self.rule.describe(), dry_run=dry_run, sits_out=sits_out)
        self.flight = Flight()

    @property
    def verb(self) -> str:
        """What becomes of the missing records: `archived`, `set`."""
        return "archived" if self.rule.action is MissingAction.ARCHIVE else "set"

    def counted(self) -> tuple[int, int, str]:
        """(records no longer in the feed, records the mapping holds, why the rule sits out)."""
        if self.report.sits_out:
            return 0, len(self.held), self.report.sits_out
        return len(self.candidates), len(self.held), ""

    @cached_property
    def held(self) -> list[tuple[str, str, str]]:
        """(row key, HubSpot id, last run) of each record the mapping holds but had not set."""
        mapping, journal = self.mapping, self.journal
        prefix = journal_key(mapping.object_type, mapping.key_property or "", "")
        retired = {e.row_key for e in journal.missing_entries(states=SET_ALREADY, action="set")}
        held = [h for h in journal.held_rows(prefix, self.mapping_file) if h[0] not in retired]
        self.report.held = len(held)
        return held

    @cached_property
    def candidates(self) -> list[Candidate]:
        """The records the mapping holds whose key no row of the feed carries (a record
        another held row points at too, after a merge, is left alone)."""
        journal = self.journal
        # A key typed in another Unicode form (Müller decomposed) is the same key.
        present = {_nfc(k) for k in self.present}
        gone = [h for h in self.held if _nfc(h[0]) not in present]
        leaving = {key for key, _, _ in gone}
        shared = journal.holders(hid for _, hid, _ in gone)
        return [
            Candidate(row_key=key, hubspot_id=hid, last_run=run)
            for key, hid, run in gone
            if set(shared.get(hid, [key])) <= leaving
        ]

    def apply(
        self,
        client: HubSpotClient,
        results: dict[int, RowResult],
        summary: RunSummary,
        stopped_by: Stopped | None,
    ) -> Stopped | None:
        """Archive or set the missing records (a dry run lists them; after a stop, they are
        not sent), and settle the keys that came back; the report goes in `summary`. Returns
        what stopped the run: `stopped_by`, or what stopped this stage."""
        summary.missing = self.report
        try:
            if self.empty and stopped_by is None and not self.dry_run:  # never mirrored
                self.report.sits_out = NO_ROWS
            if self.report.sits_out:
                self.report.held = len(self.held)
                log.info("missing_rows %s sits out: %s", self.rule.describe(), self.report.sits_out)
                return stopped_by
            if stopped_by is not None:
                why = str(stopped_by)
                if not why.startswith("the run stopped"):
                    why = f"the run stopped ({why})"
                self._unsent(self.candidates, why)
                return stopped_by
            if self.dry_run:
                self._would()
                self._returned(client, results)
                return None
            self._returned(client, results)
            return self._send(client)
        except HubSpotError as exc:  # writing back the values of a record back in the feed
            self._unsent(self._unsaid(), f"the run stopped ({exc})")
            return exc
        except Stop as signalled:  # writing back the values of a record back in the feed
            stop = self.flight.stopped(signalled)
            self._unsent(self._unsaid(), f"the run stopped ({stop})")
            return stop
        finally:
            self.rows = None
            log.info("%s", self.report.said())

    def _would(self) -> None:
        """A dry run's lines: what would be archived or set."""
        outcome = Outcome.WOULD_ARCHIVE if self.verb == "archived" else Outcome.WOULD_SET
        for c in self.candidates:
            message = f"would be {self.verb}: its key is no longer in the feed"
            self.report.lines.append(self._line(c, outcome, message))

    def _unsaid(self) -> list[Candidate]:
        """The candidates no line of the report names yet."""
        said = {line.key for line in self.report.lines}
        return [c for c in self.candidates if c.key_value not in said]

    def _unsent(self, candidates: Iterable[Candidate], why: str) -> None:
        """Lines for records nothing was sent for, saying why."""
        for c in candidates:
            self.report.lines.append(self._line(c, Outcome.NOT_SENT, f"not {self.verb}: {why}"))

    def _line(
        self,
        c: Candidate,
        outcome: Outcome,
        message: str,
        before: dict[str, Any] | None = None,
    ) -> MissingLine:
        """The Missing sheet's line of candidate `c`."""
        return MissingLine(
            key=c.key_value,
            hubspot_id=c.hubspot_id,
            outcome=outcome,
            message=message,
            values_set=dict(self.rule.values),
            values_before=before,
            last_run=c.last_run,
        )

    def _send(self, client: HubSpotClient) -> Stopped | None:
        """Archive or set the missing records, 100 a request, from a sender thread of their
        own: a signal waits for the request in flight to be answered and recorded (`Flight`:
        at most HUBSPOT_IMPORT_STOP_WAIT seconds; a second signal leaves it, its records
        uncertain), and the rest are not sent. Returns what stopped it."""
        candidates = self.candidates
        batches = list(chunks(candidates))
        stop: Stopped | None = None
        try:
            self.flight.fly(lambda chunk: self._batch(client, chunk), batches)
        except HubSpotError as exc:
            stop = exc
        except Stop as signalled:
            stop = self.flight.stopped(signalled)
            by_key = {c.row_key: c for c in candidates}
            self.report.lines += [
                self._line(
                    by_key[e.row_key], Outcome.FAILED, uncertain(signalled, self.verb), e.before
                )
                for e in self.flight.flying
                if self.flight.abandoned
            ]
        if stop is not None:
            self._unsent(self._unsaid(), f"the run stopped ({stop})")
        return stop

    def _batch(self, client: HubSpotClient, chunk: list[Candidate]) -> None:
        """One request's records, from the sender thread: their values read, the request
        recorded, sent, settled; their lines in the report. After a signal that came during
        the read, nothing is recorded nor sent: `_send` says the records were not."""
        action = self.rule.action
        names = self.names if action is MissingAction.ARCHIVE else [p for p, _ in self.rule.values]
        ids = [c.hubspot_id for c in chunk]
        purpose = f"read the records missing_rows: {self.rule.describe()} is for"
        live = read_values(client, self.mapping.object_type, ids, names, purpose)
        if arrived() is not None:
            return
        kept = self.journal.kept_rows(c.row_key for c in chunk)
        entries = [self._entry(c, live.get(c.hubspot_id), kept.get(c.row_key, {})) for c in chunk]
        sending = [e for e in entries if e.state is MissingState.SENDING]
        by_key = {c.row_key: c for c in chunk}

        def begin() -> None:
            """The request recorded before it leaves; the records HubSpot no longer has said."""
            self.journal.begin_missing(entries)
            self.report.lines.extend(
                self._line(by_key[e.row_key], Outcome.GONE, e.message)
                for e in entries
                if e.state is MissingState.GONE
            )

        def settle(failed: dict[str, str]) -> None:
            """HubSpot's answer recorded, and said."""
            self.journal.settle_missing(sending, failed)
            self.report.lines += [
                self._done(by_key[e.row_key], e, failed.get(e.row_key)) for e in sending
            ]

        object_type = self.mapping.object_type
        try:
            failed = self.flight.send(
                sending,
                begin,
                lambda: send_entries(client, object_type, action, sending) if sending else {},
            )
        except HubSpotError as exc:
            why = f"not confirmed ({exc}): the next run finds out first whether it was {self.verb}"
            self.report.lines += [
                self._line(by_key[e.row_key], Outcome.FAILED, why, e.before) for e in sending
            ]
            raise
        if failed is not None:  # else the run left it: `_send` says so
            self.flight.land(lambda: settle(failed))

    def _entry(
        self, c: Candidate, held: dict[str, Any] | None, kept: dict[str, Any]
    ) -> MissingEntry:
        """The journal's record of what is about to be sent for `c` (or that HubSpot no
        longer has it: `held` None)."""
        entry = MissingEntry(
            run_id=self.run_id,
            row_key=c.row_key,
            hubspot_id=c.hubspot_id,
            action=self.rule.action.value,
            set_to=dict(self.rule.values),
            before=held,
            kept_row=kept,
        )
        if held is None:
            message = gone_message(entry)
            return replace(entry, state=MissingState.GONE, message=message)
        return entry

    def _done(self, c: Candidate, entry: MissingEntry, failure: str | None) -> MissingLine:
        """The line of a record HubSpot answered for."""
        if failure is not None:
            return self._line(c, Outcome.FAILED, f"not {self.verb}: {failure}", entry.before)
        if self.rule.action is MissingAction.ARCHIVE:
            said = f"archived: its key is no longer in the feed; {recycling_bin(self.run_id)}"
            return self._line(c, Outcome.ARCHIVED, said, entry.before)
        said = (
            f"set: its key is no longer in the feed; `hubspot-import undo {self.run_id}` "
            "writes back the values it had"
        )
        return self._line(c, Outcome.SET, said, entry.before)

    def _returned(self, client: HubSpotClient, results: dict[int, RowResult]) -> None:
        """Keys an earlier run's rule archived or set that are back in the feed, among the
        valid rows: an archived one was created again (or found) by this run; a set one has
        the values it had before written back, where its row does not write them itself."""
        rows = self.rows
        if rows is None:
            return
        states = (MissingState.DONE, MissingState.RETURNING)
        wanted = {e.row_key: e for e in self.journal.missing_entries(states=states)}
        back = {k: i for i, k in enumerate(rows.keys) if k in wanted}
        if not back:
            return
        archived = [wanted[k] for k in back if wanted[k].action == MissingAction.ARCHIVE]
        restored = [wanted[k] for k in back if wanted[k].action == MissingAction.SET]
        if self.dry_run:  # nothing was written: what the run would do is said
            self.report.lines += would_return(archived, back, rows, results)
            if restored:
                kind = self.mapping.object_type
                held = held_now(client, kind, restored)
                planned = plan_back(kind, restored, back, rows, held)
                self.report.lines += would_set_back(planned, back, rows, results)
            return
        self._created_again(archived, back, rows, results)
        if restored:
            self._write_back(client, restored, back, rows, results)

    def _created_again(
        self,
        entries: list[MissingEntry],
        back: dict[str, int],
        rows: Prepared,
        results: dict[int, RowResult],
    ) -> None:
        """Archived records whose key this run wrote again: `returned`, noted on their row."""
        returned = []
        for e in entries:
            row = rows.rows[back[e.row_key]]
            result = results.get(row)
            if result is None or result.status not in WRITTEN or not result.hubspot_id:
                continue
            again = "found again" if result.hubspot_id == e.hubspot_id else "created again"
            note = (
                f"back in the feed: run {e.run_id} had archived record {e.hubspot_id} "
                f"(missing_rows); {again} as {result.hubspot_id}"
            )
            add_note(results, row, note)
            returned.append(replace(e, new_id=result.hubspot_id))
            self.report.lines.append(back_line(e, result.hubspot_id, note))
        self.journal.mark_missing(returned, MissingState.RETURNED, message="back in the feed")

    def _write_back(
        self,
        client: HubSpotClient,
        entries: list[MissingEntry],
        back: dict[str, int],
        rows: Prepared,
        results: dict[int, RowResult],
    ) -> None:
        """Set records whose key is back: the values they had before the rule set them
        written back (batch/update), for the properties the row does not write itself."""
        kind = self.mapping.object_type
        planned = plan_back(kind, entries, back, rows, held_now(client, kind, entries))
        restoring = [b.entry for b in planned]
        edited = {b.entry.row_key: b.changed for b in planned}
        to_send = [e for e in restoring if e.set_to]
        # Sent as the records leaving the feed are, recorded request by request (a signal).
        failed = send_back(client, self.journal, self.flight, kind, to_send)
        unsent = [e for e in restoring if not e.set_to]  # their rows write those values
        self.journal.mark_missing(unsent, MissingState.RETURNED, message="back in the feed")
        for e in restoring:
            why = failed.get(e.row_key)
            note = f"back in the feed: run {e.run_id} had set it (missing_rows); " + _written(
                e, why
            )
            if edited[e.row_key]:
                kept = shown(edited[e.row_key])
                note += f"; left as HubSpot holds them, changed since the rule set them: {kept}"
            add_note(results, rows.rows[back[e.row_key]], note)
            line = back_line(e, e.hubspot_id, note)
            self.report.lines.append(replace(line, outcome=Outcome.FAILED) if why else line)


def _nfc(key: str) -> str:
    """A journal key in Unicode's composed form, as `values:` words are compared."""
    return unicodedata.normalize("NFC", key)


def _written(entry: MissingEntry, why: str | None) -> str:
    """What became of a set record's earlier values once its key came back."""
    if why:
        return f"its earlier values were not written back ({why})"
    if not entry.set_to:
        return "its row writes those properties itself"
    return f"its earlier values written back: {shown(entry.set_to)}"
