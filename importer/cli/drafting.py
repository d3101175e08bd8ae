"""`init`: a mapping drafted from INPUT's header row, its values and the portal's properties.

The work's modules load pandas and the spreadsheet libraries: the command imports them where
its work starts, so that help, the version and usage errors answer at once."""

from __future__ import annotations

import contextlib
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..api.client import HubSpotClient
from ..core.errors import ConfigError
from ..core.hubspot import canonical_object_type
from ..sheets.sources import Location, locate
from .common import EXIT_OK, TARGET_OPTIONS, _target, _use_system_allocator, cli
from .sources import PICK_OPTION, reading

if TYPE_CHECKING:
    from ..mapping.draft import Draft
    from ..sheets.table import Table

__all__ = ["SURE_ENOUGH", "init"]

SURE_ENOUGH = 0.95
"""`init` asks the user to check a match less sure than this (partial, fuzzy, likely)."""


@cli.command()
@click.argument("input_file", metavar="INPUT")
@click.option(
    "--object",
    "object_type",
    required=True,
    help="The HubSpot object type to import into: products, carts, contacts, 0-7, "
    "a custom object ...",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write the mapping. Default: mappings/<input name>.yaml.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--sheet",
    help="Excel sheet name (or 1-based number). Default: the first visible sheet.",
)
@click.option("--encoding", help="CSV text encoding. Default: UTF-8 (with or without BOM).")
@click.option(
    "--header-row",
    type=click.IntRange(1),
    help="The sheet row that holds the header (1 is the first), written into the mapping as "
    "header_row:. Default: found by the reader, title lines above it skipped.",
)
@PICK_OPTION
@TARGET_OPTIONS
def init(
    input_file: str,
    object_type: str,
    out: Path | None,
    force: bool,
    sheet: str | None,
    encoding: str | None,
    header_row: int | None,
    pick: str,
    base_url: str,
    api_version: str | None,
    sandbox: bool,
    log_file: Path | None,
    verbose: bool,
) -> int:
    """Draft a mapping for INPUT from its header row, its values and the portal's properties.

    Columns are matched by property name, by label, and by the column names of common
    exports (Shopify, WooCommerce, BigCommerce, Magento, Google Merchant, Mailchimp,
    HubSpot). It proposes the key, and for an export with grouped rows (a product's variants
    and images) group_by, fill_down and skip_rows_without.

    INPUT may be a URL (https, s3, gs, az, abfs, sftp; a Google Sheets, SharePoint or OneDrive
    sharing link) or a glob (exports/products-*.csv), as for `run`.
    """
    location = locate(input_file)
    out = out or Path("mappings") / f"{_mapping_stem(location)}.yaml"
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; choose another --out, or add --force to replace it")
    from ..mapping.draft import draft_mapping
    from ..mapping.portal import read_schema

    _use_system_allocator()
    with contextlib.ExitStack() as stack:
        _, base_url, token = stack.enter_context(
            _target(stack, sandbox=sandbox, base_url=base_url, log_file=log_file, verbose=verbose)
        )
        shown, table = _read_input(input_file, pick, sheet, encoding, header_row)
        client = stack.enter_context(
            contextlib.closing(
                HubSpotClient(token=token, base_url=base_url, api_version=api_version)
            )
        )
        schema = read_schema(client, canonical_object_type(object_type))
        where = shown + (f" (sheet {table.sheet})" if table.sheet else "")
        next_step = _next_step(out, location, sheet)
        draft = draft_mapping(
            table,
            schema,
            source=where,
            command=next_step,
            base_url=base_url,
            header_row=header_row,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draft.text, encoding="utf-8")
    _report_draft(draft, out, len(table.columns), schema.object_type)
    click.echo(f"Next: {next_step}")
    return EXIT_OK


def _report_draft(draft: Draft, out: Path, columns: int, object_type: str) -> None:
    """What `init` drafted: the matches to check, the key (or, on stderr, why none), the
    grouping and the columns left out."""
    export = f" (a {draft.matching.export} export)" if draft.matching.export else ""
    click.echo(
        f"Wrote {out}: {len(draft.matches)} of {columns} columns matched to "
        f"{object_type} properties{export}."
    )
    if draft.header_row is not None:
        click.echo(f"  header: row {draft.header_row} (header_row: {draft.header_row})")
    if draft.key.match is not None:
        click.echo(f"  key: {draft.key.match.column!r} -> {draft.key.match.prop.name}")
    else:
        click.echo(f"hubspot-import: init proposed no key: {draft.no_key}", err=True)
    grouping = draft.grouping
    if grouping.group_by is not None:
        filled = ", ".join(repr(c) for c in grouping.fill_down)
        click.echo(f"  grouped by {grouping.group_by!r}: fill_down {filled}")
    if draft.parents is not None and grouping.parents is not None:
        click.echo(f"  skip_rows_where {grouping.parents.column!r}: {draft.parents}")
    if draft.skipping is not None:
        click.echo(f"  skip_rows_without {grouping.skip_without!r}: {draft.skipping}")
    for m in draft.matches:
        if m.score < SURE_ENOUGH or m.note:
            note = f"; {m.note}" if m.note else ""
            click.echo(f"  check: {m.column!r} -> {m.prop.name} ({m.how}{note})")
    if draft.unmatched:
        click.echo(f"  not matched: {', '.join(repr(c) for c in draft.unmatched)}")


def _read_input(
    input_file: str, pick: str, sheet: str | None, encoding: str | None, header_row: int | None
) -> tuple[str, Table]:
    """INPUT opened (a URL downloaded into the user's state folder, a glob's match picked)
    and read: the file read, as shown, and its sheet."""
    from ..sheets.inputs import open_input
    from ..sheets.load import load_table

    with reading(None, pick):
        source = open_input(input_file)
    table = load_table(source.local, sheet=sheet, encoding=encoding, header_row=header_row)
    return source.shown, table


def _next_step(out: Path, location: Location, sheet: str | None) -> str:
    """The `check` command to run next, quoted for a shell, INPUT as given (a URL without its
    secrets, saying so: the command runs once they are put back)."""
    sheet_option = f" --sheet {shlex.quote(sheet)}" if sheet else ""
    command = (
        f"hubspot-import check --mapping {shlex.quote(str(out))} "
        f"{shlex.quote(location.shown)}{sheet_option}"
    )
    hidden = location.remote and location.shown != location.given
    return f"{command} (put back the hidden values)" if hidden else command


def _mapping_stem(location: Location) -> str:
    """The mapping's default name: INPUT's file name without its suffix, or a glob's without
    its wildcards (`products-*.csv` -> `products`)."""
    stem = Path(location.name).stem
    if location.glob:
        stem = re.sub(r"\[[^\]]*\]|[*?]", "", stem).strip("-_. ") or "input"
    return stem
