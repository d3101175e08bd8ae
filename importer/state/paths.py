"""Where journals live: the state folder, one journal per portal and object type, one plan
journal per plan and portal; and moving a journal an older version kept per base URL."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import socket
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import platformdirs

from ..core.errors import ConfigError

__all__ = [
    "adopt_base_url_journal",
    "default_state_dir",
    "demo_files",
    "journal_path",
    "plan_journal_path",
]

PLANS_FOLDER = "plans"


_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


def _target(base_url: str) -> str:
    """`api.hubapi.com`, `127.0.0.1_8080`: the base URL as a file name's start, the same for
    every spelling of one address (`HTTP://LOCALHOST:08080/` and `http://127.0.0.1:8080`), so
    that two runs against one portal share one journal and one lock however each was told."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    try:
        port: int | None = parts.port
    except ValueError:  # refused before any run; a file name all the same
        port = None
    host = _host(parts.hostname or "")
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}_{port}"
    target = host + parts.path.rstrip("/")
    return re.sub(r"[^A-Za-z0-9.]+", "_", target).strip("_")


def _host(name: str) -> str:
    """A host as one spelling: lower case, and any loopback address (`localhost`, `::1`,
    `127.1`, `0x7f000001`) as `127.0.0.1`; other addresses as their plain form."""
    name = name.lower()
    if name in _LOOPBACK_NAMES:
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        try:  # the forms C's inet_aton takes: 127.1, 0x7f000001, 017700000001
            address = ipaddress.ip_address(socket.inet_aton(name))
        except OSError:
            return name
    return "127.0.0.1" if address.is_loopback else str(address)


def default_state_dir() -> Path:
    return Path(platformdirs.user_data_dir("hubspot-import", appauthor=False))


def journal_path(
    state_dir: Path, base_url: str, object_type: str, portal_id: int | None = None
) -> Path:
    """`<state-dir>/<host-and-port>-portal<id>-<object type>.sqlite`: one journal per portal
    and object type. Without a portal id (HubSpot would not say which portal the token
    belongs to), `<host-and-port>-<object type>.sqlite`, shared by every portal at that URL,
    as journals were kept before they knew their portal."""
    slug = _target(base_url)
    kind = re.sub(r"[^A-Za-z0-9_-]+", "_", object_type)
    portal = f"-portal{portal_id}" if portal_id is not None else ""
    return state_dir / f"{slug}{portal}-{kind}.sqlite"


def adopt_base_url_journal(
    state_dir: Path, base_url: str, object_type: str, portal_id: int
) -> str | None:
    """Move a journal kept per base URL (by an older version) to this portal's, when it says
    it belongs to this portal; leave one of another portal alone. Returns what to tell the
    user, if anything; ConfigError when the old journal does not say whose it is."""
    old = journal_path(state_dir, base_url, object_type)
    new = journal_path(state_dir, base_url, object_type, portal_id)
    if not old.is_file() or new.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{old}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'portal'").fetchone()
    except sqlite3.Error as exc:
        return f"{old} could not be read ({exc}); it was left alone"
    owner = None
    with contextlib.suppress(TypeError, ValueError, orjson.JSONDecodeError):
        owner = int(orjson.loads(row[0])["portalId"]) if row else None
    if owner is None:
        # Starting afresh beside it could create every row again: the user must say.
        raise ConfigError(
            f"{old} was kept per base URL (by an earlier version, or by a run HubSpot would not "
            "tell its portal) and does not say which "
            f"portal it belongs to; it was left alone. If it is portal {portal_id}'s, move it "
            f"to {new}; if not, move it aside (e.g. add .other to its name). Then run again."
        )
    if owner != portal_id:
        return None  # another portal's: it stays where it is for that portal's token
    with (
        contextlib.closing(sqlite3.connect(old)) as src,
        contextlib.closing(sqlite3.connect(new)) as dst,
    ):
        src.backup(dst)  # a consistent copy, whatever its write-ahead log still holds
    old.rename(old.with_name(f"{old.name}.moved-to-portal{portal_id}"))
    for suffix in ("-wal", "-shm"):
        Path(f"{old}{suffix}").unlink(missing_ok=True)
    return f"moved the journal {old} to {new}: journals are now kept per portal"


def plan_journal_path(
    state_dir: Path, base_url: str, plan_file: Path, portal_id: int | None = None
) -> Path:
    """`<state-dir>/plans/<host>-portal<id>-<plan name>-<hash of its path>.sqlite`: one plan
    journal per plan file and portal."""
    portal = f"-portal{portal_id}" if portal_id is not None else ""
    resolved = Path(plan_file).resolve()
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", resolved.stem)
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return state_dir / PLANS_FOLDER / f"{_target(base_url)}{portal}-{name}-{digest}.sqlite"


def demo_files(state_dir: Path, records: str, journal_base: str) -> list[Path]:
    """The demo sandbox's files in `state_dir`: its records (`records`, with SQLite's
    companions) and the journals and plan journals named for it (`journal_base`-...)."""
    patterns = (f"{records}*", f"{journal_base}-*.sqlite*", f"{PLANS_FOLDER}/{journal_base}-*")
    return sorted({p for pattern in patterns for p in state_dir.glob(pattern) if p.is_file()})
