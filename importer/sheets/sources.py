"""What INPUT names: a local file, a local glob, or a URL (https, s3, gs, az/abfs, sftp), a
remote glob among them; how a URL is shown (its secrets hidden), which fsspec backend reads
it and which extra installs that backend. Nothing here reads anything."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from ..core.errors import ConfigError
from .share_links import download_url, file_name

__all__ = [
    "BACKENDS",
    "SFTP_PASSWORD_ENV",
    "Backend",
    "Location",
    "hide_secrets",
    "is_glob",
    "locate",
    "scrub",
    "where_credentials_go",
]

SFTP_PASSWORD_ENV = "HUBSPOT_IMPORT_SFTP_PASSWORD"
"""The one password the tool reads itself: an SFTP server's, for a login without a key."""


@dataclass(frozen=True)
class Backend:
    """The fsspec file system that reads a scheme, and the extra that installs it."""

    extra: str
    module: str
    cls: str
    user: str
    """What a URL's `user@` names for this store ('' when it names nothing and is refused)."""


BACKENDS: dict[str, Backend] = {
    "https": Backend("http", "fsspec.implementations.http", "HTTPFileSystem", ""),
    "http": Backend("http", "fsspec.implementations.http", "HTTPFileSystem", ""),
    "s3": Backend("s3", "s3fs", "S3FileSystem", ""),
    "gs": Backend("gcs", "gcsfs", "GCSFileSystem", ""),
    "az": Backend("azure", "adlfs", "AzureBlobFileSystem", "container"),
    "abfs": Backend("azure", "adlfs", "AzureBlobFileSystem", "container"),
    "abfss": Backend("azure", "adlfs", "AzureBlobFileSystem", "container"),
    "sftp": Backend("sftp", "sshfs", "SSHFileSystem", "user name"),
}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_GLOB = re.compile(r"[*?]")
_HTTP = re.compile(r"(?i)^https?://")
_SECRET_PARAMS = frozenset(
    {
        "sig",
        "signature",
        "key",
        "apikey",
        "accesskey",
        "authkey",
        "code",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "pwd",
        "passwd",
        "jwt",
    }
)
"""Query parameters whose values are secrets (lower case, `-` and `_` left out); besides
these, any name ending in `token` or `_key`, any name with `secret`, `password` or `session`
in it, and every `X-Amz-*` and `X-Goog-*` parameter of a pre-signed URL."""
_SIGNING = re.compile(r"(?i)^x-(?:amz|goog)-")
"""A pre-signed URL's own parameters (signature, credential, date, expiry): signed anew,
the URL still names the same file."""
_PARAM = re.compile(r"(?P<lead>^|[?&;])(?P<name>[^=&;#?\s'\"]+)=(?P<value>[^&;#\s'\"]*)")
_FRAGMENT = re.compile(r"(?i)(?P<url>https?://[^\s'\"#]*)#[^\s'\"]+")
"""An HTTP URL's fragment (past any other scheme, `#` is part of the path)."""
HIDDEN = "***"


@dataclass(frozen=True)
class Location:
    """Where INPUT is, as the user gave it and as it is read."""

    given: str
    """As typed (a URL's secrets included: never shown, never recorded)."""
    shown: str
    """As shown and recorded: a URL with its secret query values hidden."""
    url: str | None
    """The URL read (a sharing link's download); None for a local file or glob."""
    scheme: str | None
    path: Path | None
    """The local file or glob; None for a URL."""
    glob: bool
    name: str
    """The file's name, whose suffix the reader goes by (`.csv`, `.xlsx`): the URL path's last
    part, or, for a sharing link, its download's."""

    @property
    def remote(self) -> bool:
        return self.url is not None

    @property
    def backend(self) -> Backend | None:
        return BACKENDS.get(self.scheme or "")

    @property
    def key(self) -> str:
        """Names this input's copies in the download folder: the whole URL (or glob) hashed,
        its secrets included (`?key=A` and `?key=B` may be two feeds), but for a pre-signed
        URL's signing parameters (signed anew, it is the same file)."""
        kept = _PARAM.sub(
            lambda m: m.group("lead") if _SIGNING.match(m.group("name")) else m.group(0),
            self.given,
        )
        return hashlib.sha256(kept.encode()).hexdigest()[:16]


def locate(text: str, base: Path | None = None) -> Location:
    """Where `text` (INPUT, or a plan's input relative to `base`) is. A URL with credentials
    in it, or of a scheme no backend reads, is a ConfigError (never quoting the URL)."""
    match = _SCHEME.match(text)
    if match is None or match.group(1).lower() == "file":
        local = text[len("file://") :] if match is not None else text
        path = Path(local).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        return Location(
            given=text,
            shown=str(path),
            url=None,
            scheme=None,
            path=path,
            # A file that is there is read as it is named: `Products [final].csv` is no glob.
            glob=is_glob(local) and not path.is_file(),
            name=path.name,
        )
    scheme = match.group(1).lower()
    backend = BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(
            f"INPUT is a {scheme}:// URL, which hubspot-import does not read: give a local "
            f"path or a URL of one of {known}"
        )
    try:
        urlsplit(text).port  # noqa: B018  (raises for a broken host or port)
    except ValueError as exc:
        raise ConfigError(
            f"INPUT {text.split('?', 1)[0].split('#', 1)[0]} cannot be read as a URL ({exc}): "
            "check its host and port (an IPv6 address goes in brackets: http://[::1]:8080/)"
        ) from None
    _refuse_credentials(text, scheme, backend)
    if backend.extra == "http":
        url, name = download_url(text)
        glob = False  # `?` starts a query, and HTTP cannot list files
    else:
        # Past the scheme, all is path: `?` and `*` are a glob's, not a query's.
        url, name, glob = text, file_name(text[match.end() :]), is_glob(text[match.end() :])
    return Location(
        given=text,
        shown=hide_secrets(text),
        url=url,
        scheme=scheme,
        path=None,
        glob=glob,
        name=name,
    )


def is_glob(text: str) -> bool:
    """Whether a path has a glob's wildcards (`*`, `?`). Brackets alone are not taken for
    one: exports are often named `Catalogue [2026].xlsx`."""
    return _GLOB.search(text) is not None


def _refuse_credentials(text: str, scheme: str, backend: Backend) -> None:
    """A ConfigError for a password in the URL (or, where the store has no use for one, a
    user name), saying where credentials go instead."""
    netloc = urlsplit(text).netloc
    userinfo, at, _ = netloc.rpartition("@")
    if not at:
        return
    if ":" not in userinfo and backend.user:
        return  # sftp://user@host, abfs://container@account...: not a secret
    raise ConfigError(
        f"INPUT is a {scheme}:// URL with credentials in it, which hubspot-import does not "
        f"take (they would end up in logs and journals): {where_credentials_go(scheme)}"
    )


def where_credentials_go(scheme: str) -> str:
    """Where a store's credentials are read from (said instead of taking them in a URL, and
    when a store denies access)."""
    backend = BACKENDS.get(scheme)
    if backend is None:
        return "check the credentials"
    return {
        "http": "give a link that needs none (a shared or pre-signed link), or download the "
        "file first",
        "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, ~/.aws), and "
        "AWS_ENDPOINT_URL_S3 for an S3-compatible store such as MinIO",
        "gcs": "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or log in "
        "with gcloud auth application-default login",
        "azure": "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or "
        "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, or a service principal's "
        "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID)",
        "sftp": f"keep sftp://user@host/path, and log in with an SSH key (~/.ssh, or the "
        f"ssh-agent) or set {SFTP_PASSWORD_ENV}; the host must be in ~/.ssh/known_hosts",
    }[backend.extra]


def hide_secrets(url: str) -> str:
    """The URL with its credentials, secret query values (`sig=***`, in `&`- or `;`-separated
    queries) and fragment (`#***`, never sent to the server, often a token) hidden, for
    messages, logs, summaries and journals."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{HIDDEN}@{host}"
    if not _HTTP.match(url):  # past the scheme, all is path
        return urlunsplit(parts._replace(netloc=netloc))
    fragment = HIDDEN if parts.fragment else ""
    return urlunsplit(
        parts._replace(netloc=netloc, query=_hide_params(parts.query), fragment=fragment)
    )


def _hide_params(text: str) -> str:
    """`text` with each secret `name=value`'s value hidden, all else as it was."""
    return _PARAM.sub(_hidden_value, text)


def _hidden_value(match: re.Match[str]) -> str:
    """A `name=value` as shown: its value hidden when the name says it is a secret."""
    if not match.group("value") or not _secret(match.group("name")):
        return match.group(0)
    return f"{match.group('lead')}{match.group('name')}={HIDDEN}"


def _secret(name: str) -> bool:
    """Whether a query parameter of this name holds a secret."""
    lower = unquote_plus(name).lower()
    bare = lower.replace("-", "").replace("_", "")
    return (
        bare in _SECRET_PARAMS
        or bare.endswith("token")
        or lower.replace("-", "_").endswith("_key")
        or any(word in bare for word in ("secret", "password", "session"))
        or _SIGNING.match(lower) is not None
    )


def scrub(text: str, location: Location) -> str:
    """`text` (a backend's error message, say) with the location's URLs shown as they may be,
    and any other secret query value or URL fragment hidden."""
    for raw in sorted({location.given, location.url or ""} - {""}, key=len, reverse=True):
        text = text.replace(raw, location.shown)
    text = _FRAGMENT.sub(lambda m: m.group("url") + "#" + HIDDEN, text)
    return _hide_params(text)
