"""`properties`: the portal's property definitions of one object type, to see what a mapping
can map to.

rich is imported only where the table is drawn for a terminal, so that help and usage errors
answer at once."""

from __future__ import annotations

import contextlib
import difflib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..api.client import HubSpotClient, RetryPolicy
from ..core.hubspot import canonical_object_type
from ..mapping.portal import PropertyInfo, read_schema
from .common import EXIT_OK, TARGET_OPTIONS, _target, cli, max_attempts_option

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

COLUMNS = ("name", "label", "type", "field type", "group", "unique", "read-only", "options")
"""The table's header, in the order of `_cells`."""
NEAREST_SHOWN = 3


@cli.command()
@click.argument("object_type", metavar="OBJECT")
@click.option(
    "--search",
    "words",
    multiple=True,
    metavar="WORD",
    help="Only properties whose name, label or group contains WORD (any case). Several words "
    "(quoted together, or --search again): each must be found.",
)
@click.option(
    "--writable",
    is_flag=True,
    help="Only properties a mapping can write (neither read-only nor calculated).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the definitions as a JSON array (for scripts), and nothing else on stdout.",
)
@max_attempts_option(
    "Attempts at reading the properties before giving up on 429s, 5xx and refused connections."
)
@TARGET_OPTIONS
def properties(
    object_type: str,
    words: tuple[str, ...],
    writable: bool,
    as_json: bool,
    max_attempts: int,
    base_url: str,
    api_version: str | None,
    sandbox: bool,
    log_file: Path | None,
    verbose: bool,
) -> int:
    """List the portal's properties of OBJECT (products, deals, line_items, 0-7, a custom
    object's name ...): name, label, type, field type, group, unique, read-only and the number
    of options, sorted by group then name. The count goes to standard error, so that the
    table's lines alone reach a pipe (tab-separated, with a header)."""
    with contextlib.ExitStack() as stack:
        _, base_url, token = stack.enter_context(
            _target(stack, sandbox=sandbox, base_url=base_url, log_file=log_file, verbose=verbose)
        )
        client = HubSpotClient(
            token=token,
            base_url=base_url,
            api_version=api_version,
            retry=RetryPolicy(max_attempts=max_attempts),
        )
        with contextlib.closing(client):
            schema = read_schema(client, canonical_object_type(object_type))
    pool = [p for p in schema.properties.values() if _writable(p) or not writable]
    shown = selected(pool, words)
    if as_json:
        click.echo(json.dumps([_as_json(p) for p in shown], indent=2, ensure_ascii=False))
    elif shown:
        _print_table(shown)
    if words and not shown:
        click.echo(_no_match(" ".join(words), pool, schema.object_type), err=True)
    elif not as_json:
        click.echo(_count_line(shown, len(schema.properties), schema.object_type), err=True)
    return EXIT_OK


def _writable(p: PropertyInfo) -> bool:
    """Whether a mapping can write it: HubSpot sets read-only and calculated ones itself."""
    return not (p.read_only or p.calculated)


def selected(pool: Iterable[PropertyInfo], words: Sequence[str]) -> list[PropertyInfo]:
    """The properties whose name, label or group holds each of the words (any case; a text
    of several words counts as each of them), sorted by group, then name."""
    query = [w.casefold() for text in words for w in text.split()]

    def matches(p: PropertyInfo) -> bool:
        where = f"{p.name}\n{p.label}\n{p.group}".casefold()
        return all(word in where for word in query)

    return sorted(filter(matches, pool), key=lambda p: (p.group.casefold(), p.name))


def _options_text(p: PropertyInfo) -> str:
    """The options column: their number, `owners` for an owner property, blank for none."""
    if p.referenced.upper() == "OWNER":
        return "owners"
    return str(len(p.options)) if p.options else ""


def _cells(p: PropertyInfo) -> tuple[str, ...]:
    """One property's line of the table, in the order of COLUMNS."""
    read_only = "calculated" if p.calculated else ("yes" if p.read_only else "")
    return (
        p.name,
        p.label,
        p.type,
        p.field_type,
        p.group,
        "yes" if p.unique else "",
        read_only,
        _options_text(p),
    )


def _print_table(shown: Sequence[PropertyInfo]) -> None:
    """On a terminal, a table fitted to its width; else tab-separated lines under a header."""
    rows = [_cells(p) for p in shown]
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        table, left_out = rich_table(rows, console.width)
        console.print(table)
        if left_out:
            listed = ", ".join(left_out[:-1]) + " and " * (len(left_out) > 1) + left_out[-1]
            click.echo(
                f"({listed} left out to fit the terminal: --json, or the output piped, has "
                "every column)",
                err=True,
            )
        return
    for cells in (COLUMNS, *rows):
        # A tab or line break inside a label would split its line for `cut` and `grep`.
        click.echo("\t".join(" ".join(c.split()) for c in cells))


def rich_table(rows: Sequence[tuple[str, ...]], width: int) -> tuple[Table, list[str]]:
    """The table drawn on a terminal `width` characters wide, a line per property, and the
    columns left out for want of room (`_fitting`). The label is cut short (…) where the
    others leave it too little room, never the name (what a mapping is given)."""
    from rich import box
    from rich.table import Table

    shown = _fitting(rows, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for name in shown:
        table.add_column(_one_line(name, "bold"), no_wrap=name != "label")
    at = [COLUMNS.index(name) for name in shown]
    for cells in rows:
        table.add_row(*(_one_line(cells[i]) for i in at))
    return table, [name for name in COLUMNS if name not in shown]


_GAP = 2
"""Characters between two columns of the terminal's table."""
_LABEL_MIN = 12
"""The least of a label worth showing: with less room, the label column is left out."""


def _fitting(rows: Sequence[tuple[str, ...]], width: int) -> list[str]:
    """The COLUMNS the terminal's table shows: while it would be wider than `width`, the
    group is left out, then the field type (a whole label matters more), then the label,
    once the others leave it fewer than _LABEL_MIN characters."""
    widths = {col[0]: max(len(c) for c in col) for col in zip(COLUMNS, *rows, strict=True)}
    label = widths["label"]
    shown = list(COLUMNS)
    for name, room in (("group", label), ("field type", label), ("label", min(label, _LABEL_MIN))):
        others = sum(widths[c] for c in shown if c != "label")
        if others + room + _GAP * (len(shown) - 1) <= width:
            break
        shown.remove(name)
    return shown


def _one_line(text: str, style: str = "") -> Text:
    """A cell that is cut short (…) rather than wrapped: a line per property."""
    from rich.text import Text

    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _as_json(p: PropertyInfo) -> dict[str, Any]:
    """One property for --json; every key always there (null where HubSpot gives none)."""
    return {
        "name": p.name,
        "label": p.label,
        "type": p.type,
        "fieldType": p.field_type,
        "group": p.group,
        "unique": p.unique,
        "readOnly": not _writable(p),
        "calculated": p.calculated,
        "options": [{"label": label, "value": value} for label, value in p.options],
        "referencedObjectType": p.referenced or None,
        "numberDisplayHint": p.display_hint or None,
    }


def _count_line(shown: Sequence[PropertyInfo], total: int, object_type: str) -> str:
    """`25 properties of products (20 writable)`; `3 of 25 ...` when some were left out."""
    writable = sum(_writable(p) for p in shown)
    of = f" of {total}" if len(shown) != total else ""
    noun = "property" if total == 1 and not of else "properties"
    return f"{len(shown)}{of} {noun} of {object_type} ({writable} writable)"


def _no_match(query: str, pool: Iterable[PropertyInfo], object_type: str) -> str:
    """What to say when no property matches: the nearest names, by name or label."""
    names: dict[str, str] = {}
    for p in pool:
        names.setdefault(p.name.casefold(), p.name)
        names.setdefault(p.label.casefold(), p.name)
    said = query.casefold()
    close = [
        c
        for term in dict.fromkeys([said, *said.split()])
        for c in difflib.get_close_matches(term, list(names), n=NEAREST_SHOWN, cutoff=0.6)
    ]
    nearest = list(dict.fromkeys(names[c] for c in close))[:NEAREST_SHOWN]
    if nearest:
        return f"no property matches {query!r}; nearest: {', '.join(nearest)}"
    return f"no property of {object_type} matches {query!r}; run without --search to list them all"
