"""The links stage of a run, as `stages.run` calls it: the link decisions (`links`) made and
sent so that no signal cuts what is recorded. What HubSpot holds already (the links made with
their records by batch/create, what the reads found) is journaled with signals kept
(`shutdown.deferred`); the link changes are sent with signals taken, and none after one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from ..api.client import HubSpotClient
from ..core import shutdown
from ..core.errors import HubSpotError, RunInterrupted
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..core.shutdown import Stop
from ..mapping.model import Mapping
from ..sheets.results import RunSummary
from ..state.journal import Journal
from .decide import Decisions, Operation
from .links import LinkChange, LinkDecisions, apply_links, decide_links
from .options import RunOptions
from .send import Uploader
from .stopping import kept_signal

__all__ = ["link_stage"]

log = logging.getLogger(__name__)


def link_stage(
    options: RunOptions,
    client: HubSpotClient,
    mapping: Mapping,
    journal: Journal,
    rows: Prepared,
    decisions: Decisions,
    uploader: Uploader,
    results: dict[int, RowResult],
    summary: RunSummary,
    *,
    stopped: bool,
) -> HubSpotError | RunInterrupted | None:
    """The links stage: each written row's associations made to match its cells (rows
    created with their links inline need none); after a stop, none are sent (the next run
    sends them, from the journal). Counts its requests in the summary."""
    with shutdown.deferred():
        inline = _inline_rows(decisions, results, uploader)
    links, stop = _link_decisions(mapping, rows, journal, results, inline, client, stopped=stopped)
    if links.changes:
        log.info("links: %d rows to change (%s)", len({c.row for c in links.changes}),
                 _describe_changes(links.changes, mapping))  # fmt: skip
    apply = partial(
        apply_links,
        mapping=mapping,
        journal=journal,
        client=client,
        run_id=summary.run_id,
        results=results,
        batch_size=options.association_batch_size,
        senders=uploader.senders(),
    )
    sent, link_stop = _apply_links(links, apply, client)
    summary.link_requests = sent + links.reads
    return stop or link_stop


def _inline_rows(
    decisions: Decisions, results: dict[int, RowResult], uploader: Uploader
) -> frozenset[int]:
    """The rows created with their links inline (those HubSpot refused inline are not)."""
    actions = decisions.actions
    created = {
        actions.prepared.rows[p]
        for p, op in zip(actions.positions, actions.operations, strict=True)
        if op is Operation.CREATE
    }
    return frozenset(
        r for r in created if results[r].status is RowStatus.CREATED and r not in uploader.unlinked
    )


def _link_decisions(
    mapping: Mapping,
    rows: Prepared,
    journal: Journal,
    results: dict[int, RowResult],
    inline: frozenset[int],
    client: HubSpotClient,
    *,
    stopped: bool,
) -> tuple[LinkDecisions, RunInterrupted | None]:
    """The link changes, decided once the records' links are read (a signal during the reads
    is theirs to take: `LinkDecisions.stopped`); after a stop, decided from the journal alone
    and none to send. A signal while they are decided (nothing is written or sent then)
    stops them so too, and is returned."""
    cut = None
    if not stopped:
        try:
            decided = decide_links(
                mapping, rows, journal, results, inline_rows=inline, client=client
            )
            return decided, None
        except Stop as signalled:
            cut = shutdown.interrupted(signalled.signum)
            log.warning("%s came as the links were decided: none was sent", _name(cut))
    with shutdown.deferred():
        links = decide_links(mapping, rows, journal, results, inline_rows=inline, client=None)
        links.changes.clear()
    return links, cut


ApplyLinks = Callable[[LinkDecisions], tuple[int, HubSpotError | RunInterrupted | None]]


def _apply_links(
    links: LinkDecisions, apply: ApplyLinks, client: HubSpotClient
) -> tuple[int, HubSpotError | RunInterrupted | None]:
    """Journal what HubSpot holds already (the links made with their records, what the reads
    found) whatever signal comes, then send the changes, none after a signal: the requests
    sent and what stopped them. A signal the sending did not take itself (it takes those
    that come while HubSpot's answers are awaited) sends nothing more."""
    with shutdown.deferred():
        apply(LinkDecisions(inline=links.inline, findings=links.findings))
    # A signal kept meanwhile stops what is left to send (no need to take one otherwise).
    kept = links.stopped or (kept_signal() if links.changes else None)
    sending = replace(links, inline={}, findings={}, stopped=kept)
    before = client.requests_sent
    try:
        return apply(sending)
    except Stop as signalled:
        cut = shutdown.interrupted(signalled.signum)
        sent = client.requests_sent - before
        if sent:  # after the last answer: the journal has them, the rows do not say them
            log.warning(
                "%s came as the link answers were settled: the journal holds the links sent, "
                "the rows' messages do not say them",
                _name(cut),
            )
            return sent, cut
        log.warning("%s came before the first link batch: none was sent", _name(cut))
        with shutdown.deferred():
            apply(replace(sending, stopped=cut))
        return 0, cut


def _describe_changes(changes: list[LinkChange], mapping: Mapping) -> str:
    """`3 to add and 1 to remove for Contacts, ...`, for the log."""
    return ", ".join(
        f"{sum(len(c.add) for c in changes if c.association == k)} to add and "
        f"{sum(len(c.remove) for c in changes if c.association == k)} to remove "
        f"for {a.column}"
        for k, a in enumerate(mapping.associations)
    )


def _name(stopped: RunInterrupted) -> str:
    """The name of the signal that stopped the run: `SIGTERM`."""
    return shutdown.signal_name(stopped.signum)
