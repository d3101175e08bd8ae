"""`runs`, `show` and `undo`: past runs from the journals.

Plan runs' history and the rewriting of a run's workbook load pandas and the spreadsheet
libraries: the commands import them where their work starts, so that help and usage errors
answer at once."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from ..api.client import HubSpotClient, RetryPolicy
from ..core.errors import ConfigError, HubSpotUnavailable
from ..history.runs import Undo, UndoDone, check_portal, list_runs, prepare_undo, undo_run
from ..history.undo_wire import UndoStopped
from ..sheets.outputs import prepare_workbook
from ..state.paths import default_state_dir
from ..state.plan_journal import PlanJournal, list_plan_runs
from .common import (
    API_VERSION_OPTION,
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    SANDBOX_DB,
    SANDBOX_JOURNAL,
    SANDBOX_TOKEN,
    STATE_DIR_OPTION,
    _counts_text,
    _use_system_allocator,
    base_url_option,
    cli,
    environment_token,
)
from .mirror_history import mirror_counts, mirror_text
from .undo_report import describe_undo, say_checked, say_restored, undo_what


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
    """List past runs from the journals: id, when, object, input, counts, workbook. A plan's
    run is one entry, with a line per step."""
    state = state_dir or default_state_dir()
    plans = list_plan_runs(state)
    in_plan = {step["run_id"] for p in plans for step in p["steps"]}
    entries: list[tuple[str, dict[str, Any]]] = [("plan", p) for p in plans]
    entries += [("run", r) for r in list_runs(state) if r["run_id"] not in in_plan]
    if not entries:
        click.echo("No runs recorded yet.")
        return EXIT_OK
    entries.sort(key=lambda e: e[1]["started"], reverse=True)
    mirrored = mirror_counts([r for kind, r in entries[:limit] if kind == "run"])
    for kind, r in entries[:limit]:
        state_note = (
            f" [undone {r['undone']}]"
            if r.get("undone")
            else ("" if r.get("finished") else " [did not finish]")
        )
        portal = f"  portal {r['portal']}" if r.get("portal") else ""
        if kind == "plan":
            click.echo(
                f"{r['plan_run_id']}  {r['started']}  plan {r['plan_file']} "
                f"({len(r['steps'])} steps){state_note}{portal}"
            )
            for step in r["steps"]:
                click.echo(f"    {_step_line(step)}")
            click.echo(f"    workbook: {r.get('workbook') or '-'}")
            continue
        click.echo(
            f"{r['run_id']}  {r['started']}  {r['object_type']} ({r['mode']})  "
            f"{r['input_file']}{state_note}{portal}"
        )
        click.echo(f"    {_counts_text(r['counts'])}; workbook: {r.get('workbook') or '-'}")
        if r["run_id"] in mirrored:
            click.echo(f"    missing_rows: {mirror_text(mirrored[r['run_id']])}")
    if len(entries) > limit:
        click.echo(f"... and {len(entries) - limit} older runs (--limit to see more)")
    return EXIT_OK


def _step_line(step: dict[str, Any]) -> str:
    """`Orders (orders), run 20261202T...: 40 created` for a step of a plan run."""
    said = {
        "done": _counts_text(step["counts"]) if step["counts"] else "nothing to do",
        "running": "did not finish",
        "waiting": "not reached",
        "not run": f"not run: {_counts_text(step['counts'])}",
    }.get(step["state"], step["state"])
    return f"{step['name']} ({step['object_type']}), run {step['run_id']}: {said}"


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
    """Print one run's summary (RUN: its id, or the start of it; a plan run's id starts with
    `plan-`)."""
    from ..plans.history import find_plan_run, is_plan_run_id

    state = state_dir or default_state_dir()
    if is_plan_run_id(run_id):
        return _show_plan(state, find_plan_run(state, run_id), out)
    undo = prepare_undo(state, run_id)
    r = undo.run
    if out is not None:
        from ..state.rundata import rewrite_workbook

        _use_system_allocator()
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
        ("Records created", len(undo.created)),
        ("Records updated", len(undo.updated)),
        *_missing_fields(undo, mirror_counts([r]).get(r["run_id"])),
        ("Stopped early", r["stopped_by"] or "no"),
        ("Workbook", r["workbook"] or _plan_workbook(state, r["run_id"])),
        ("Journal", r["journal"]),
        ("Undone", _undone(r, undo)),
    ]
    for name, value in fields:
        click.echo(f"{name + ':':17}{value}")
    return EXIT_OK


def _undone(r: dict[str, Any], undo: Undo) -> str:
    """`show`'s Undone line: when, part way, nothing left to undo, or no."""
    if r.get("undone"):
        return f"{r['undone']} ({r['archived']} archived)"
    if r.get("archived"):
        return (
            f"part way: {r['archived']} archived, {len(undo.created)} left (run undo again to "
            "finish)"
        )
    if not undo.anything and (undo.returned or undo.restored_before):
        return "nothing left to undo (what its missing_rows: did came back in the feed since)"
    return "no"


def _missing_fields(undo: Undo, counts: dict[str, int] | None) -> list[tuple[str, str]]:
    """`show`'s line on what the run's `missing_rows:` did, when it acted, and what undo has
    left to bring back."""
    if counts is None:
        return []
    said = mirror_text(counts)
    if undo.missing:
        said += f"; {len(undo.missing)} left for undo to bring back"
    return [("Missing records", said)]


def _plan_workbook(state_dir: Path, run_id: str) -> str:
    """For a step of a plan: the plan run it belongs to, whose workbook holds its rows."""
    for p in list_plan_runs(state_dir):
        if any(step["run_id"] == run_id for step in p["steps"]):
            return f"{p.get('workbook') or '-'} (a step of plan run {p['plan_run_id']})"
    return "-"


def _show_plan(state_dir: Path, r: dict[str, Any], out: Path | None) -> int:
    if out is not None:
        from ..plans.history import rewrite_plan_workbook

        _use_system_allocator()
        keep = (
            Path(r["plan_file"]),
            *[Path(s["input_file"]) for s in r["steps"]],
            *[Path(s["mapping_file"]) for s in r["steps"]],
        )
        written = rewrite_plan_workbook(state_dir, r, prepare_workbook(out, keep=keep))
        click.echo(
            f"Wrote the results workbook of plan run {r['plan_run_id']} to {written}"
            + (
                ""
                if r.get("finished")
                else " (the plan did not finish: rows it sent have what the journals recorded "
                "of them, the rest are not_sent)"
            )
        )
        return EXIT_OK
    fields = [
        ("Plan run id", r["plan_run_id"]),
        ("Plan", r["plan_file"]),
        ("HubSpot", r["base_url"]),
        ("Portal", r.get("portal") or "unknown (journals kept per base URL)"),
        ("Started", r["started"]),
        ("Finished", r["finished"] or "did not finish"),
        ("Stopped early", r["stopped_by"] or "no"),
        ("Workbook", r["workbook"] or "-"),
        ("Retry file", r["retry_file"] or "-"),
        ("Plan journal", r["plan_journal"]),
        ("Undone", r["undone"] or "no"),
    ]
    for name, value in fields:
        click.echo(f"{name + ':':17}{value}")
    click.echo("Steps, in the order they ran (`hubspot-import show RUN` for one):")
    for n, step in enumerate(r["steps"], 1):
        click.echo(f"  {n}. {_step_line(step)}")
    return EXIT_OK


def _said_stop(command: Callable[..., int]) -> Callable[..., int]:
    """`command`, which says how far a signal let it get (UndoStopped) and exits 128 + the
    signal: what HubSpot answered before it stopped is recorded, the rest left for the next
    undo."""

    @functools.wraps(command)
    def said(*args: Any, **kwargs: Any) -> int:
        try:
            return command(*args, **kwargs)
        except UndoStopped as stopped:
            click.echo(f"hubspot-import: {stopped}", err=True)
            return EXIT_SIGNAL_BASE + stopped.signum

    return said


@cli.command()
@click.argument("run_id", metavar="RUN")
@STATE_DIR_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--force",
    is_flag=True,
    help="Archive also the records the run created that someone changed in HubSpot since "
    "(without it they are listed and left as they are).",
)
@click.option(
    "--base-url",
    envvar="HUBSPOT_BASE_URL",
    callback=base_url_option,
    help="HubSpot API base URL. Default: the one the run used.",
)
@click.option(
    "--portal-id",
    type=click.IntRange(1),
    help="The portal the token reaches, for a token HubSpot will not name one for (or a run "
    "whose journal does not name its portal): undo goes on only when it is the run's.",
)
@API_VERSION_OPTION
@_said_stop
def undo(
    run_id: str,
    state_dir: Path | None,
    yes: bool,
    force: bool,
    base_url: str | None,
    portal_id: int | None,
    api_version: str | None,
) -> int:
    """Archive the records RUN created and revert the links it changed on other records;
    the properties of records it updated are listed but not touched, and so are records it
    created that someone changed since (--force archives those too). A plan run
    (`plan-...`) is undone step by step, the last step first."""
    from ..plans.history import find_plan_run, is_plan_run_id

    state = state_dir or default_state_dir()
    if is_plan_run_id(run_id):
        plan_run = find_plan_run(state, run_id)
        return _undo_plan(
            state, plan_run, yes, base_url, api_version, force=force, portal_id=portal_id
        )
    undo = prepare_undo(state, run_id)
    r = undo.run
    if r.get("undone"):
        click.echo(
            f"Run {r['run_id']} was already undone at {r['undone']} "
            f"({r['archived']} records archived)."
        )
        return EXIT_OK
    click.echo(
        f"Run {r['run_id']} ({r['started']}, {r['input_file']}) created "
        f"{len(undo.created) + undo.archived_before} {r['object_type']} and updated "
        f"{len(undo.updated)}."
    )
    describe_undo(undo)
    if not undo.anything:
        click.echo("Nothing to archive.")
        return EXIT_OK
    links = f" and revert {len(undo.links)} links" if undo.links else ""
    what = undo_what(undo, "archive these {} records" + links)
    what = what[:1].upper() + what[1:]
    with contextlib.ExitStack() as stack:
        needs = undo_what(undo, "archive {} records")
        target = _undo_target(stack, r, base_url, yes=yes, what=what, needs=needs)
        if target is None:
            click.echo("Nothing was archived.")
            return EXIT_OK
        done = _undo_at(undo, target, api_version, state, local_token=SANDBOX_TOKEN, force=force,
                        portal_id=portal_id)  # fmt: skip
    if undo.created or undo.links or not undo.missing:
        click.echo(
            f"Archived {done.archived} {r['object_type']} created by run {r['run_id']}"
            + (f"; reverted {len(undo.links)} links." if undo.links else ".")
        )
    say_checked(done, r)
    say_restored(done)
    return EXIT_OK


def _undo_target(
    stack: contextlib.ExitStack[Any],
    run: dict[str, Any],
    base_url: str | None,
    *,
    yes: bool,
    what: str,
    needs: str,
) -> str | None:
    """Where to undo (the run's HubSpot, or the demo sandbox started again on its records),
    once confirmed; None when the user says no."""
    demo_db = Path(run["journal"]).parent / SANDBOX_DB
    demo = base_url is None and Path(run["journal"]).name.startswith(f"{SANDBOX_JOURNAL}-")
    target = base_url or ("the demo sandbox" if demo else run["base_url"])
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"not on a terminal, so no one can confirm: add --yes to {needs}")
        if not click.confirm(f"{what} in {target}?"):
            return None
    if demo:
        if not demo_db.exists():
            raise ConfigError(
                f"run {run['run_id']} imported into the demo sandbox, whose records "
                f"({demo_db}) are gone: there is nothing left to undo"
            )
        from ..sandbox import Sandbox, SandboxConfig

        return str(stack.enter_context(Sandbox(SandboxConfig(db=demo_db))).url)
    return target


def _undo_plan(
    state_dir: Path,
    plan_run: dict[str, Any],
    yes: bool,
    base_url: str | None,
    api_version: str | None,
    *,
    force: bool = False,
    portal_id: int | None = None,
) -> int:
    from ..plans.history import prepare_plan_undo

    pid = plan_run["plan_run_id"]
    if plan_run.get("undone"):
        click.echo(f"Plan run {pid} was already undone at {plan_run['undone']}.")
        return EXIT_OK
    steps = prepare_plan_undo(state_dir, plan_run)
    left = [p for p in steps if not p.run.get("undone") and p.anything]
    click.echo(f"Plan run {pid} ({plan_run['started']}, {plan_run['plan_file']}):")
    for p in steps:
        r = p.run
        done = f" [undone {r['undone']}]" if r.get("undone") else ""
        click.echo(
            f"  {r['object_type']}, run {r['run_id']}: created "
            f"{len(p.created) + p.archived_before}, updated {len(p.updated)}{done}"
        )
        if not r.get("undone"):
            describe_undo(p, indent="    ")
    if not left:
        click.echo("Nothing to archive.")
        _mark_undone(plan_run)
        return EXIT_OK
    records = sum(len(p.created) for p in left)
    links = sum(len(p.links) for p in left)
    what = f"Archive these {records} records" + (f" and revert {links} links" if links else "")
    what += f" (step by step, {left[0].run['object_type']} first)"
    with contextlib.ExitStack() as stack:
        needs = f"archive {records} records of plan run {pid}"
        target = _undo_target(stack, left[0].run, base_url, yes=yes, what=what, needs=needs)
        if target is None:
            click.echo("Nothing was archived.")
            return EXIT_OK
        kept = _undo_steps(left, target, api_version, state_dir, force=force, portal_id=portal_id)
    if kept:
        click.echo(
            f"Plan run {pid} is undone but for the {kept} records kept (see above): "
            f"`hubspot-import undo {pid} --force` archives them too."
        )
        return EXIT_OK
    _mark_undone(plan_run)
    click.echo(f"Plan run {pid} is undone.")
    return EXIT_OK


def _undo_steps(
    left: list[Undo],
    target: str,
    api_version: str | None,
    state_dir: Path,
    *,
    force: bool,
    portal_id: int | None,
) -> int:
    """Undo a plan's steps in turn, saying what each did; how many records they kept."""
    kept = 0
    for p in left:
        step = _undo_at(p, target, api_version, state_dir, local_token=SANDBOX_TOKEN,
                        force=force, portal_id=portal_id)  # fmt: skip
        reverted = f"; reverted {len(p.links)} links." if p.links else "."
        click.echo(
            f"Archived {step.archived} {p.run['object_type']} created by run "
            f"{p.run['run_id']}{reverted}"
        )
        say_checked(step, p.run, indent="  ")
        say_restored(step, indent="  ")
        kept += len(step.kept)
    return kept


def _mark_undone(plan_run: dict[str, Any]) -> None:
    journal = PlanJournal(Path(plan_run["plan_journal"]))
    try:
        journal.record_undone(plan_run["plan_run_id"])
    finally:
        journal.close()


def _undo_at(
    undo: Undo,
    target: str,
    api_version: str | None,
    state_dir: Path,
    *,
    local_token: str,
    force: bool = False,
    portal_id: int | None = None,
) -> UndoDone:
    r = undo.run
    local = urlsplit(target).hostname in ("127.0.0.1", "localhost", "::1")
    token = environment_token() or (local_token if local else "")
    client = HubSpotClient(
        token=token,
        base_url=target,
        api_version=api_version,
        # A sandbox on this machine answers at once or is gone: no minute of retries.
        retry=RetryPolicy(max_attempts=1) if local else None,
    )
    try:
        check_portal(undo, client, token, state_dir, portal_id)
        done = undo_run(undo, client, force=force)
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
    return done
