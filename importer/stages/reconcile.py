"""Reconcile stage: the run and its journal agree before anything is sent. The journal is the
portal's (asked of HubSpot once, then remembered) and locked; the run is written down with its
rows, so `show RUN --out` can always write its workbook; what an earlier run left open is
settled, rows it left uncertain are looked up, and `--verify` reads back what HubSpot holds."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..api.account import PortalInfo, identify_portal
from ..api.client import HubSpotClient
from ..api.object_types import ObjectTypeIdentity, resolve_object_type
from ..core.errors import HubSpotError, KeylessRerun
from ..core.outcome import RowIssue, RowResult, RowStatus
from ..core.prepared import Prepared, journal_key
from ..mapping.model import Mapping, SyncMode
from ..sheets.inputs import shown_name
from ..sheets.results import RunSummary
from ..state.journal import Journal, KnownRow, RowState
from ..state.key_forms import compose_keys
from ..state.paths import adopt_named_journals, journal_path, remember_object_type
from ..state.rundata import keep_input
from .options import RunOptions
from .recovery import recover_open_batches
from .send import Uploader
from .verify import Drift, verify

__all__ = [
    "KeylessImport",
    "Reconciled",
    "begin_run",
    "keyless_import",
    "open_journal",
    "reconcile",
    "record_keyless_import",
]

log = logging.getLogger(__name__)

UNSETTLED = (RowStatus.NOT_SENT, RowStatus.UNCERTAIN, RowStatus.FAILED)
"""A keyless import with rows in these states is not finished: the next run resumes it."""


def open_journal(
    client: HubSpotClient, options: RunOptions, object_type: str, state_dir: Path
) -> tuple[PortalInfo | None, Journal]:
    """The portal the token reaches (asked of HubSpot once, a read, and remembered) and its
    journal for `object_type`, locked unless this is a dry run: the lock comes before anything
    else is read or sent."""
    portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
    base = options.journal_base or options.base_url
    kind = resolve_object_type(client, object_type)
    path = _journal_for(state_dir, base, kind, portal)
    journal = Journal(path, lock=not options.dry_run)
    both = compose_keys(path)
    if both:
        log.warning(
            "the journal %s knew %d keys in two Unicode spellings, each with its own record "
            "(check HubSpot for duplicates; rows now use the composed one's): %s",
            path,
            len(both),
            ", ".join(both[:10]),
        )
    return portal, journal


def _journal_for(
    state_dir: Path, base_url: str, kind: ObjectTypeIdentity, portal: PortalInfo | None
) -> Path:
    """This portal's journal of the object type, named by what `kind` says (moving one an
    older version kept per base URL, when it says it is this portal's, or under another name
    of the type); without a portal, the journal per base URL, with a warning."""
    portal_id = portal.portal_id if portal is not None else None
    if kind.names:
        remember_object_type(
            state_dir, base_url, portal_id, kind.journal_name, (kind.journal_name, *kind.names)
        )
    notes = adopt_named_journals(state_dir, base_url, kind.journal_name, kind.names, portal_id)
    for note in notes:
        log.warning("%s", note)
    if portal is None:
        log.warning(
            "HubSpot did not say which portal this token belongs to: the journal is kept per "
            "base URL, which every portal there shares. Give --portal-id to keep it per portal."
        )
    elif not portal.production:
        log.warning(
            "portal %d is a %s account, not production", portal.portal_id, portal.account_type
        )
    return journal_path(state_dir, base_url, kind.journal_name, portal_id)


@dataclass(frozen=True)
class KeylessImport:
    """One file (and sheet) imported with one keyless mapping, and which import of it the
    rows belong to."""

    scope: str
    generation: str


def keyless_import(
    journal: Journal, options: RunOptions, sheet: str | None, run_id: str, mode: SyncMode
) -> KeylessImport:
    """Which import of this file the rows of a keyless mapping belong to: the unfinished one
    (resumed), a new one, or, for a finished import, none: without a key nothing can tell which
    record a row is, and every changed row would become a second record (ConfigError)."""
    where = f"{options.input_path.resolve()}\0{sheet or ''}\0{options.mapping_path.resolve()}"
    scope = hashlib.sha256(where.encode()).hexdigest()[:24]
    state = journal.keyless_import(scope)
    if state is None:
        # Rows an earlier version keyed by their values alone: carry on with those keys once.
        return KeylessImport(scope, "" if journal.has_value_hash_keys() else run_id)
    if not state.get("finished") or mode is not SyncMode.CREATE:
        return KeylessImport(scope, str(state.get("generation") or ""))
    if options.import_again:
        return KeylessImport(scope, run_id)
    raise KeylessRerun(
        f"run {state.get('run_id')} already imported {shown_name(options.input_path)} with "
        f"{options.mapping_path}, which has no key: HubSpot cannot tell which record a row is, "
        "so a second import would create every row again as a new record. Add a key to the "
        "mapping (`key:` naming a column with unique values, such as an id or an email), or, "
        "to create every row again, run with --import-again."
    )


def record_keyless_import(
    journal: Journal, keyless: KeylessImport, summary: RunSummary, options: RunOptions
) -> None:
    """Whether the keyless import is finished (every row settled), for the next run."""
    unsettled = sum(summary.counts.get(s.value, 0) for s in UNSETTLED)
    journal.record_keyless_import(
        keyless.scope,
        {
            "generation": keyless.generation,
            "finished": unsettled == 0 and summary.stopped_by is None,
            "run_id": summary.run_id,
            "input": shown_name(options.input_path),
        },
    )


def begin_run(
    journal: Journal,
    options: RunOptions,
    mapping: Mapping,
    mode: SyncMode,
    summary: RunSummary,
    portal: PortalInfo | None,
    frame: pd.DataFrame,
    issues: tuple[RowIssue, ...],
) -> None:
    """Write the run down before its first request (a dry run writes nothing): whatever
    becomes of this process, `show RUN --out` can write the run's workbook from the journal.
    Row keys an older version kept without their property are named anew."""
    if not options.dry_run:
        if options.forget_uncertain:
            log.info("forgot %d uncertain rows", journal.forget_uncertain())
        journal.start_run(
            summary.run_id,
            input_file=shown_name(options.input_path),
            sheet=summary.sheet,
            # Resolved: two mappings named alike in two folders are two mappings.
            mapping_file=str(options.mapping_path.resolve()),
            mode=mode.value,
            base_url=options.base_url,
            object_type=mapping.object_type,
        )
    if mapping.key_property is not None:
        prop, kind = mapping.key_property, mapping.object_type
        upgraded = journal.upgrade_keys(
            lambda value: journal_key(kind, prop, value), journal_key(kind, prop, "")
        )
        if upgraded:
            log.info("the journal's %d row keys now name their property, %s", upgraded, prop)
    if options.dry_run:
        return
    if portal is not None:
        journal.set_meta("portal", json.dumps(portal.as_json()))
    keep_input(journal, summary.run_id, frame, issues, summary)


@dataclass(frozen=True, kw_only=True)
class Reconciled:
    """The journal's rows for this run's keys once earlier runs are settled, and what
    --verify found; or, when HubSpot stopped the settling, every row `not_sent`."""

    known: dict[str, KnownRow]
    drift: Drift | None = None
    stopped_by: HubSpotError | None = None
    not_sent: dict[int, RowResult] | None = None


def reconcile(
    uploader: Uploader, journal: Journal, rows: Prepared, *, verify_first: bool
) -> Reconciled:
    """Settle the batches a crashed run left open (each by the key it was sent with), look up
    rows an earlier run left uncertain, and with `verify_first` read back what HubSpot holds of
    the journal's records. Until that is done nothing may be sent: a row might be created
    twice."""
    try:
        open_batches = journal.open_batches()
        if open_batches:
            log.warning(
                "%d batches of an earlier run were never confirmed: reconciling", len(open_batches)
            )
            recover_open_batches(uploader, open_batches)
        known = journal.known(rows.keys)
        uncertain = [
            rows[i]
            for i, key in enumerate(rows.keys)
            if key in known and known[key].state is RowState.UNCERTAIN
        ]
        written = max((known[r.key].updated_epoch or 0.0 for r in uncertain), default=None)
        if uncertain and uploader.recheck_uncertain(uncertain, written):
            log.info("looked up %d rows an earlier run left uncertain", len(uncertain))
            known = journal.known(rows.keys)
        if not verify_first:
            return Reconciled(known=known)
        drift = verify(uploader.client, uploader.mapping.object_type, rows, known)
        journal.forget(drift.gone)
        journal.repoint({key: new for key, (_, new) in drift.moved.items()})
        return Reconciled(known=journal.known(rows.keys), drift=drift)
    except HubSpotError as exc:
        reason = f"not sent: could not reconcile an earlier interrupted run first ({exc})"
        return Reconciled(
            known={},
            stopped_by=exc,
            not_sent={
                row: RowResult(row=row, status=RowStatus.NOT_SENT, message=reason)
                for row in rows.rows
            },
        )
