"""`run --plan PLAN --skip-unchanged`: whether the last run of this plan imported every step's
feed as it is now and left nothing to do, found before any sheet is loaded and without a
request to HubSpot once the portal is remembered.

The last run of the plan is the newest run in its plan journal (see state.plan_journal). The
plan is unchanged since it when that run finished and was neither stopped early nor undone;
it ran the steps the plan file names now (as many, each with the same mapping file, input
and sheet, and each step run); the plan file's bytes are the same (its SHA-256, kept with each
plan run); and each step's own run, in the journal of its object type, passes the rule a run
of one sheet is skipped by (stages/unchanged.py) with the step's input, mapping and sheet: the
same bytes read the same way, with nothing left to send again, and no other run of that
journal after it but the plan's own steps.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.account import PortalInfo
from ..api.client import HubSpotClient
from ..stages.options import RunOptions
from ..stages.unchanged import (
    Feed,
    Journals,
    feed_of,
    journals_of,
    same_file,
    same_input,
    why_not_unchanged,
)
from ..state.journal import Journal
from ..state.plan_journal import STEP_DONE, PlanJournal, plan_journal_path
from .file import PlanFile, Step

__all__ = ["PlanUnchanged", "plan_digest", "plan_unchanged_since"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PlanUnchanged:
    """The last run of the plan, which imported every step's feed as it is now and left
    nothing to do."""

    run: dict[str, Any]
    """Its row of the plan journal, with its `steps`."""
    step_runs: tuple[dict[str, Any], ...]
    """Each step's run, as the journal of its object type records it, in the plan's order."""
    feeds: tuple[Feed, ...]
    """Each step's feed now, in the plan's order."""
    journal: Path
    """The plan journal."""
    portal: PortalInfo | None


def plan_digest(path: Path) -> str | None:
    """The plan file's SHA-256, in hex; None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def plan_unchanged_since(
    plan: PlanFile, options: RunOptions, client: HubSpotClient
) -> PlanUnchanged | None:
    """The last run of the plan in this portal, when it imported every step's feed as it is
    now and left nothing to do (see the module); else None, the reason logged."""
    feeds = tuple(feed_of(s.input_file, s.mapping_file, s.sheet, options) for s in plan.steps)
    digest = plan_digest(plan.path)
    journals = journals_of(options, client)
    path = plan_journal_path(journals.state_dir, journals.base, plan.path, journals.portal_id)
    if not path.is_file():
        log.info("--skip-unchanged: no run of the plan is recorded in %s yet: the plan runs", path)
        return None
    journal = PlanJournal(path)
    try:
        runs = journal.runs()
    finally:
        journal.close()
    last = runs[-1] if runs else None
    why = _why_not_plan(last, plan, digest)
    step_runs: list[dict[str, Any]] = []
    if why is None and last is not None:
        why = _why_not_steps(last, plan, feeds, journals, step_runs)
    if why is not None or last is None:
        log.info("--skip-unchanged: %s: the plan runs", why)
        return None
    return PlanUnchanged(
        run=last, step_runs=tuple(step_runs), feeds=feeds, journal=path, portal=journals.portal
    )


def _why_not_plan(last: dict[str, Any] | None, plan: PlanFile, digest: str | None) -> str | None:
    """Why the last run of the plan, as its plan journal records it, is not a run of this plan
    file that ended with every step run; None when it is."""
    if last is None:
        return "the plan journal records no run yet"
    said = f"the last run of the plan, {last['plan_run_id']},"
    if not last.get("finished"):
        return f"{said} did not finish"
    if last.get("stopped_by"):
        return f"{said} stopped early ({last['stopped_by']})"
    if last.get("undone"):
        return f"{said} was undone"
    recorded = last["steps"]
    if len(recorded) != len(plan.steps):
        return f"{said} ran {len(recorded)} steps; the plan has {len(plan.steps)} now"
    for position, (step, was) in enumerate(zip(plan.steps, recorded, strict=True), start=1):
        why = _why_not_step(position, step, was)
        if why is not None:
            return f"{said} {why}"
    if last.get("plan_digest") is None:
        return f"{said} kept no digest of the plan file (an older version made it)"
    if digest != last["plan_digest"]:
        return f"the plan file changed since the last run of the plan, {last['plan_run_id']}"
    return None


def _why_not_step(position: int, step: Step, was: dict[str, Any]) -> str | None:
    """Why the step a plan run recorded at `position` (`was`) is not `step` of the plan now,
    or was not run; None when it is the same step and ran."""
    sheet = f", sheet {was['sheet']}" if was["sheet"] else ""
    if (
        not same_input(was["input_file"], step.input_file)
        or not same_file(was["mapping_file"], step.mapping_file)
        or was["sheet"] != step.sheet
    ):
        return f"ran its step {position} on {was['input_file']}{sheet} with {was['mapping_file']}"
    if was["state"] != STEP_DONE:
        note = f" ({was['note']})" if was.get("note") else ""
        return f"did not run its step {position}, {was['name']}{note}"
    return None


def _why_not_steps(
    last: dict[str, Any],
    plan: PlanFile,
    feeds: tuple[Feed, ...],
    journals: Journals,
    step_runs: list[dict[str, Any]],
) -> str | None:
    """Why a step's own run did not import its feed as it is now, or left something to do
    again (said for the first such step); None when none did. Each step's run is added to
    `step_runs`."""
    theirs = {was["run_id"] for was in last["steps"]}
    for step, was, feed in zip(plan.steps, last["steps"], feeds, strict=True):
        run, why = _step_run(journals.journal(step.mapping.object_type), was["run_id"], theirs,
                             step, feed)  # fmt: skip
        if why is not None:
            return f"step {step.name} ({step.mapping.object_type}): {why}"
        assert run is not None, "a step without a reason not to skip has its run"
        step_runs.append(run)
    return None


def _step_run(
    path: Path, run_id: str, theirs: set[str], step: Step, feed: Feed
) -> tuple[dict[str, Any] | None, str | None]:
    """The step's run (`run_id`) in the journal at `path`, and why it did not import `feed`
    or left something to do again, or why another run of that journal after it (none of
    `theirs`, the plan run's own steps) may have changed what it wrote; (its run, None) when
    none of this holds."""
    if not path.is_file():
        return None, f"no run is recorded in {path}"
    journal = Journal(path)
    try:
        runs = journal.runs()
        at = next((n for n, r in enumerate(runs) if r["run_id"] == run_id), None)
        if at is None:
            return None, f"its run, {run_id}, is not in {path}"
        later = [r for r in runs[at + 1 :] if r["run_id"] not in theirs]
        if later:
            return None, (
                f"a later run, {later[-1]['run_id']}, read {later[-1]['input_file']} into "
                f"{path.name} after the step's run, {run_id}"
            )
        run = runs[at]
        return run, why_not_unchanged(journal, run, step.input_file, step.mapping_file, feed)
    finally:
        journal.close()
