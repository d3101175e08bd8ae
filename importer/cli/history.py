"""`runs`, `show` and `undo`: past runs from the journals."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from .._errors import (
    ConfigError,
    HubSpotUnavailable,
)
from ..api.client import HubSpotClient, RetryPolicy
from ..sheets.outputs import prepare_workbook
from ..state.history import UndoPlan, list_runs, plan_undo, undo_run
from ..state.journal import default_state_dir
from ..state.rundata import rewrite_workbook
from .common import (
    API_VERSION_OPTION,
    EXIT_OK,
    SANDBOX_DB,
    SANDBOX_JOURNAL,
    SANDBOX_TOKEN,
    STATE_DIR_OPTION,
    TOKEN_ENV,
    _counts_text,
    cli,
)


@cli.command()
@STATE_DIR_OPTION
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Show at most this many runs, newest first.",
)
def runs(state_dir: Path | None, limit: int) -> int:
    """List past runs from the journals: id, when, object, input, counts, workbook."""
    found = list_runs(state_dir or default_state_dir())
    if not found:
        click.echo("No runs recorded yet.")
        return EXIT_OK
    for r in found[:limit]:
        state = (
            f" [undone {r['undone']}]"
            if r.get("undone")
            else ("" if r.get("finished") else " [did not finish]")
        )
        portal = f"  portal {r['portal']}" if r.get("portal") else ""
        click.echo(
            f"{r['run_id']}  {r['started']}  {r['object_type']} ({r['mode']})  "
            f"{r['input_file']}{state}{portal}"
        )
        click.echo(f"    {_counts_text(r['counts'])}; workbook: {r.get('workbook') or '-'}")
    if len(found) > limit:
        click.echo(f"... and {len(found) - limit} older runs (--limit to see more)")
    return EXIT_OK


@cli.command()
@click.argument("run_id", metavar="RUN")
@STATE_DIR_OPTION
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the run's results workbook again, from its journal, to this .xlsx file "
    "(when the run's own could not be written, or the run was stopped).",
)
def show(run_id: str, state_dir: Path | None, out: Path | None) -> int:
    """Print one run's summary (RUN: its id, or the start of it)."""
    plan = plan_undo(state_dir or default_state_dir(), run_id)
    r = plan.run
    if out is not None:
        keep = (Path(r["input_file"]), Path(r["mapping_file"]))
        written, finished = rewrite_workbook(r, prepare_workbook(out, keep=keep))
        click.echo(
            f"Wrote the results workbook of run {r['run_id']} to {written}"
            + (
                ""
                if finished
                else " (the run did not finish: rows it sent have what the journal recorded "
                "of them, the rest are not_sent)"
            )
        )
        return EXIT_OK
    fields = [
        ("Run id", r["run_id"]),
        ("Object type", r["object_type"]),
        ("Mode", r["mode"]),
        ("HubSpot", r["base_url"]),
        ("Portal", r.get("portal") or "unknown (journal kept per base URL)"),
        ("Input file", r["input_file"]),
        ("Sheet", r["sheet"] or "(CSV)"),
        ("Mapping", r["mapping_file"]),
        ("Started", r["started"]),
        ("Finished", r["finished"] or "did not finish"),
        ("Rows", _counts_text(r["counts"])),
        ("Records created", len(plan.created)),
        ("Records updated", len(plan.updated)),
        ("Stopped early", r["stopped_by"] or "no"),
        ("Workbook", r["workbook"] or "-"),
        ("Journal", r["journal"]),
        (
            "Undone",
            f"{r['undone']} ({r['archived']} archived)"
            if r.get("undone")
            else f"part way: {r['archived']} archived, {len(plan.created)} left (run undo "
            "again to finish)"
            if r.get("archived")
            else "no",
        ),
    ]
    for name, value in fields:
        click.echo(f"{name + ':':17}{value}")
    return EXIT_OK


@cli.command()
@click.argument("run_id", metavar="RUN")
@STATE_DIR_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--base-url",
    envvar="HUBSPOT_BASE_URL",
    help="HubSpot API base URL. Default: the one the run used.",
)
@API_VERSION_OPTION
def undo(
    run_id: str, state_dir: Path | None, yes: bool, base_url: str | None, api_version: str
) -> int:
    """Archive the records RUN created and revert the links it changed on other records;
    the properties of records it updated are listed but not touched."""
    plan = plan_undo(state_dir or default_state_dir(), run_id)
    r = plan.run
    if r.get("undone"):
        click.echo(
            f"Run {r['run_id']} was already undone at {r['undone']} "
            f"({r['archived']} records archived)."
        )
        return EXIT_OK
    click.echo(
        f"Run {r['run_id']} ({r['started']}, {r['input_file']}) created "
        f"{len(plan.created) + plan.archived_before} {r['object_type']} and updated "
        f"{len(plan.updated)}."
    )
    if plan.archived_before:
        click.echo(
            f"An earlier undo archived {plan.archived_before} of them and stopped; "
            f"{len(plan.created)} are left to archive."
        )
    if plan.updated:
        ids = ", ".join(hid for _, hid in plan.updated[:20])
        more = f" and {len(plan.updated) - 20} more" if len(plan.updated) > 20 else ""
        click.echo(
            f"Updated records are left as they are (their earlier values are not "
            f"known): {ids}{more}."
        )
    if plan.links:
        added = sum(c["change"] == "add" for c in plan.links)
        click.echo(
            f"It also added {added} and removed {len(plan.links) - added} links of records it "
            "did not create: undo removes those it added and puts back those it removed."
        )
    if not plan.created and not plan.links:
        click.echo("Nothing to archive.")
        return EXIT_OK
    demo_db = Path(r["journal"]).parent / SANDBOX_DB
    demo = base_url is None and Path(r["journal"]).name.startswith(f"{SANDBOX_JOURNAL}-")
    target = base_url or ("the demo sandbox" if demo else r["base_url"])
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                "not on a terminal, so no one can confirm: add --yes to archive "
                f"{len(plan.created)} records"
            )
        what = f"Archive these {len(plan.created)} records" + (
            f" and revert {len(plan.links)} links" if plan.links else ""
        )
        if not click.confirm(f"{what} in {target}?"):
            click.echo("Nothing was archived.")
            return EXIT_OK
    with contextlib.ExitStack() as stack:
        if demo:
            if not demo_db.exists():
                raise ConfigError(
                    f"run {r['run_id']} imported into the demo sandbox, whose records "
                    f"({demo_db}) are gone: there is nothing left to undo"
                )
            from ..sandbox import Sandbox, SandboxConfig

            target = stack.enter_context(Sandbox(SandboxConfig(db=demo_db))).url
        archived = _undo_at(plan, target, api_version, local_token=SANDBOX_TOKEN)
    click.echo(
        f"Archived {archived} {r['object_type']} created by run {r['run_id']}"
        + (f"; reverted {len(plan.links)} links." if plan.links else ".")
    )
    return EXIT_OK


def _undo_at(plan: UndoPlan, target: str, api_version: str, *, local_token: str) -> int:
    r = plan.run
    local = urlsplit(target).hostname in ("127.0.0.1", "localhost", "::1")
    token = os.environ.get(TOKEN_ENV, "") or (local_token if local else "")
    client = HubSpotClient(
        token=token,
        base_url=target,
        api_version=api_version,
        # A sandbox on this machine answers at once or is gone: no minute of retries.
        retry=RetryPolicy(max_attempts=1) if local else None,
    )
    try:
        archived = undo_run(plan, client)
    except HubSpotUnavailable as exc:
        if not local:
            raise
        raise ConfigError(
            f"run {r['run_id']} imported into the sandbox at {target}, which is no longer "
            f"running ({exc}). A sandbox keeps its records only while it runs (or in its "
            "--db file): start it again with `hubspot-import sandbox --db FILE` and give "
            "--base-url, or there is nothing left to undo."
        ) from exc
    finally:
        client.close()
    return archived
