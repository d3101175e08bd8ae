"""Run history and undo, read from the journals in a state directory."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..api.account import PortalInfo, identify_portal
from ..api.client import HubSpotClient, Verdict, error_message
from ..core.errors import ConfigError, HubSpotError, UncertainDelivery
from ..core.hubspot import MAX_ASSOCIATION_INPUTS, chunks
from ..core.shutdown import arrived, deferred, raise_if_stopped
from ..state.journal import Journal
from ..state.missing_table import MissingEntry, MissingState
from .edited import check_created
from .restore import Restored, restore_missing
from .undo_wire import UndoStopped, Wire, clear_sending, mark_sending, sent_before

__all__ = [
    "Undo",
    "UndoDone",
    "check_portal",
    "find_run",
    "list_runs",
    "prepare_undo",
    "undo_run",
]

log = logging.getLogger(__name__)


def _journals(state_dir: Path) -> list[Path]:
    return sorted(p for p in Path(state_dir).glob("*.sqlite") if p.is_file())


def list_runs(state_dir: Path) -> list[dict[str, Any]]:
    """Every run in every journal of `state_dir`, newest first, with its journal's path."""
    runs = []
    for path in _journals(state_dir):
        journal = Journal(path)
        try:
            info = _portal(journal.get_meta("portal"))
            portal = info.describe() if info is not None else None
            portal_id = info.portal_id if info is not None else None
            runs += [
                {**r, "journal": str(path), "portal": portal, "portal_id": portal_id}
                for r in journal.runs()
            ]
        finally:
            journal.close()
    return sorted(runs, key=lambda r: (r["started"], r["run_id"]), reverse=True)


def _portal(meta: str | None) -> PortalInfo | None:
    """The portal a journal's remembered account details name."""
    try:
        return PortalInfo.from_json(json.loads(meta)) if meta else None
    except ValueError:
        return None


def check_portal(
    undo: Undo, client: HubSpotClient, token: str, state_dir: Path, portal_id: int | None = None
) -> None:
    """Raise ConfigError, before anything is archived, unless `token` is known to reach the
    portal the run wrote to: every portal of a region shares one base URL, and the run's ids
    name other records (or none) there. A token HubSpot will not name a portal for, or a run
    whose journal does not name its portal, goes on only when `portal_id` (--portal-id) says
    which portal the token reaches, and it is the run's."""
    run = undo.run
    made_in = run.get("portal_id")
    # Asked of HubSpot whatever --portal-id says: it stands only where HubSpot will not say.
    here = identify_portal(client, token, state_dir)
    if here is not None and portal_id is not None and here.portal_id != portal_id:
        raise ConfigError(
            f"--portal-id {portal_id} is not the portal this token reaches: HubSpot says it is "
            f"portal {here.describe()}: nothing was archived."
        )
    here = here or (PortalInfo(portal_id=portal_id) if portal_id is not None else None)
    if here is None:
        which = (
            f" If it is portal {made_in}'s, say so with --portal-id {made_in}." if made_in else ""
        )
        raise ConfigError(
            f"HubSpot will not say which portal this token reaches (it may lack access to the "
            f"account details), so it cannot be told to be the portal run {run['run_id']} "
            f"wrote to: nothing was archived.{which}"
        )
    if made_in is None:
        if portal_id is None:
            raise ConfigError(
                f"the journal of run {run['run_id']} does not say which portal it wrote to (it "
                "was kept per base URL), and this token reaches portal "
                f"{here.describe()}: nothing was archived. If the run wrote to that portal, say "
                f"so with --portal-id {here.portal_id}."
            )
        log.warning(
            "run %s's journal does not name its portal: undone in portal %d, as --portal-id says",
            run["run_id"],
            portal_id,
        )
        return
    if here.portal_id != made_in:
        raise ConfigError(
            f"run {run['run_id']} wrote to portal {run['portal']}, but this token reaches "
            f"portal {here.describe()}: nothing was archived. Undo it with a token of portal "
            f"{made_in} (HUBSPOT_ACCESS_TOKEN)."
        )


def find_run(state_dir: Path, run_id: str) -> dict[str, Any]:
    """One run by id (or a unique prefix of it)."""
    return one_run(list_runs(state_dir), "run_id", run_id, "run", f"the journals of {state_dir}")


def one_run(
    runs: list[dict[str, Any]], id_key: str, run_id: str, noun: str, where: str
) -> dict[str, Any]:
    """The one of `runs` whose `id_key` starts with `run_id`; a ConfigError for none or
    several, saying which."""
    matches = [r for r in runs if r[id_key].startswith(run_id)]
    if not matches:
        raise ConfigError(f"no {noun} {run_id!r} in {where}; `hubspot-import runs` lists them")
    if len(matches) > 1:
        ids = ", ".join(r[id_key] for r in matches[:5])
        raise ConfigError(f"{run_id!r} matches several {noun}s ({ids}); give more of the id")
    return matches[0]


UNDOABLE = (MissingState.DONE, MissingState.RESTORING, MissingState.SENDING)
"""States of a record of `missing_rows:` that undo brings back: archived or set, an undo
that stopped part way, or a request whose run stopped before its answer (undo finds out)."""


@dataclass(frozen=True, kw_only=True)
class Undo:
    run: dict[str, Any]
    created: list[tuple[str, str]]
    """(row key, HubSpot id) of the records the run created that are not archived yet."""
    updated: list[tuple[str, str]]
    """Records the run updated: listed, never touched (their old values are not known)."""
    archived_before: int = 0
    """Records an earlier undo of this run archived before it stopped."""
    links: list[dict[str, Any]] = field(default_factory=list)
    """Links the run added to or removed from records it did not create (see
    `Journal.link_changes`): undo removes what it added and puts back what it removed."""
    missing: list[MissingEntry] = field(default_factory=list)
    """Records the run's `missing_rows:` archived or set and no undo has brought back: set
    ones get their earlier values, archived ones are created again (see restore.py)."""
    returned: list[MissingEntry] = field(default_factory=list)
    """Records it archived or set whose key came back in the feed since: left as they are."""
    restored_before: int = 0
    """Records of `missing_rows:` an earlier undo of this run brought back."""
    replaced: list[tuple[str, str]] = field(default_factory=list)
    """(row key, HubSpot id) of records the run created that a later run's `missing_rows:`
    archived since: not archived again, nor counted as archived by this undo."""

    @property
    def anything(self) -> bool:
        """Whether undo has anything left to do."""
        return bool(self.created or self.links or self.missing)


@dataclass(frozen=True)
class UndoDone:
    """What an undo did: records archived, and records of `missing_rows:` brought back."""

    archived: int
    restored: list[Restored] = field(default_factory=list)
    kept: list[tuple[str, str, str]] = field(default_factory=list)
    """(row key, id, what changed) of records the run created that someone changed since:
    left as they are (archived, and listed in `forced`, with --force)."""
    forced: list[tuple[str, str, str]] = field(default_factory=list)
    """Records changed since that --force archived all the same."""
    gone: list[tuple[str, str]] = field(default_factory=list)
    """(row key, id) of records the run created that HubSpot no longer holds live under that
    id (deleted, archived or merged into another): nothing archived in their place."""

    @property
    def complete(self) -> bool:
        return all(r.done for r in self.restored)


def prepare_undo(state_dir: Path, run_id: str) -> Undo:
    run = find_run(state_dir, run_id)
    journal = Journal(Path(run["journal"]))
    try:
        written = journal.written_by(run["run_id"])
        done = journal.archived_by_undo(run["run_id"])
        changes = journal.link_changes(run["run_id"])
        acted = journal.missing_entries(run_id=run["run_id"])
        archived = {
            e.hubspot_id for e in journal.missing_entries(states=_ARCHIVED, action="archive")
        }
    finally:
        journal.close()
    taken = done | archived
    left = [(key, hid) for key, hid in written["created"] if hid not in taken]
    # The links of records the run created go with them when they are archived.
    created = {hid for _, hid in written["created"]}
    return Undo(
        run=run,
        created=left,
        updated=written["updated"],
        archived_before=sum(1 for _, hid in written["created"] if hid in done),
        replaced=[(k, hid) for k, hid in written["created"] if hid in archived - done],
        links=[c for c in changes if c["from_id"] not in created],
        missing=[e for e in acted if e.state in UNDOABLE],
        returned=[e for e in acted if e.state is MissingState.RETURNED],
        restored_before=sum(1 for e in acted if e.state is MissingState.UNDONE),
    )


_ARCHIVED = (
    MissingState.DONE,
    MissingState.RETURNED,
    MissingState.RESTORING,
    MissingState.UNDONE,
    MissingState.GONE,
    MissingState.LEFT,
)
"""States of a record of `missing_rows:` archived (or found gone): no longer to archive."""

ARCHIVE_TRIES = 3


def _archive(client: HubSpotClient, path: str, ids: list[str]) -> None:
    """Archive records by id. Archiving is idempotent, so a lost answer is sent again, but
    not after a signal: nothing leaves then."""
    for attempt in range(1, ARCHIVE_TRIES + 1):
        try:
            reply = client.request("POST", path, {"inputs": [{"id": hid} for hid in ids]})
        except UncertainDelivery:
            if attempt == ARCHIVE_TRIES or arrived() is not None:
                raise
            continue
        if reply.verdict is not Verdict.SUCCESS:
            raise HubSpotError(
                f"HubSpot refused to archive: {error_message(reply.body, reply.status)}",
                status=reply.status,
            )
        return


def _revert_links(
    client: HubSpotClient, journal: Journal, changes: list[dict[str, Any]], run_id: str
) -> None:
    """Remove the links a run added, put back those it removed (both idempotent); each
    batch is recorded as reverted once HubSpot confirms it. A signal waits for the batch on
    the wire, records it, and stops with UndoStopped: no further batch is sent."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for c in changes:
        groups.setdefault((c["from_type"], c["to_type"], c["types"], c["change"]), []).append(c)
    wire, reverted = Wire(), 0
    for (from_type, to_type, types, change), items in groups.items():
        operation = "labels/archive" if change == "add" else "create"
        path = client.paths.associations_batch(from_type, to_type, operation)
        for chunk in chunks(items, MAX_ASSOCIATION_INPUTS):
            inputs = [
                {"from": {"id": c["from_id"]}, "to": {"id": c["to_id"]}, "types": json.loads(types)}
                for c in chunk
            ]
            with deferred():  # sent and recorded whole, whatever arrives meanwhile
                reply = wire.send(partial(client.request, "POST", path, {"inputs": inputs}))
                if reply is not None and reply.verdict not in (Verdict.SUCCESS, Verdict.PARTIAL):
                    raise HubSpotError(
                        f"HubSpot refused to revert {len(chunk)} {to_type} links: "
                        f"{error_message(reply.body, reply.status)}",
                        status=reply.status,
                    )
                if not wire.left:
                    journal.link_changes_undone([c["rowid"] for c in chunk])
                    reverted += len(chunk)
                if wire.stopped() is not None:
                    stopped = _links_stopped(wire, run_id, reverted, len(changes), len(chunk))
                    raise stopped  # an UndoStopped, under the package's root error


def _links_stopped(wire: Wire, run_id: str, reverted: int, total: int, flying: int) -> UndoStopped:
    """What a signal during the link reverts did: how many were reverted, how many are left
    (the batch left unanswered among them: reverting a link again does no harm)."""
    assert wire.signum is not None
    unknown = (
        f" ({wire.abandoned}); the batch of {flying} links on the wire was left without "
        "HubSpot's answer, so whether they were reverted is unknown (the next undo sends it "
        "again, which does no harm)"
        if wire.abandoned is not None
        else ""
    )
    return UndoStopped(
        wire.signum,
        f"{unknown}: every record to archive was archived and {reverted} of the {total} links "
        f"to revert were reverted, {total - reverted} are left: `hubspot-import undo {run_id}` "
        "finishes it",
    )


def undo_run(
    undo: Undo,
    client: HubSpotClient,
    on_progress: Callable[[int], None] | None = None,
    *,
    force: bool = False,
) -> UndoDone:
    """Archive the records the run created, in batches, but those someone changed since
    (unless `force`) and those no longer live (edited.py), and bring back those its
    `missing_rows:` archived or set; record the undo (complete when nothing is left)."""
    run = undo.run
    if run.get("undone"):
        raise ConfigError(f"run {run['run_id']} was already undone at {run['undone']}")
    journal = Journal(Path(run["journal"]))
    try:
        journal.lock()
        checked = check_created(client, journal, run, undo.created)
        forced = checked.changed if force else []
        todo = checked.unchanged + [(key, hid) for key, hid, _ in forced]
        kept = [] if force else checked.changed
        # Those an undo stopped before HubSpot's answer sent and HubSpot no longer holds live
        # were archived by it: counted so, not as gone.
        sent = sent_before(journal, run["run_id"])
        settled = [(key, hid) for key, hid in checked.gone if hid in sent]
        gone = [(key, hid) for key, hid in checked.gone if hid not in sent]
        if checked.gone:  # forgotten as archived: there is nothing left of them to undo
            journal.record_undo(run["run_id"], checked.gone, complete=False)
        if sent:
            clear_sending(journal, run["run_id"])
        ends = not kept and not undo.missing
        archived = _archive_created(client, journal, run, todo, ends=ends, on_progress=on_progress)
        _revert_links(client, journal, undo.links, run["run_id"])
        raise_if_stopped()  # one kept while the last batch was recorded: nothing restored
        done = UndoDone(
            len(archived) + len(settled),
            _restore(client, journal, undo),
            kept=kept,
            forced=forced,
            gone=gone,
        )
        if done.complete and not kept and (undo.missing or not todo):
            journal.record_undo(run["run_id"], [], complete=True)
    finally:
        journal.close()
    log.info("archived %d records created by run %s", len(archived), run["run_id"])
    return done


def _archive_created(
    client: HubSpotClient,
    journal: Journal,
    run: dict[str, Any],
    todo: list[tuple[str, str]],
    *,
    ends: bool,
    on_progress: Callable[[int], None] | None,
) -> list[tuple[str, str]]:
    """Archive the records of `todo` ((row key, id) pairs) 100 a request, each batch recorded
    as it is done (`ends`: the last one completes the undo), and written in the journal
    before it leaves (`mark_sending`). A signal waits for the batch on the wire, records it,
    and stops with UndoStopped: no further batch is sent."""
    archived: list[tuple[str, str]] = []
    path = client.paths.batch(run["object_type"], "archive")
    wire = Wire()
    try:
        for chunk in chunks(todo):
            ids = [hid for _, hid in chunk]
            with deferred():  # sent and recorded whole, whatever arrives meanwhile
                mark_sending(journal, run["run_id"], ids)
                wire.send(partial(_archive, client, path, ids))
                if not wire.left:
                    archived += chunk
                    # Each batch is recorded as it is done: an undo stopped part way (the
                    # daily limit, a network failure, a signal) is finished by the next.
                    complete = ends and len(archived) == len(todo)
                    journal.record_undo(run["run_id"], chunk, complete=complete)
                    journal.reopen_returned(ids)
                if wire.abandoned is None:  # answered, or never sent
                    clear_sending(journal, run["run_id"])
                if wire.stopped() is not None:
                    stopped = _archives_stopped(wire, run, len(archived), len(todo), len(chunk))
                    raise stopped  # an UndoStopped, under the package's root error
            if on_progress is not None:
                on_progress(len(archived))
    except HubSpotError as exc:
        left = len(todo) - len(archived)
        raise type(exc)(
            f"{exc} The undo stopped with {left} of {len(todo)} records still to "
            f"archive; run `hubspot-import undo {run['run_id']}` again to finish it.",
            status=exc.status,
        ) from exc
    return archived


def _archives_stopped(
    wire: Wire, run: dict[str, Any], archived: int, total: int, flying: int
) -> UndoStopped:
    """What a signal during the archives did: how many records were archived and recorded,
    how many are left (the batch left unanswered among them)."""
    assert wire.signum is not None
    left = total - archived
    unknown = (
        f" ({wire.abandoned}); the batch of {flying} records on the wire was left without "
        "HubSpot's answer, so whether they were archived is unknown (the next undo reads "
        "HubSpot first)"
        if wire.abandoned is not None
        else ""
    )
    return UndoStopped(
        wire.signum,
        f"{unknown}: {archived} of the {total} records to archive were archived, {left} "
        f"{'is' if left == 1 else 'are'} left: `hubspot-import undo {run['run_id']}` "
        "finishes it",
    )


def _restore(client: HubSpotClient, journal: Journal, undo: Undo) -> list[Restored]:
    """Bring back what the run's `missing_rows:` archived or set; a stop says how many are
    left for the next undo."""
    try:
        return restore_missing(client, journal, undo.run["object_type"], undo.missing)
    except HubSpotError as exc:
        left = len(journal.missing_entries(run_id=undo.run["run_id"], states=UNDOABLE))
        raise type(exc)(
            f"{exc} The undo stopped with {left} records archived or set by missing_rows: "
            f"still to bring back; run `hubspot-import undo {undo.run['run_id']}` again to "
            "finish it.",
            status=exc.status,
        ) from exc
