"""Fast worksheet parts: rows of text cells written as SpreadsheetML a column at a time.

openpyxl builds an object per cell and writes ~150,000 cells a second: a million-row results
sheet (14 million cells) takes minutes. Here a sheet's cells are made per column with one
string comprehension, checked for characters that need escaping a column at a time (almost
none do), joined per chunk of rows and compressed in a second thread (zlib releases the GIL),
so the two cores share the work. openpyxl still writes everything else of the workbook (styles,
the Summary chart, print settings); `splice` swaps the streamed sheets into its package.
"""

from __future__ import annotations

import io
import itertools
import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO
from xml.etree import ElementTree as etree
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

from ..core.text import flags

__all__ = [
    "Link",
    "StreamedSheet",
    "TextColumns",
    "cell_styles",
    "chunked",
    "rows_xml",
    "splice",
    "text_cells",
]

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
HYPERLINK_REL = f"{REL_NS}/hyperlink"
EMPTY = "<c/>"
"""A blank cell. Cells carry no `r` reference (it is optional): each follows the one before,
so a blank still has to be written to keep the next cell in its column."""
_SEPARATOR = "\x00"  # cannot occur in XML text, so it never hides a character to escape
_ILLEGAL_PATTERN = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"
"""Characters XML cannot hold, in syntax both Python's re and Arrow's RE2 read."""
_ILLEGAL = re.compile(_ILLEGAL_PATTERN)
_ALLOWED = bytes(b for b in range(256) if b >= 0x20 or chr(b) in "\t\n\r")
"""Bytes that may appear in XML text."""
_XML_BYTES = _ALLOWED + _SEPARATOR.encode()
"""The same and the separator, which is checked apart."""
_WHITESPACE = " \t\r\n"
_ELEMENTS_AFTER_HYPERLINKS = (
    "<printOptions",
    "<pageMargins",
    "<pageSetup",
    "<headerFooter",
    "<rowBreaks",
    "<colBreaks",
    "<drawing",
    "<legacyDrawing",
    "<tableParts",
    "<extLst",
    "</worksheet>",
)
COMPRESS_LEVEL = 1
"""Deflate level for streamed sheets: level 1 is ~4x faster than the default and the file is
about a third larger (repetitive cell markup compresses well either way)."""


def _needs_care(values: list[str]) -> bool:
    """Whether any value needs escaping, stripping of characters XML cannot hold, or its
    whitespace kept at either end. A few C-speed passes over the column."""
    if not values:
        return False
    if list(map(str.strip, values)) != values:
        return True
    joined = _SEPARATOR.join(values)
    if "&" in joined or "<" in joined or ">" in joined:
        return True
    if joined.count(_SEPARATOR) != len(values) - 1:
        return True  # a value holds the separator itself
    # Deleting every byte XML allows leaves the ones it does not (UTF-8 never encodes a
    # character above U+007F with a byte below 0x80).
    return bool(joined.encode().translate(None, _XML_BYTES))


def _inline(text: str, style: str) -> str:
    """One text cell, escaped, with characters XML cannot hold removed."""
    return _markup(escape(_ILLEGAL.sub("", text)), style)


def _markup(text: str, style: str) -> str:
    """One cell of already escaped text, keeping its whitespace at either end."""
    if not text:
        return f"<c{style}/>" if style else EMPTY
    space = ' xml:space="preserve"' if text[0] in _WHITESPACE or text[-1] in _WHITESPACE else ""
    return f'<c{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def text_cells(values: Sequence[str], style: int | None = None) -> list[bytes]:
    """Text cells (never formulas: "=SUM(A1)" stays text), blank where the value is ""."""
    attr = f' s="{style}"' if style is not None else ""
    items = list(values)
    if not any(items):
        return [f"<c{attr}/>".encode()] * len(items)
    if _needs_care(items):
        return [_inline(v, attr).encode() for v in items]
    blank = f"<c{attr}/>"
    return [
        f'<c{attr} t="inlineStr"><is><t>{v}</t></is></c>'.encode() if v else blank.encode()
        for v in items
    ]


class TextColumns:
    """Columns of plain text cells that end every row, made a chunk of rows at a time.

    A row's cells are one `bytes.join` of its values with the markup between two cells as
    the separator (blanks are turned into `<c/>` afterwards, in one pass over the chunk), so
    no object is made per cell. Escaping is done on the Arrow columns that need it; the rare
    row with a value whose whitespace at either end must be kept is made cell by cell.
    """

    def __init__(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> None:
        escaped = [_escaped(c) for c in columns]
        self.columns = [c.cast(pa.large_binary()) for c in escaped]
        spaced = np.zeros(len(escaped[0]) if escaped else 0, dtype=bool)
        for column in escaped:
            # ASCII whitespace is a superset of XML's: a false alarm only costs a careful row.
            if _has_bytes(column, b" \t\n\r\x0b\x0c"):
                edge = pc.not_equal(pc.ascii_trim_whitespace(column), column)
                spaced |= flags(edge)
        self.spaced = np.flatnonzero(spaced)
        """Rows holding a value with whitespace at either end."""
        self.has_blanks = any(pc.any(pc.equal(c, "")).as_py() for c in escaped)

    def pieces(self, part: slice) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """The cells of rows `part` as three columns of pieces: what opens each row's first
        cell, the cells (values joined by the markup between two cells), and what closes the
        last cell and the row. The caller's one join per chunk makes the rows."""
        n = part.stop - part.start
        if not self.columns:
            return [b""] * n, [b""] * n, [b"</row>"] * n
        values = [c.slice(part.start, n).to_pylist() for c in self.columns]
        opens, closes = [_OPEN] * n, [_CLOSE_ROW] * n
        cells = list(map(_BETWEEN.join, zip(*values, strict=True)))
        first, last = np.searchsorted(self.spaced, [part.start, part.stop])
        for at in self.spaced[first:last].tolist():
            i = at - part.start
            # This row's cells are written whole, each with its own markup.
            cells[i] = b"".join(_careful_cell(v[i]) for v in values)
            opens[i], closes[i] = b"", b"</row>"
        return opens, cells, closes

    def blank_cells(self, chunk: bytes) -> bytes:
        """`chunk` with the blank cells the joins made (if a column has any) as `<c/>`."""
        return chunk.replace(EMPTY_INLINE, EMPTY.encode()) if self.has_blanks else chunk


_OPEN = b'<c t="inlineStr"><is><t>'
_CLOSE_ROW = b"</t></is></c></row>"
_BETWEEN = b'</t></is></c><c t="inlineStr"><is><t>'
EMPTY_INLINE = b'<c t="inlineStr"><is><t></t></is></c>'
"""What the joined rows hold for a blank cell; `blank_cells` turns it into `<c/>`."""


def _data(column: pa.Array | pa.ChunkedArray) -> Iterator[bytes]:
    """The bytes of a text column's values, a chunk at a time (slices may show a few more
    values than they hold: good enough to rule characters out)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        buffer = chunk.buffers()[2]
        if buffer is not None:
            yield memoryview(buffer).tobytes()


def _has_bytes(column: pa.Array | pa.ChunkedArray, chars: bytes) -> bool:
    """Whether any value may hold one of `chars` (ASCII), scanning the column's bytes at C
    speed rather than value by value."""
    return any(data.translate(None, chars) != data for data in _data(column))


def _escaped(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The column as XML text: characters XML cannot hold removed, `&<>` escaped."""
    illegal = any(data.translate(None, _ALLOWED) for data in _data(column))
    if illegal:
        column = pc.replace_substring_regex(column, _ILLEGAL_PATTERN, "")
    if illegal or _has_bytes(column, b"&<>"):
        for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            column = pc.replace_substring(column, char, entity)
    return column


def _careful_cell(value: bytes) -> bytes:
    """One escaped value as a cell, keeping its whitespace at either end."""
    return _markup(value.decode(), "").encode()


def cell_styles(sheet_xml: bytes, row: int) -> list[int | None]:
    """The style index of each cell in one row of an openpyxl-written sheet: how a template
    row tells the streamed rows which `s=` means bold, linked or a status colour."""
    root = etree.fromstring(sheet_xml)
    for element in root.iter(f"{{{MAIN_NS}}}row"):
        if element.get("r") == str(row):
            return [
                int(s) if (s := c.get("s")) is not None else None
                for c in element.iter(f"{{{MAIN_NS}}}c")
            ]
    raise ValueError(f"the template sheet has no row {row}")


@dataclass(frozen=True, slots=True)
class Link:
    """A hyperlink on one cell: to a web page, or (`location`) to a cell of this workbook."""

    ref: str
    target: str | None = None
    location: str | None = None


@dataclass(kw_only=True)
class StreamedSheet:
    """A worksheet whose `<sheetData>` is written from `rows`: chunks of `<row>` elements.
    Links are read after the rows are written, so the generator may add to them as it goes."""

    rows: Iterable[str | bytes]
    links: list[Link] = field(default_factory=list)


def _sheet_parts(package: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part's path in the package."""
    workbook = etree.fromstring(package.read("xl/workbook.xml"))
    rels = etree.fromstring(package.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels}
    parts = {}
    for sheet in workbook.iter(f"{{{MAIN_NS}}}sheet"):
        target = str(targets[sheet.get(f"{{{REL_NS}}}id")])
        path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        parts[str(sheet.get("name"))] = path
    return parts


def _rels_path(part: str) -> str:
    p = PurePosixPath(part)
    return str(p.parent / "_rels" / f"{p.name}.rels")


def _hyperlinks(links: list[Link]) -> tuple[str, str | None]:
    """The `<hyperlinks>` element and the relationships part its web links need."""
    if not links:
        return "", None
    items: list[str] = []
    rels: list[str] = []
    for link in links:
        if link.target is not None:
            rid = f"rId{len(rels) + 1}"
            rels.append(
                f'<Relationship Id="{rid}" Type="{HYPERLINK_REL}" '
                f'Target={quoteattr(link.target)} TargetMode="External"/>'
            )
            items.append(f'<hyperlink ref="{link.ref}" r:id="{rid}"/>')
        else:
            location = quoteattr(link.location or "")
            items.append(f'<hyperlink ref="{link.ref}" location={location}/>')
    element = f'<hyperlinks xmlns:r="{REL_NS}">{"".join(items)}</hyperlinks>'
    part = f'<Relationships xmlns="{PKG_REL_NS}">{"".join(rels)}</Relationships>' if rels else None
    return element, part


def _write_streamed(
    out: zipfile.ZipFile, name: str, template: bytes, sheet: StreamedSheet
) -> str | None:
    """Write one streamed sheet part; returns its relationships part, if its links need one."""
    xml = template.decode()
    start = xml.index("<sheetData")
    end = xml.rindex("</sheetData>") + len("</sheetData>") if "</sheetData>" in xml else None
    head = xml[:start] + "<sheetData>"
    tail = xml[end:] if end is not None else xml[xml.index("/>", start) + 2 :]
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def compress() -> None:
        # Deflate, CRC and file writes release the GIL: this thread runs beside the builder.
        try:
            with out.open(name, "w", force_zip64=True) as fh:
                _deflate_with_isal(fh)
                while (chunk := chunks.get()) is not None:
                    fh.write(chunk)
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
            while chunks.get() is not None:
                pass

    writer = threading.Thread(target=compress, name=f"xlsx-{name}", daemon=True)
    writer.start()
    try:
        chunks.put(head.encode())
        for rows in sheet.rows:
            if failure:
                break
            chunks.put(rows if isinstance(rows, bytes) else rows.encode())
    finally:
        if not failure:
            element, rels = _hyperlinks(sheet.links)
            if element:
                at = min(i for tag in _ELEMENTS_AFTER_HYPERLINKS if (i := tail.find(tag)) >= 0)
                tail = tail[:at] + element + tail[at:]
            chunks.put(("</sheetData>" + tail).encode())
        chunks.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return rels


def _deflate_with_isal(member: IO[bytes]) -> None:
    """Have zipfile deflate `member` with ISA-L instead of zlib: the same raw deflate format,
    ~4x faster at level 1 and a little smaller on this markup, which makes compressing a
    million-row sheet take 0.4 s instead of 1.8 s. zipfile has no public hook for its
    compressor; if its internals ever differ, it keeps its own (slower, equally correct)."""
    if getattr(member, "_compressor", None) is not None:
        member._compressor = isal_zlib.compressobj(  # type: ignore[attr-defined]
            COMPRESS_LEVEL, isal_zlib.DEFLATED, -15
        )


def splice(
    template: bytes, path: Path, sheets: dict[str, Callable[[bytes], StreamedSheet]]
) -> None:
    """Write the package `template` (an openpyxl workbook) to `path`, with the named sheets'
    rows replaced by streamed ones. Each such sheet keeps its template's settings (columns,
    panes, filter, print setup); its rows and links are dropped. The callables are given the
    template sheet's XML (to read its styles with `cell_styles`) and return the rows."""
    with zipfile.ZipFile(io.BytesIO(template)) as package:
        parts = _sheet_parts(package)
        unknown = set(sheets) - set(parts)
        if unknown:
            raise ValueError(f"the template has no sheet named {', '.join(sorted(unknown))}")
        streamed = {parts[name]: sheet for name, sheet in sheets.items()}
        dropped = {_rels_path(p) for p in streamed}
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as out:
            for info in package.infolist():
                if info.filename in dropped:
                    continue
                if info.filename in streamed:
                    xml = package.read(info)
                    rels = _write_streamed(out, info.filename, xml, streamed[info.filename](xml))
                    if rels is not None:
                        out.writestr(_rels_path(info.filename), rels)
                else:
                    out.writestr(info, package.read(info))


def chunked(total: int, size: int) -> Iterator[slice]:
    """Slices of `size` covering 0..total."""
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


def rows_xml(columns: Sequence[Sequence[bytes]]) -> bytes:
    """Pieces given column by column, joined row by row into one string."""
    return b"".join(itertools.chain.from_iterable(zip(*columns, strict=True)))
