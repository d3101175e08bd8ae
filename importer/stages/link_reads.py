"""Link stage, the reads: the links records hold now, read from HubSpot before any is sent.

A link the cell lists may exist already, made by a person or another tool: it is then not
this tool's, never recorded as added by a run, and so never removed by `sync` nor by undo.
Only records this run did not create can hold such links, and only the rows with a link to
add (or a link a stopped run of this tool may have made) are read, 1,000 records a request.
The reads go from a thread of their own, as the batches do: a signal waits for the read in
flight (HUBSPOT_IMPORT_STOP_WAIT seconds at most, a second signal ends the wait), then no
further read is made and nothing is sent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ..api.client import HubSpotClient
from ..api.limiter import Halted
from ..core.errors import HubSpotError, RunInterrupted
from ..core.shutdown import Stop, interrupted
from ..mapping.model import AssociationSpec
from .link_answers import current_links
from .parallel import in_parallel

__all__ = ["LinkReads", "read_links"]

log = logging.getLogger(__name__)


@dataclass
class LinkReads:
    """What the reads found, per association (its index in the mapping)."""

    current: dict[int, dict[str, set[str]]] = field(default_factory=dict)
    """Association -> record id -> the targets it is linked to (with any of its types)."""
    failed: dict[int, HubSpotError] = field(default_factory=dict)
    """Associations whose read failed for good, and why."""
    stopped: RunInterrupted | None = None
    """The signal that stopped the reads: nothing read is to be used, nothing sent."""
    requests: int = 0


def read_links(
    client: HubSpotClient,
    from_type: str,
    wanted: dict[int, tuple[AssociationSpec, list[str]]],
) -> LinkReads:
    """Read the current links of the records each association names (`wanted`: association
    -> its spec and the record ids to read), one association after another, from a thread
    of its own so that a signal waits for the read in flight and then stops the reading."""
    reads = LinkReads()
    jobs = [k for k, (_, ids) in wanted.items() if ids]
    if not jobs:
        return reads
    stop = threading.Event()
    before = client.requests_sent

    def read(k: int) -> None:
        """One association's links, from the reading thread."""
        spec, ids = wanted[k]
        try:
            with client.limiter.halted_by(stop):
                reads.current[k] = current_links(client, from_type, spec, ids)
        except Halted:
            return  # stopped while waiting for a slot: nothing was read
        except HubSpotError as exc:
            log.warning("could not read the %s links the run was to change: %s", spec.to, exc)
            reads.failed[k] = exc

    try:
        in_parallel(read, jobs, 1, stop, abandon=True)
    except Stop as signalled:
        reads.stopped = interrupted(signalled.signum)
        log.warning("%s: no link was sent", reads.stopped)
    reads.requests = client.requests_sent - before
    return reads
