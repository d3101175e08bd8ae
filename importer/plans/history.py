"""Plan runs from their plan journals: found by id, their workbook written again from the
journals of their steps, and undone step by step (the last step first)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import ConfigError
from ..core.outcome import RowStatus, results_frame
from ..history.runs import Undo, find_run, one_run, prepare_undo
from ..sheets.plan_results import StepResult, write_plan_results
from ..sheets.results import RunSummary
from ..sheets.table import Table
from ..state.plan_journal import PLAN_RUN_PREFIX, list_plan_runs
from ..state.rundata import kept_run

__all__ = ["find_plan_run", "is_plan_run_id", "prepare_plan_undo", "rewrite_plan_workbook"]


def is_plan_run_id(run_id: str) -> bool:
    """A plan run's id, or the start of one (`plan-2026...`)."""
    return run_id.startswith(PLAN_RUN_PREFIX) or PLAN_RUN_PREFIX.startswith(run_id)


def find_plan_run(state_dir: Path, run_id: str) -> dict[str, Any]:
    """One plan run by id (or a unique start of it), with its steps."""
    where = f"the plan journals of {state_dir}"
    return one_run(list_plan_runs(state_dir), "plan_run_id", run_id, "plan run", where)


def _step_run(state_dir: Path, step: dict[str, Any]) -> dict[str, Any] | None:
    """The step's run in the journal of its object type; None when it never started."""
    try:
        return find_run(state_dir, step["run_id"])
    except ConfigError:
        return None


def rewrite_plan_workbook(state_dir: Path, plan_run: dict[str, Any], out: Path) -> Path:
    """Write the plan run's workbook to `out` from its plan journal and its steps' journals.

    A step that ran (or was running when the plan was killed) has its rows, each with what
    its journal recorded; a step that did not run, or had not started, is a line of the
    Summary saying why (nothing of it was sent: its rows are in its input)."""
    steps = []
    for step in plan_run["steps"]:
        run = _step_run(state_dir, step) if step["state"] in ("done", "running") else None
        if run is not None:
            kept = kept_run(run)
            table = Table(
                frame=kept.source,
                source=Path(step["input_file"]),
                sheet=kept.summary.sheet,
                letters={},
            )
            steps.append(
                StepResult(
                    name=step["name"],
                    summary=kept.summary,
                    outcome=kept.outcome,
                    table=table,
                    issues=tuple(kept.issues),
                )
            )
        else:
            steps.append(_unsent(plan_run, step))
    finished = plan_run.get("finished")
    stopped = plan_run.get("stopped_by")
    if not finished:
        stopped = "the plan ended before its results were written (rebuilt from its journals)"
    return write_plan_results(
        out,
        plan_file=Path(plan_run["plan_file"]),
        started=dt.datetime.fromisoformat(plan_run["started"]),
        finished=dt.datetime.fromisoformat(finished) if finished else None,
        steps=steps,
        stopped_by=stopped,
        plan_run_id=plan_run["plan_run_id"],
    )


def _unsent(plan_run: dict[str, Any], step: dict[str, Any]) -> StepResult:
    """A step of which nothing was sent: its Summary line, with no rows."""
    if step["state"] == "not run":
        why = step.get("note") or "not sent: the plan stopped at an earlier step"
    else:
        why = "not sent: the plan ended before this step started"
    counts = {s.value: 0 for s in RowStatus}
    counts.update({k: int(v) for k, v in (step.get("counts") or {}).items()})
    empty = pd.DataFrame(index=pd.Index([], dtype="int64"))
    outcome = results_frame({}, empty.index, otherwise=RowStatus.NOT_SENT)
    summary = RunSummary(
        run_id=step["run_id"],
        object_type=step["object_type"],
        input_file=Path(step["input_file"]),
        sheet=step.get("sheet"),
        mapping_file=step["mapping_file"],
        base_url=plan_run["base_url"],
        started=dt.datetime.fromisoformat(plan_run["started"]),
        counts=counts,
        rows=sum(counts.values()),
        stopped_by=f"{why} (its rows are in {Path(step['input_file']).name})",
    )
    table = Table(frame=empty, source=Path(step["input_file"]), sheet=step.get("sheet"), letters={})
    return StepResult(name=step["name"], summary=summary, outcome=outcome, table=table, issues=())


def prepare_plan_undo(state_dir: Path, plan_run: dict[str, Any]) -> list[Undo]:
    """What undoing each step would do, the last step first (line items before the orders
    they point at); steps that never started are left out."""
    undos = []
    for step in reversed(plan_run["steps"]):
        if _step_run(state_dir, step) is not None:
            undos.append(prepare_undo(state_dir, step["run_id"]))
    return undos
