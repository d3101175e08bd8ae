"""A remote INPUT read once per run: its store's file system (the fsspec backend an extra
installs), a glob's match picked, and the file streamed into a private copy under the state
folder, its fingerprint (size, SHA-256, the store's ETag) taken as it arrives.

Each URL (or glob) keeps the copy of its last download, in a folder of its own readable by
its owner alone. When the store gives a strong ETag and a modification time and says the file
still has the size, ETag and time of that copy, the copy is read again instead (its SHA-256
checked first); otherwise the file is downloaded anew and replaces it. A download first removes
what a killed one left there (`.part` files over an hour old) and the folders of URLs not read
for 30 days."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..core.environment import env_number
from ..core.errors import ConfigError, InputFileError
from .download_room import NoRoom, no_room
from .fingerprint import Fingerprint, take_fingerprint
from .picking import Match, pick_match
from .share_links import file_name, typed_name
from .sources import SFTP_PASSWORD_ENV, Location, scrub, where_credentials_go

__all__ = ["DEFAULT_TIMEOUT", "TIMEOUT_ENV", "RemoteFile", "download"]

log = logging.getLogger(__name__)

TIMEOUT_ENV = "HUBSPOT_IMPORT_REMOTE_TIMEOUT"
"""Seconds to wait for a store to connect or to send the next bytes."""
DEFAULT_TIMEOUT = 60.0
_BLOCK = 1 << 20
_KEPT = "kept.json"
"""Beside a copy: what it is a copy of (the URL read, size, SHA-256, ETag, the store's time)."""
_STALE_PART = 3600.0
"""Seconds after which a `.part` file is taken for a killed download's."""
_UNREAD = 30 * 86400.0
"""Seconds after which the copy of a URL no run read is removed."""
_COPY_FOLDER = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, kw_only=True)
class RemoteFile:
    """A remote file as this run read it."""

    local: Path
    """The private copy the reader opens."""
    url: str
    """The file read, as shown (for a glob: its match)."""
    fingerprint: Fingerprint
    matches: int = 0
    """How many files the glob matched (0: not a glob)."""
    reused: bool = False
    """The copy kept from an earlier download was read (the store's ETag and size said it is
    the same file)."""


def download(location: Location, folder: Path, pick: str) -> RemoteFile:
    """The remote file `location` names (for a glob, the match `pick` picks), copied into
    `folder` (or the copy kept there read again); InputFileError naming the URL (its secrets
    hidden) and the cause when it cannot be read, ConfigError when its backend is missing."""
    timeout = _timeout()
    fs, path = _filesystem(location, timeout)
    with _failing(location, timeout):
        path, info, matches = _find(fs, location, path, pick)
    url = _match_url(location, path) if matches else location.shown
    copy_folder = _private_folder(folder / location.key)
    _tidy(folder, copy_folder)
    name = file_name(path) if matches else location.name
    kept = _kept_copy(copy_folder, url, info)
    if kept is not None:
        copy, fingerprint = kept
        log.info(
            "%s: unchanged since it was last downloaded (ETag %s): read again",
            url,
            fingerprint.etag,
        )
        return RemoteFile(
            local=copy, url=url, fingerprint=fingerprint, matches=matches, reused=True
        )
    with _failing(location, timeout, saving=copy_folder):
        local, fingerprint, modified = _copy(fs, location, path, info, copy_folder / name)
    _keep(copy_folder, local, url, fingerprint, modified)
    log.info("downloaded %s (%s)", url, fingerprint.describe())
    return RemoteFile(local=local, url=url, fingerprint=fingerprint, matches=matches)


def _timeout() -> float:
    """The wait for a store (HUBSPOT_IMPORT_REMOTE_TIMEOUT, else 60 s); ConfigError when the
    variable is not a positive number."""
    return env_number(
        TIMEOUT_ENV,
        DEFAULT_TIMEOUT,
        low=0,
        above=True,
        takes="a number of seconds above 0, such as 60",
    )


def _filesystem(location: Location, timeout: float) -> tuple[Any, str]:
    """The store's fsspec file system and the path in it; ConfigError naming the extra to
    install when its backend is missing."""
    backend = location.backend
    assert backend is not None, "a URL of a known scheme"
    assert location.url is not None, "a URL"
    try:
        with warnings.catch_warnings():
            # asyncssh (sftp) still names DSA keys, which cryptography deprecates: a warning
            # for the library's authors that would fill the user's terminal at each run.
            warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
            cls = getattr(importlib.import_module(backend.module), backend.cls)
    except ImportError as exc:
        raise ConfigError(
            f"{location.scheme}:// needs the {backend.extra} extra: pip install "
            f"'hubspot-import[{backend.extra}]' ({exc})"
        ) from None
    options = {**cls._get_kwargs_from_urls(location.url), **_options(location, timeout)}
    with _failing(location, timeout):
        fs = cls(skip_instance_cache=True, **options)
    return fs, cls._strip_protocol(location.url)


def _options(location: Location, timeout: float) -> dict[str, Any]:
    """Each backend's settings for the wait; credentials are left to the backend, which reads
    its usual environment variables and files (and, for SFTP, a password from
    HUBSPOT_IMPORT_SFTP_PASSWORD)."""
    extra = location.backend.extra if location.backend else ""
    if extra == "http":
        import aiohttp

        wait = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        return {"client_kwargs": {"timeout": wait}}
    if extra == "s3":
        retries = {"max_attempts": 3, "mode": "standard"}
        config = {"connect_timeout": timeout, "read_timeout": timeout, "retries": retries}
        return {"config_kwargs": config}
    if extra == "sftp":
        password = os.environ.get(SFTP_PASSWORD_ENV)
        # sshfs turns host key checks off unless told: () is asyncssh's ~/.ssh/known_hosts.
        checked = {"known_hosts": (), "connect_timeout": timeout}
        return {**checked, **({"password": password} if password else {})}
    return {}


def _find(fs: Any, location: Location, path: str, pick: str) -> tuple[str, dict[str, Any], int]:
    """The file to read, its details from the store, and how many files the glob matched (0
    when `location` is no glob); InputFileError when a glob matches nothing."""
    if not location.glob:
        http = location.backend is not None and location.backend.extra == "http"
        return path, _http_info(fs, path) if http else fs.info(path), 0
    found = fs.glob(path, detail=True)
    files = {p: i for p, i in found.items() if i.get("type", "file") == "file"}
    if not files:
        raise InputFileError(f"{location.shown}: no file matches")
    chosen = pick_match([Match(p, _modified(i)) for p, i in files.items()], pick)
    log.info(
        "INPUT %s: read %s, the %s of %d matches",
        location.shown,
        _match_url(location, chosen.name),
        "last by name" if pick == "name" else "newest by modification time",
        len(files),
    )
    return chosen.name, files[chosen.name], len(files)


def _http_info(fs: Any, url: str) -> dict[str, Any]:
    """What the server says of the file: a HEAD, and a GET's headers when the HEAD is refused
    or gives no size. fsspec's own `info` does the same but also after a HEAD that got no
    answer in time, so that a hanging server would cost the wait twice."""
    sync = importlib.import_module("fsspec.asyn").sync
    file_info = importlib.import_module("fsspec.implementations.http")._file_info

    async def ask(policy: str) -> dict[str, Any]:
        session = await fs.set_session()
        found: dict[str, Any] = await file_info(
            fs.encode_url(url), session=session, size_policy=policy, **fs.kwargs
        )
        return found

    try:
        info = sync(fs.loop, ask, "head")
    except TimeoutError:
        raise
    except Exception:  # a server refusing HEAD (a URL signed for GET alone): the GET says
        info = {}
    if info.get("size") is None:
        info = {**info, **sync(fs.loop, ask, "get")}
    return {"name": url, "size": None, **info, "type": "file"}


def _match_url(location: Location, path: str) -> str:
    """A glob's match as a URL: the path in the store, with the glob's scheme and host."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(location.given)
    if location.scheme == "sftp":
        return urlunsplit(parts._replace(path="/" + path.lstrip("/"), query="", fragment=""))
    if "@" in parts.netloc:  # abfs://container@account.dfs.core.windows.net/...
        return f"{parts.scheme}://{parts.netloc}/{path.partition('/')[2]}"
    return f"{parts.scheme}://{path.lstrip('/')}"


def _etag(details: dict[str, Any]) -> str | None:
    """The store's ETag, when it gives one."""
    for key in ("ETag", "etag", "Etag", "e_tag"):
        value = details.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _modified(details: dict[str, Any]) -> dt.datetime | None:
    """When the store says the file was last modified (UTC), if it says."""
    for key in ("LastModified", "last_modified", "mtime", "updated", "Last-Modified", "modified"):
        value = details.get(key)
        when: dt.datetime | None = None
        if isinstance(value, dt.datetime):
            when = value
        elif isinstance(value, int | float):
            when = dt.datetime.fromtimestamp(value, dt.UTC)
        elif isinstance(value, str):
            when = _parse_time(value)
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return None


def _parse_time(text: str) -> dt.datetime | None:
    """An ISO 8601 time, or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`)."""
    from email.utils import parsedate_to_datetime

    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(text)
    return None


def _tidy(folder: Path, own: Path) -> None:
    """Remove what a killed download left in `own` (files over an hour old that a download
    writes first), and the copies in `folder` of other URLs not read for 30 days; say that
    `own` is read now."""
    now = time.time()
    for left in [*own.glob(".download-*.part"), *own.glob(".kept-*.tmp")]:
        with contextlib.suppress(OSError):
            if left.stat().st_mtime < now - _STALE_PART:
                left.unlink()
    os.utime(own)
    for other in folder.iterdir():
        if other == own or not _COPY_FOLDER.fullmatch(other.name) or not other.is_dir():
            continue
        with contextlib.suppress(OSError):
            if other.stat().st_mtime < now - _UNREAD:
                shutil.rmtree(other)


def _private_folder(folder: Path) -> Path:
    """`folder`, made readable by its owner alone (a feed holds customer data)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def _kept_copy(folder: Path, url: str, details: dict[str, Any]) -> tuple[Path, Fingerprint] | None:
    """The copy kept in `folder` and its fingerprint, when it is of this URL and the store's
    strong ETag, size and modification time are those it had, its bytes checked against the
    SHA-256 they had; else None (the file is downloaded). Some servers keep an ETag while the
    file changes: its time must then say so."""
    etag, size, modified = _etag(details), details.get("size"), _stamp(_modified(details))
    if etag is None or etag.startswith("W/") or not isinstance(size, int) or modified is None:
        return None  # a weak ETag (or none) does not say the bytes are the same
    try:
        kept = json.loads((folder / _KEPT).read_text(encoding="utf-8"))
        fingerprint = Fingerprint.from_json(kept.get("fingerprint"))
        copy = folder / str(kept["name"])
        if kept.get("url") != url or fingerprint is None or fingerprint.etag != etag:
            return None
        if kept.get("modified") != modified or fingerprint.size != size:
            return None
        if not take_fingerprint(copy).same_content(fingerprint):
            return None
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return copy, fingerprint


def _stamp(when: dt.datetime | None) -> str | None:
    """A store's modification time as kept (ISO 8601, UTC, to the second)."""
    return when.astimezone(dt.UTC).isoformat(timespec="seconds") if when else None


def _copy(
    fs: Any, location: Location, path: str, details: dict[str, Any], target: Path
) -> tuple[Path, Fingerprint, str | None]:
    """Stream the file into `target`'s folder (written as a private temporary file, then
    renamed to `target`, its suffix the file's type when its name does not say it), hashing it
    as it arrives; the copy, its fingerprint and the store's time of it (None: not given)."""
    http = location.backend is not None and location.backend.extra == "http"
    # HTTP: one streamed GET (fsspec would otherwise read the file in ranges), its size given
    # so that fsspec does not ask for it again.
    known = details.get("size")
    kwargs = (
        {"block_size": 0, **({"size": known} if isinstance(known, int) else {})} if http else {}
    )
    fd, part = tempfile.mkstemp(dir=target.parent, prefix=".download-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, fs.open(path, "rb", **kwargs) as remote:
            size, digest, head = _stream(remote, out)
            # The answer that carried the bytes says what they are, not a later version.
            etag = _response_header(remote, "ETag") or _etag(details)
            answered = _modified({"Last-Modified": _response_header(remote, "Last-Modified")})
            disposition = _response_header(remote, "Content-Disposition")
        target = target.with_name(typed_name(target.name, disposition, head))
        os.replace(part, target)
    except OSError as exc:
        room = no_room(exc, part, known)
        with contextlib.suppress(OSError):
            os.unlink(part)
        if room is not None:
            raise room from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    modified = answered or _modified(details)
    fingerprint = Fingerprint(
        size=size,
        sha256=digest,
        mtime=_stamp(modified or dt.datetime.now(dt.UTC)) or "",
        etag=etag,
    )
    return target, fingerprint, _stamp(modified)


def _stream(remote: BinaryIO, out: BinaryIO) -> tuple[int, str, bytes]:
    """Copy `remote` to `out` in 1 MiB blocks; the bytes copied, their SHA-256 and the first
    of them."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while block := remote.read(_BLOCK):
        head = head or block[:512]
        digest.update(block)
        out.write(block)
        size += len(block)
    return size, digest.hexdigest(), head


def _response_header(remote: Any, name: str) -> str | None:
    """A header of the HTTP answer that carried the bytes (fsspec's streamed file keeps the
    answer); None for another store."""
    response = getattr(remote, "r", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get(name)
    return value if isinstance(value, str) and value else None


def _keep(
    folder: Path, local: Path, url: str, fingerprint: Fingerprint, modified: str | None
) -> None:
    """Say what the copy in `folder` is of, and remove the copies of earlier downloads."""
    for old in folder.iterdir():
        if old not in (local, folder / _KEPT) and not old.name.startswith((".download-", ".kept-")):
            with contextlib.suppress(OSError):
                old.unlink()
    data = {
        "url": url,
        "name": local.name,
        "fingerprint": fingerprint.as_json(),
        "modified": modified,
    }
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".kept-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, folder / _KEPT)


@contextlib.contextmanager
def _failing(location: Location, timeout: float, saving: Path | None = None) -> Iterator[None]:
    """Turn what a store raises into an InputFileError naming the URL (its secrets hidden)
    and the cause; a failure to write the copy into `saving` said as such, without the state
    folder's path (the user's business is the URL, not where its copy is kept), except when
    the copy found no room: then the downloads folder and the room it needs are named."""
    try:
        yield
    except (InputFileError, ConfigError):
        raise
    except NoRoom as exc:
        raise InputFileError(f"{location.shown}: {exc.said(saving)}") from None
    except Exception as exc:
        local = _local_failure(exc, saving)
        if local is not None:
            raise InputFileError(
                f"{location.shown}: its copy cannot be saved in the downloads folder "
                f"({local.strerror or type(local).__name__})"
            ) from None
        raise InputFileError(f"{location.shown}: {_cause(exc, location, timeout)}") from None


def _local_failure(exc: Exception, folder: Path | None) -> OSError | None:
    """`exc` when it is a failure of a file in `folder` (a local one, not the store's)."""
    if folder is None or not isinstance(exc, OSError):
        return None
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return exc if any(n.startswith(str(folder)) for n in names) else None


def _cause(exc: Exception, location: Location, timeout: float) -> str:
    """What went wrong, in a few words, with what to do when there is something to do."""
    bare = isinstance(exc, FileNotFoundError) and _bare(str(exc), location)
    if bare and isinstance(exc.__cause__, Exception):
        # fsspec's HTTP file system says "not found", naming the URL, for any failure.
        exc = exc.__cause__
    detail = scrub(str(exc), location).strip()
    status = getattr(exc, "status", None)
    kind = type(exc).__name__
    if status == 404:
        return "not found (HTTP 404)"
    if isinstance(exc, FileNotFoundError):
        return "not found" if _bare(str(exc), location) else f"not found ({detail})"
    hint = where_credentials_go(location.scheme or "")
    if isinstance(exc, PermissionError) or status in (401, 403) or kind == "PermissionDenied":
        return f"access denied ({detail or status}): {hint}"
    if kind == "NoCredentialsError":  # botocore's, when S3 finds none to sign with
        return f"no credentials found: {hint}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (set {TIMEOUT_ENV} to wait longer)"
    if kind == "TooManyRedirects":  # aiohttp's, with no status of its own (0)
        return "too many redirects (over 10: most likely a loop)"
    if isinstance(status, int):
        return f"the server answered HTTP {status} ({getattr(exc, 'message', '') or detail})"
    if kind == "HostKeyNotVerifiable":
        return (
            f"the server's host key is not in ~/.ssh/known_hosts ({detail}): check it and add "
            "it (ssh-keyscan HOST >> ~/.ssh/known_hosts)"
        )
    if isinstance(exc, OSError):
        return f"cannot be reached ({detail or kind})"
    return f"cannot be read ({kind}: {detail})" if detail else f"cannot be read ({kind})"


def _bare(message: str, location: Location) -> bool:
    """Whether a backend's message names the file and says nothing else."""
    message = message.strip()
    return not message or (location.url or "").endswith(message) or message == location.shown
