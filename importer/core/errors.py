"""The importer's exception tree, grouped by what the caller should do about it.

    HubSpotImportError                 root: the CLI catches this, prints one line, exits non-zero
    ├── ConfigError                    fix the mapping or the command line (exit 2)
    │   ├── MappingError               a mapping file with one or more mistakes, all listed
    │   ├── KeylessRerun               a keyless mapping imported this file already (in a plan:
    │   │                              that step alone is refused)
    │   └── StateUnwritable            the journal cannot be written (a full disk, a quota, a
    │                                  file size limit): make room; the next run settles it
    ├── InputFileError                 fix or replace the spreadsheet (exit 2)
    │   └── EmptySheetError            a header and no rows (in a plan: a step with nothing to do)
    ├── LockHeld                       another run holds the lock; this one sent nothing (exit 3)
    ├── RunInterrupted                 SIGINT/SIGTERM: batches in flight settled, the rest not
    │                                  sent, the workbook written (exit 130 / 143)
    └── HubSpotError                   HubSpot refused to go on
        ├── AuthError                  fix the token or its scopes; stop at once (exit 2)
        ├── RateLimitStop              the daily limit is spent; run again tomorrow (exit 1)
        ├── HubSpotUnavailable         retries ran out; try again later (exit 1)
        └── UncertainDelivery          sent, but the outcome is unknown: settle by lookup before
                                       sending again (the stages catch it; exit 1 if it escapes)

Bad rows are never exceptions: they are data (`RowIssue`) reported in the results workbook.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthError",
    "ConfigError",
    "EmptySheetError",
    "HubSpotError",
    "HubSpotImportError",
    "HubSpotUnavailable",
    "InputFileError",
    "KeylessRerun",
    "LockHeld",
    "MappingError",
    "RateLimitStop",
    "RunInterrupted",
    "StateUnwritable",
    "UncertainDelivery",
]


class HubSpotImportError(Exception):
    """Root of every error the importer raises on purpose."""


class ConfigError(HubSpotImportError):
    """The mapping or the command line is wrong: fix it and run again."""


class MappingError(ConfigError):
    """A mapping file with one or more mistakes; `problems` lists every one."""

    def __init__(self, source: str, problems: Sequence[str], *, note: str | None = None) -> None:
        self.source = source
        self.problems = tuple(problems)
        self.note = note
        """Said after the mistakes, not one of them (the sheet's columns, say)."""
        count = len(self.problems)
        noun = "mistake" if count == 1 else "mistakes"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        after = f"\n{note}" if note else ""
        super().__init__(f"{source}: {count} {noun} in the mapping:\n{lines}{after}")


class KeylessRerun(ConfigError):
    """A keyless mapping's import of this file is finished: running it again would create
    every row again. In a plan, that step alone is refused."""


class StateUnwritable(ConfigError):
    """A journal SQLite cannot write for want of room (a full disk, a used-up quota, a file
    size limit): the machine's doing, not a bug. What was sent stays open in the journal, and
    the next run settles it before sending anything. `run_id`: the run this process had begun
    in that journal (None before one began)."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class InputFileError(HubSpotImportError):
    """The spreadsheet cannot be read as given: fix or replace the file."""


class EmptySheetError(InputFileError):
    """A header and no rows: an error for a run of one sheet (the wrong file, most likely),
    and nothing to do for a step of a plan (no orders today). `table` is the sheet as read."""

    def __init__(self, message: str, table: object) -> None:
        super().__init__(message)
        self.table = table


class LockHeld(HubSpotImportError):
    """Another run holds the lock on this portal and object type: do not send anything."""


class RunInterrupted(HubSpotImportError):
    """A signal stopped the run: what was in flight was settled, the rest is not sent."""

    def __init__(self, signum: int, name: str) -> None:
        self.signum = signum
        super().__init__(
            f"stopped by {name}: the batches in flight were settled, the rest was not sent "
            "(the next run sends it)"
        )


class HubSpotError(HubSpotImportError):
    """HubSpot answered in a way that stops the run."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AuthError(HubSpotError):
    """401/403: the token is missing, invalid, expired or lacks scopes. Never retried."""


class RateLimitStop(HubSpotError):
    """The account's daily request limit is spent: stop cleanly, continue tomorrow."""


class HubSpotUnavailable(HubSpotError):
    """HubSpot kept failing (5xx, 429, network) until the retry budget ran out."""


class UncertainDelivery(HubSpotError):
    """The request may have reached HubSpot but no answer came back (timeout, reset), or
    HubSpot answered a 5xx to a write that must not be sent again blind."""
