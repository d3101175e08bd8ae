"""Where journals live: the state folder, one journal per portal and object type (a custom
object's named by its type id), one plan journal per plan and portal; and moving a journal an
older version kept per base URL or under another name of its object type."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import socket
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import platformdirs

from ..core.errors import ConfigError
from ..core.hubspot import canonical_object_type

__all__ = [
    "OBJECT_TYPES_FILE",
    "adopt_named_journals",
    "default_state_dir",
    "demo_files",
    "journal_path",
    "journal_type",
    "plan_journal_path",
    "remember_object_type",
]

PLANS_FOLDER = "plans"
OBJECT_TYPES_FILE = "object-types.json"
"""Which names are one custom object (its journal's name, by portal), as runs found them."""


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
    as journals were kept before they knew their portal. HubSpot's own types are named by
    their name (`products`, also for `0-7`); a custom object by its type id (`2-4242424`)
    under any of the names a run found it has (`remember_object_type`)."""
    return _file(
        state_dir, base_url, journal_type(state_dir, base_url, object_type, portal_id), portal_id
    )


def _file(state_dir: Path, base_url: str, kind: str, portal_id: int | None) -> Path:
    """The journal file of the object type named `kind`, as given."""
    slug = _target(base_url)
    kind = re.sub(r"[^A-Za-z0-9_-]+", "_", kind)
    portal = f"-portal{portal_id}" if portal_id is not None else ""
    return state_dir / f"{slug}{portal}-{kind}.sqlite"


def _scope(base_url: str, portal_id: int | None) -> str:
    """Whose object types an entry of the object types file names: a portal at an address."""
    return _target(base_url) + (f"-portal{portal_id}" if portal_id is not None else "")


def journal_type(state_dir: Path, base_url: str, object_type: str, portal_id: int | None) -> str:
    """What the journal of `object_type` is named by: its name for HubSpot's own types, a
    custom object's type id when a run found it to be one of its names."""
    canonical = canonical_object_type(object_type)
    names = _remembered(state_dir).get(_scope(base_url, portal_id), {})
    return str(names.get(canonical, canonical))


def _remembered(state_dir: Path) -> dict[str, dict[str, str]]:
    """The object types file: scope -> name -> the name its journal goes by ({} if none)."""
    try:
        found = orjson.loads((state_dir / OBJECT_TYPES_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def remember_object_type(
    state_dir: Path, base_url: str, portal_id: int | None, journal_name: str, names: Sequence[str]
) -> None:
    """Keep that `names` are the object type whose journal goes by `journal_name`, for what
    finds journals without asking HubSpot (references, --skip-unchanged, plans)."""
    known = _remembered(state_dir)
    scope = known.setdefault(_scope(base_url, portal_id), {})
    wanted = {name: journal_name for name in names}
    if all(scope.get(n) == j for n, j in wanted.items()):
        return
    scope.update(wanted)
    with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".object-types-", delete=False) as fh:
        fh.write(orjson.dumps(known, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    Path(fh.name).replace(state_dir / OBJECT_TYPES_FILE)


def adopt_named_journals(
    state_dir: Path, base_url: str, journal_name: str, names: Sequence[str], portal_id: int | None
) -> list[str]:
    """Move the journals an earlier version kept under another name of one object type (a
    custom object's fully qualified or short name) to the journal named `journal_name`, as
    `_adopt_base_url` moves one kept per base URL. Returns what to tell the user;
    ConfigError when the object type has two journals (each may hold records the other does
    not: which record is a row's cannot be told without the user)."""
    notes: list[str] = []
    if portal_id is not None:
        for name in (journal_name, *names):  # kept per base URL, under any of its names
            old = _file(state_dir, base_url, name, None)
            note = _adopt_base_url(
                old, _file(state_dir, base_url, journal_name, portal_id), portal_id
            )
            notes += [note] if note else []
    new = _file(state_dir, base_url, journal_name, portal_id)
    for name in names:
        old = _file(state_dir, base_url, name, portal_id)
        if old == new or not old.is_file():
            continue
        if new.exists():
            raise ConfigError(
                f"{old} and {new} are both journals of one object type ({name} is "
                f"{journal_name}); each may know records the other does not, so neither was "
                f"used. Keep the one whose runs you want to continue at {new} and move the "
                "other aside (e.g. add .other to its name). Then run again."
            )
        _move(old, new, f"moved-to-{journal_name}")
        notes.append(f"moved the journal {old} to {new}: {name} is object type {journal_name}")
    return notes


def _adopt_base_url(old: Path, new: Path, portal_id: int) -> str | None:
    """Move the journal file `old`, kept per base URL (by an older version), to this portal's
    `new`, when it says it belongs to this portal; leave one of another portal alone. Returns
    what to tell the user, if anything; ConfigError when it does not say whose it is."""
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
    _move(old, new, f"moved-to-portal{portal_id}")
    return f"moved the journal {old} to {new}: journals are now kept per portal"


def _move(old: Path, new: Path, mark: str) -> None:
    """Copy the journal `old` to `new` and leave it renamed `<old>.<mark>`."""
    with (
        contextlib.closing(sqlite3.connect(old)) as src,
        contextlib.closing(sqlite3.connect(new)) as dst,
    ):
        src.backup(dst)  # a consistent copy, whatever its write-ahead log still holds
    old.rename(old.with_name(f"{old.name}.{mark}"))
    for suffix in ("-wal", "-shm"):
        Path(f"{old}{suffix}").unlink(missing_ok=True)


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
