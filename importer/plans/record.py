"""A plan run in its plan journal (see state.plan_journal): opened and locked before the
portal is read, written down once the plan's checks pass, each step's start and end, the
plan's end and its files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..api.account import identify_portal
from ..api.limiter import RateLimiter
from ..core.errors import HubSpotImportError
from ..sheets.inputs import shown_name
from ..sheets.outputs import prepare_folder
from ..sheets.plan_results import StepResult
from ..stages.options import RunOptions, client_for
from ..stages.run import new_run_id
from ..state.paths import default_state_dir, journal_path
from ..state.plan_journal import PLAN_RUN_PREFIX, PlanJournal, PlannedStep, plan_journal_path
from .file import PlanFile
from .unchanged import plan_digest

__all__ = ["PlanRecord"]


class PlanRecord:
    """The plan run in its plan journal: the journal opened and locked before anything is
    read from the portal; the run written down (`begin`) once the plan's checks and lookups
    passed, before its first write. A plan that stops before that is not a run of it."""

    def __init__(
        self,
        journal: PlanJournal,
        plan_run_id: str,
        run_ids: list[str],
        requests: int,
        steps: list[PlannedStep],
        portal: str | None,
        digest: str | None,
    ) -> None:
        self.journal = journal
        self.plan_run_id = plan_run_id
        self.run_ids = run_ids
        self.requests = requests
        """Requests sent to learn the portal (none once it is remembered)."""
        self._steps = steps
        self._portal = portal
        self._digest = digest
        """The plan file's SHA-256, taken as the plan run opened (run --skip-unchanged)."""
        self._begun = False
        self._finished = False

    @classmethod
    def open(
        cls, plan: PlanFile, options: RunOptions, started: dt.datetime, limiter: RateLimiter
    ) -> PlanRecord:
        """The plan's journal in the portal the token reaches, locked (LockHeld if another run
        of the plan holds it), and a run id for each step."""
        state_dir = prepare_folder(options.state_dir or default_state_dir(), "--state-dir")
        client = client_for(options, limiter)
        try:
            portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
            requests = client.requests_sent
        finally:
            client.close()
        base = options.journal_base or options.base_url
        portal_id = portal.portal_id if portal is not None else None
        journal = PlanJournal(plan_journal_path(state_dir, base, plan.path, portal_id), lock=True)
        run_ids = [new_run_id(started) for _ in plan.steps]
        steps = [
            PlannedStep(
                name=step.name,
                object_type=step.mapping.object_type,
                input_file=shown_name(step.input_file),
                sheet=step.sheet,
                mapping_file=str(step.mapping_file),
                journal=str(journal_path(state_dir, base, step.mapping.object_type, portal_id)),
                run_id=run_id,
            )
            for step, run_id in zip(plan.steps, run_ids, strict=True)
        ]
        return cls(
            journal,
            f"{PLAN_RUN_PREFIX}{new_run_id(started)}",
            run_ids,
            requests,
            steps,
            portal.describe() if portal is not None else None,
            plan_digest(plan.path),
        )

    def begin(self, plan: PlanFile, options: RunOptions) -> None:
        """Write the plan run and every step's run id down, before the first write."""
        self.journal.start(
            self.plan_run_id,
            plan_file=plan.path,
            base_url=options.base_url,
            portal=self._portal,
            steps=self._steps,
            plan_digest=self._digest,
        )
        self._begun = True

    def step_started(self, position: int) -> None:
        self.journal.step_started(self.plan_run_id, position)

    def step_ended(self, position: int, step: StepResult, *, ran: bool) -> None:
        self.journal.step_ended(
            self.plan_run_id,
            position,
            ran=ran,
            counts=step.summary.counts,
            requests=step.summary.requests,
            note=step.summary.stopped_by,
        )

    def finish(self, stopped: HubSpotImportError | None) -> None:
        self.journal.finish(self.plan_run_id, stopped_by=str(stopped) if stopped else None)
        self._finished = True

    def files(self, workbook: Path, retry_files: tuple[Path, ...]) -> None:
        self.journal.record_files(
            self.plan_run_id,
            workbook=str(workbook),
            retry_file=", ".join(str(p) for p in retry_files) or None,
        )

    def close(self, *, stopped_by: str | None = None) -> None:
        """Release the plan's lock; a plan that raised after it began is recorded as stopped
        by it."""
        try:
            if self._begun and not self._finished:
                self.journal.finish(self.plan_run_id, stopped_by=stopped_by)
        finally:
            self.journal.close()
