"""What a run reads (`Feed`: its input's fingerprint and a digest of what reads it), and
`run --skip-unchanged`: whether the last run in the journal read this same feed and left
nothing to do, found before the sheet is loaded and without a request to HubSpot once the
portal is remembered.

The last run is the newest run in the journal of this portal and object type, whatever it
read. The feed is unchanged since it when that run read this input (the same file; or the
same URL or glob, whichever file the glob picks) with this mapping file; its mapping file's
bytes and the options that read the input (--mode, --sheet, --encoding, --header-row) were
the same; it finished and was not stopped early nor undone; none of its rows were left
failed, incomplete, not sent or uncertain (rows it found invalid would be invalid again); and
its input had the same size and SHA-256 as the input now. A plan's step is judged by the same
rule (`feed_of`, `why_not_unchanged`), with its own input, mapping and sheet: see
plans/unchanged.py.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.account import PortalInfo, identify_portal
from ..api.client import HubSpotClient
from ..mapping.model import Mapping
from ..sheets.fingerprint import Fingerprint
from ..sheets.inputs import fingerprint_of, source_of
from ..state.journal import Journal
from ..state.missing_table import MissingState
from ..state.paths import default_state_dir, journal_path
from .options import RunOptions

__all__ = [
    "Feed",
    "Journals",
    "Unchanged",
    "feed_of",
    "journals_of",
    "same_file",
    "same_input",
    "take_feed",
    "unchanged_since",
    "why_not_unchanged",
]

log = logging.getLogger(__name__)

LEFT_TO_DO = ("failed", "incomplete", "not_sent", "uncertain")
"""Rows in these states (`RowStatus`, named so as not to load pandas before the sheet) are sent
again by the next run of the same feed."""


@dataclass(frozen=True, kw_only=True)
class Feed:
    """What a run reads, taken before it reads it."""

    fingerprint: Fingerprint | None
    """The input file's; None when it cannot be read (the reader then says why)."""
    settings: str | None
    """A digest of the mapping file's bytes and the options that read the input; None when
    the mapping cannot be read (its loader then says why)."""


def take_feed(options: RunOptions) -> Feed:
    """The input's fingerprint (a download's, taken as it arrived) and the digest of what
    reads it: taken before the sheet is loaded, so that a file replaced meanwhile is taken for
    a new feed next time, never the other way round."""
    return feed_of(options.input_path, options.mapping_path, options.sheet, options)


def feed_of(input_path: Path, mapping_path: Path, sheet: str | None, options: RunOptions) -> Feed:
    """What reads `input_path` with `mapping_path` (and `sheet`), with the rest of `options`:
    a run's feed, or a plan's step's (its own input, mapping and sheet, the plan's options)."""
    try:
        fingerprint: Fingerprint | None = fingerprint_of(input_path)
    except OSError:
        fingerprint = None
    return Feed(fingerprint=fingerprint, settings=_settings(mapping_path, sheet, options))


def _settings(mapping_path: Path, sheet: str | None, options: RunOptions) -> str | None:
    """A digest of the mapping file and of the options that decide how the input is read and
    what mode it is sent in: a run with another of these is not the same import."""
    try:
        mapping = mapping_path.read_bytes()
    except OSError:
        return None
    said = {
        "mapping": hashlib.sha256(mapping).hexdigest(),
        "mode": options.mode.value if options.mode else None,
        "sheet": sheet,
        "encoding": options.encoding,
        "header_row": options.header_row,
    }
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Journals:
    """Where the journals of the portal the token reaches are."""

    state_dir: Path
    base: str
    """The base URL (or the demo sandbox's name) the journals are named by."""
    portal: PortalInfo | None

    @property
    def portal_id(self) -> int | None:
        """The portal's id; None when HubSpot would not say (journals named by URL alone)."""
        return self.portal.portal_id if self.portal is not None else None

    def journal(self, object_type: str) -> Path:
        """The journal of `object_type` in this portal."""
        return journal_path(self.state_dir, self.base, object_type, self.portal_id)


def journals_of(options: RunOptions, client: HubSpotClient) -> Journals:
    """Where this portal's journals are: the portal given (--portal-id), remembered, or asked
    of HubSpot (one request)."""
    state_dir = options.state_dir or default_state_dir()
    portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
    return Journals(
        state_dir=state_dir, base=options.journal_base or options.base_url, portal=portal
    )


@dataclass(frozen=True, kw_only=True)
class Unchanged:
    """The last run, which read this same feed and left nothing to do."""

    run: dict[str, Any]
    """Its row of the journal's runs table."""
    journal: Path
    portal: PortalInfo | None


def unchanged_since(
    options: RunOptions, mapping: Mapping, feed: Feed, client: HubSpotClient
) -> Unchanged | None:
    """The last run in this portal's journal for the mapping's object type, when it read this
    same feed and left nothing to do (see the module); else None, the reason logged."""
    journals = journals_of(options, client)
    path = journals.journal(mapping.object_type)
    if not path.is_file():
        log.info("--skip-unchanged: no run is recorded in %s yet: the run goes on", path)
        return None
    journal = Journal(path)
    try:
        runs = journal.runs()
        last = runs[-1] if runs else None
        why = why_not_unchanged(journal, last, options.input_path, options.mapping_path, feed)
    finally:
        journal.close()
    if why is not None or last is None:
        log.info("--skip-unchanged: %s: the run goes on", why)
        return None
    return Unchanged(run=last, journal=path, portal=journals.portal)


def why_not_unchanged(
    journal: Journal,
    last: dict[str, Any] | None,
    input_path: Path,
    mapping_path: Path,
    feed: Feed,
) -> str | None:
    """Why `last`, a run of `journal`, did not read `feed` (from `input_path` with
    `mapping_path`) or left something to do again; None when it read it and left nothing."""
    return _why_not(last, input_path, mapping_path, feed) or _missing_left(journal, last)


def _missing_left(journal: Journal, last: dict[str, Any] | None) -> str | None:
    """Why the last run left its `missing_rows:` work to do again (records HubSpot refused to
    archive or set, or whose answer never came); None when it left none."""
    if last is None:
        return None
    left = journal.missing_entries(
        run_id=last["run_id"], states=(MissingState.FAILED, MissingState.SENDING)
    )
    if not left:
        return None
    return (
        f"the last run, {last['run_id']}, left {len(left)} records of missing_rows: to archive "
        "or set again"
    )


def _why_not(
    last: dict[str, Any] | None, input_path: Path, mapping_path: Path, feed: Feed
) -> str | None:
    """Why the feed (read from `input_path` with `mapping_path`) is not the one the last run
    imported with nothing left to do; None when it is."""
    if last is None:
        return "the journal records no run yet"
    said = f"the last run, {last['run_id']},"
    if not same_input(last["input_file"], input_path) or not same_file(
        last["mapping_file"], mapping_path
    ):
        return f"{said} read {last['input_file']} with {last['mapping_file']}"
    if not last.get("finished"):
        return f"{said} did not finish"
    if last.get("stopped_by"):
        return f"{said} stopped early ({last['stopped_by']})"
    if last.get("undone") or last.get("archived"):
        return f"{said} was undone"
    left = {status: n for status in LEFT_TO_DO if (n := last["counts"].get(status, 0))}
    if left:
        return f"{said} left rows to send again ({', '.join(f'{n} {s}' for s, n in left.items())})"
    recorded = Fingerprint.from_json(last.get("input_fingerprint"))
    if recorded is None or last.get("run_settings") is None:
        return f"{said} kept no fingerprint of its input (an older version made it)"
    if feed.fingerprint is None or not feed.fingerprint.same_content(recorded):
        return f"the feed changed since the last run, {last['run_id']}"
    if feed.settings != last["run_settings"]:
        return (
            f"the mapping file, or --mode, --sheet, --encoding or --header-row, changed since "
            f"the last run, {last['run_id']}"
        )
    return None


def same_input(recorded: str, given: Path) -> bool:
    """Whether the input a run recorded is the one given now: the same file, or the same URL
    or glob, whichever file the glob picks (the feed's content decides the rest)."""
    source = source_of(given)
    if source is None:
        return same_file(recorded, given)
    if recorded in (source.location.shown, source.shown):
        return True
    if source.location.glob and source.location.remote:
        # The journal names the match the last run read: any match of the same glob.
        return fnmatch.fnmatchcase(recorded, source.location.shown)
    if source.location.remote:
        # A journal that keeps the private copy's path: the same folder is the same URL.
        return Path(recorded).parent == given.parent
    if source.location.glob and source.location.path is not None:
        pattern = str(source.location.path.absolute())
        return fnmatch.fnmatchcase(str(Path(recorded).absolute()), pattern)
    return same_file(recorded, given)


def same_file(recorded: str, given: Path) -> bool:
    """Whether the path a run recorded (as it was given then) names the file given now."""
    return recorded == str(given) or Path(recorded).resolve() == given.resolve()
