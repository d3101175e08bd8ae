"""INPUT as a URL or a glob on the command line: `--pick`, the downloads folder a command's
inputs share (`<state folder>/downloads`), and the summary saying what was read (the URL, its
secrets hidden, or the glob's match; never the private copy)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import click

from ..core.errors import ConfigError
from ..sheets.inputs import DOWNLOADS_FOLDER, open_input, reading_inputs, source_of
from ..sheets.picking import PICKS
from ..sheets.share_links import file_name
from ..sheets.sources import locate

if TYPE_CHECKING:
    from ..stages.options import RunOptions

__all__ = [
    "PICK_OPTION",
    "input_label",
    "input_options",
    "local_input",
    "reading",
    "shown_inputs",
]

PICK_OPTION = click.option(
    "--pick",
    type=click.Choice(PICKS),
    default="name",
    show_default=True,
    help="For an INPUT that is a glob (exports/products-*.csv, s3://bucket/feeds/products-*.csv): "
    "read the last match by name (dated names sort by date), or the newest by modification "
    "time (mtime). The match read is logged and in the summary.",
)


@contextlib.contextmanager
def reading(state_dir: Path | None, pick: str) -> Iterator[None]:
    """Inputs opened meanwhile keep their downloads under the state folder and pick a glob's
    match by `pick`."""
    from ..state.paths import default_state_dir

    with reading_inputs((state_dir or default_state_dir()) / DOWNLOADS_FOLDER, pick):
        yield


def input_options(options: RunOptions, given: str | None) -> RunOptions:
    """The run's options with INPUT opened (a URL downloaded, a glob's match picked): the
    file read, and for a remote INPUT the results workbook in the working folder by default
    (beside the private copy, nobody would find it)."""
    if given is None:
        return options
    source = open_input(given)
    out = options.out
    if out is None and source.location.remote:
        from ..sheets.results import default_results_path

        out = default_results_path(Path(source.local.name), dt.datetime.now(dt.UTC))
    return dataclasses.replace(options, input_file=source.local, out=out)


def shown_inputs(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's (or a plan's) summary with each input read from a URL or a glob shown as
    given (`input_source`) and as read (`input_file`: the URL or the match)."""
    for part in [summary, *summary.get("steps", [])]:
        recorded = part.get("input_file")
        source = source_of(Path(recorded)) if isinstance(recorded, str) else None
        if source is not None and (source.location.remote or source.location.glob):
            part["input_file"] = source.shown
            part["input_source"] = source.as_json()
    return summary


def input_label(given: str | None) -> Path | None:
    """INPUT's file name (a URL's without its query; a glob's as given, `products-*.csv`),
    for a notification that has no summary to name it; None without INPUT."""
    if given is None:
        return None
    try:
        location = locate(given)
        if location.glob:  # its name as a local file would have `_` for `*`
            return Path(PurePosixPath(given).name)
        return Path(location.name)
    except ConfigError:  # credentials in it: said by the run itself
        return Path(file_name(given.partition("?")[0].partition("#")[0]))


def local_input(given: str | None) -> Path | None:
    """INPUT as a local file, which no file the run writes may replace; None for a URL or a
    glob."""
    if given is None:
        return None
    try:
        location = locate(given)
    except ConfigError:
        return None
    return None if location.remote or location.glob else location.path
