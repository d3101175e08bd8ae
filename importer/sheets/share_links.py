"""Sharing links read as their downloads: a Google Sheets link as its `.xlsx` export (keeping
the sheet's `gid`), a SharePoint or OneDrive link with `download=1`; and the local file name
(whose suffix the reader goes by) of what a URL downloads: the URL's, else the one the server
gives (`Content-Disposition`), else the URL's with the suffix the file's first bytes say."""

from __future__ import annotations

import re
from email.message import Message
from pathlib import PurePosixPath
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["download_url", "file_name", "typed_name"]

_GOOGLE_PUBLISHED = re.compile(r"^/spreadsheets/d/e/(?P<id>[A-Za-z0-9_-]+)(?:/(?P<rest>[^/]*))?")
_GOOGLE_SHEET = re.compile(
    r"^/spreadsheets/(?:u/\d+/)?d/(?P<id>[A-Za-z0-9_-]+)(?:/(?P<rest>[^/]*))?"
)
_MICROSOFT_HOSTS = ("onedrive.live.com", "1drv.ms")
_SHEET_SUFFIXES = (".csv", ".xlsx", ".xlsm", ".xls", ".ods")
_EXPORT_SUFFIXES = {"xlsx": ".xlsx", "csv": ".csv", "ods": ".ods"}


def download_url(url: str) -> tuple[str, str]:
    """(the URL to read, the file name to keep its download under) for `url`: a sharing link's
    download, any other URL as it is."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "docs.google.com":
        published = _GOOGLE_PUBLISHED.match(parts.path)
        if published is not None:
            return _google_published(parts, published.group("id"), published.group("rest"))
        sheet = _GOOGLE_SHEET.match(parts.path)
        if sheet is not None:
            return _google_export(parts, sheet.group("id"), sheet.group("rest"))
    if host.endswith(".sharepoint.com") or host in _MICROSOFT_HOSTS:
        return _microsoft_download(parts)
    return url, file_name(parts.path)


def _gid(parts: SplitResult) -> str | None:
    """The sheet's id in a Google Sheets link (`?gid=` or `#gid=`), if it names one."""
    for text in (parts.query, parts.fragment):
        gid = dict(parse_qsl(text)).get("gid")
        if gid and gid.isdigit():
            return gid
    return None


def _google_export(parts: SplitResult, doc: str, rest: str | None) -> tuple[str, str]:
    """`.../d/<id>/edit#gid=5` -> `.../d/<id>/export?format=xlsx&gid=5`; an export link as it
    is, its format deciding the file type."""
    if rest == "export":
        fmt = dict(parse_qsl(parts.query)).get("format", "xlsx").lower()
        return urlunsplit(parts._replace(fragment="")), f"{doc}{_EXPORT_SUFFIXES.get(fmt, '.xlsx')}"
    query = [("format", "xlsx")]
    gid = _gid(parts)
    if gid is not None:
        query.append(("gid", gid))
    path = parts.path[: parts.path.index(doc) + len(doc)] + "/export"
    return urlunsplit(parts._replace(path=path, query=urlencode(query), fragment="")), f"{doc}.xlsx"


def _google_published(parts: SplitResult, doc: str, rest: str | None) -> tuple[str, str]:
    """A sheet published to the web (`.../d/e/<id>/pubhtml`) -> `.../pub?output=xlsx`."""
    if rest == "pub" and "output" in dict(parse_qsl(parts.query)):
        fmt = dict(parse_qsl(parts.query))["output"].lower()
        return urlunsplit(parts._replace(fragment="")), f"{doc}{_EXPORT_SUFFIXES.get(fmt, '.xlsx')}"
    query = [("output", "xlsx")]
    gid = _gid(parts)
    if gid is not None:
        query.append(("gid", gid))
    path = f"/spreadsheets/d/e/{doc}/pub"
    return urlunsplit(parts._replace(path=path, query=urlencode(query), fragment="")), f"{doc}.xlsx"


def _microsoft_download(parts: SplitResult) -> tuple[str, str]:
    """A SharePoint or OneDrive sharing link with `download=1` (and without `web=1`, which asks
    for the browser's viewer); an Excel link (`/:x:/`) is a workbook whatever its path says."""
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "web"]
    query = [(k, v) for k, v in query if k != "download"] + [("download", "1")]
    url = urlunsplit(parts._replace(query=urlencode(query), fragment=""))
    excel = "/:x:/" in parts.path or parts.path.startswith("/x/")
    return url, file_name(parts.path, ".xlsx" if excel else "")


def file_name(path: str, default_suffix: str = "") -> str:
    """The URL path's last part as a file name; with `default_suffix` when it has no
    spreadsheet suffix of its own; `download` for a path that names no file (`/`, `x/..`),
    which as a local name would be a folder."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(path).name)[-120:]
    if name in ("", ".", ".."):
        name = "download"
    if default_suffix and not name.lower().endswith(_SHEET_SUFFIXES):
        name += default_suffix
    return name


def typed_name(name: str, disposition: str | None, head: bytes) -> str:
    """The name to keep a download under: `name` (the URL's) when it has a spreadsheet
    suffix; else the file name of the server's Content-Disposition when that has one; else
    `name` with the suffix the file's first bytes say (a zip: `.xlsx`, or `.ods` when it says
    so; an OLE2 file: `.xls`), or as it is (a CSV says nothing)."""
    if name.lower().endswith(_SHEET_SUFFIXES):
        return name
    given = _disposition_name(disposition)
    if given is not None and given.lower().endswith(_SHEET_SUFFIXES):
        return given
    if head.startswith(b"PK\x03\x04"):
        return name + (".ods" if b"opendocument.spreadsheet" in head[:100] else ".xlsx")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return name + ".xls"
    return name


def _disposition_name(disposition: str | None) -> str | None:
    """The file name a Content-Disposition header gives (`filename=` or `filename*=`), made
    safe to keep as a local name."""
    if not disposition:
        return None
    header = Message()
    header["Content-Disposition"] = disposition
    given = header.get_filename()
    return file_name(given) if given else None
