"""What `undo` says: what a run did that undo acts on, what it archived, kept and brought
back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..history.runs import Undo, UndoDone

__all__ = ["describe_undo", "say_checked", "say_restored", "undo_what"]


def undo_what(undo: Undo, archiving: str) -> str:
    """What undo is about to do: `archiving` (its `{}` the count of records created) and
    what it brings back of `missing_rows:`."""
    parts = [archiving.format(len(undo.created))] if undo.created or not undo.missing else []
    if undo.missing:
        parts.append(f"bring back {len(undo.missing)} records missing_rows: archived or set")
    return " and ".join(parts)


def say_restored(done: UndoDone, indent: str = "") -> None:
    """What undo made of each record `missing_rows:` archived or set: `key: old -> new`."""
    if not done.restored:
        return
    click.echo(f"{indent}Records missing_rows: had archived or set (key: id -> id now):")
    for r in done.restored:
        e = r.entry
        moved = f"{e.hubspot_id} -> {r.new_id}" if r.new_id != e.hubspot_id else e.hubspot_id
        click.echo(f"{indent}  {e.key_value}: {moved} ({r.said})")
    left = sum(1 for r in done.restored if not r.done)
    if left:
        click.echo(
            f"{indent}{left} of them were not brought back (see above): run "
            f"`hubspot-import undo {done.restored[0].entry.run_id}` again to retry them."
        )


def describe_undo(undo: Undo, indent: str = "") -> None:
    if undo.archived_before:
        click.echo(
            f"{indent}An earlier undo archived {undo.archived_before} of them and stopped; "
            f"{len(undo.created)} are left to archive."
        )
    if undo.updated:
        click.echo(
            f"{indent}Updated records are left as they are (their earlier values are not "
            f"known): {_ids(undo.updated)}."
        )
    if undo.missing or undo.returned or undo.restored_before:
        _describe_missing(undo, indent)
    if undo.links:
        added = sum(c["change"] == "add" for c in undo.links)
        click.echo(
            f"{indent}It also added {added} and removed {len(undo.links) - added} links of "
            "records it did not create: undo removes those it added and puts back those it "
            "removed."
        )


def _describe_missing(undo: Undo, indent: str) -> None:
    """What the run's `missing_rows:` did, and what undo does about it."""
    archived = sum(1 for e in undo.missing if e.action == "archive")
    set_ = len(undo.missing) - archived
    if undo.missing:
        click.echo(
            f"{indent}Its missing_rows: archived {archived} and set {set_} records no longer "
            "in the feed: undo writes back the earlier values of those it set, and creates "
            "those it archived again from the values it kept (with new ids: HubSpot's API "
            "cannot restore an archived record; whoever needs the original ids restores them "
            "from HubSpot's recycling bin, within 90 days, instead)."
        )
    if undo.returned:
        click.echo(
            f"{indent}{len(undo.returned)} records it archived or set came back in the feed "
            "since: they are left as they are."
        )
    if undo.restored_before:
        click.echo(f"{indent}An earlier undo brought back {undo.restored_before} of them.")


def say_checked(done: UndoDone, run: dict[str, Any], indent: str = "") -> None:
    """The records the run created that undo did not archive as it found them: changed since
    (kept, or archived with --force), or no longer in HubSpot."""
    kind, rid = run["object_type"], run["run_id"]
    if done.kept:
        click.echo(
            f"{indent}Kept {len(done.kept)} {kind} the run created that were changed in "
            "HubSpot since (not archived; `hubspot-import undo "
            f"{rid} --force` archives them too):"
        )
        for _, hid, why in done.kept:
            click.echo(f"{indent}  {hid}: {why}")
    if done.forced:
        click.echo(
            f"{indent}Of those archived, {len(done.forced)} were changed in HubSpot since the "
            f"run (--force): {_ids(done.forced)}."
        )
    if done.gone:
        click.echo(
            f"{indent}{len(done.gone)} {kind} the run created are no longer in HubSpot "
            f"(deleted, archived or merged into another record): nothing was archived in "
            f"their place: {_ids(done.gone)}."
        )


def _ids(records: Sequence[tuple[str, ...]]) -> str:
    """`101, 102, 103 and 4 more`: the ids of (row key, id, ...) records, the first 20."""
    ids = ", ".join(r[1] for r in records[:20])
    return ids + (f" and {len(records) - 20} more" if len(records) > 20 else "")
