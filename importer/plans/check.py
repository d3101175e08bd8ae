"""What a plan does before its first write: every step's sheet read and its columns checked,
every mapping checked against the portal (each object type's properties read once), and the
keys no step's rows hold looked up. A mistake or a failed lookup stops the plan with nothing
written."""

from __future__ import annotations

import logging
from typing import cast

from ..api.account import identify_portal
from ..api.limiter import RateLimiter
from ..core.errors import ConfigError, EmptySheetError
from ..mapping.model import Mapping, Reference
from ..mapping.portal import PortalSchema, check_mapping, resolve_offline
from ..sheets.load import Table, load_table
from ..stages.options import Prefetched, RunOptions
from ..stages.resolve import Resolver, cell_keys, stored_keys
from ..stages.run import client_for
from ..state.paths import default_state_dir, journal_path
from .file import PlanFile

__all__ = ["check_first", "look_up_first"]

log = logging.getLogger(__name__)


def check_first(
    plan: PlanFile, options: RunOptions, limiter: RateLimiter
) -> tuple[list[Mapping], dict[int, Table], int]:
    """Every step's sheet read and its columns checked, and every mapping checked against the
    portal (each object type's properties read once), before the plan writes anything: a
    mistake in its last step stops it with nothing written. Returns the checked mappings, the
    sheets by step, and the requests sent."""
    if options.header_row is not None:
        raise ConfigError(
            "--header-row names one sheet's header row; a plan reads several sheets: give "
            "header_row: in the mapping of each step whose header is not found by itself"
        )
    tables: dict[int, Table] = {}
    for n, step in enumerate(plan.steps):
        try:
            table = load_table(
                step.input_file,
                sheet=step.sheet,
                encoding=options.encoding,
                header_row=step.mapping.header_row,
            )
        except EmptySheetError as exc:
            # No orders today: in a plan, a sheet with its header alone is a step with
            # nothing to do, not a reason to stop the others.
            table = cast(Table, exc.table)
            log.info("step %s: %s has a header and no rows", step.name, table.where())
        step.mapping.check_mode(options.mode or step.mapping.mode)
        step.mapping.check_columns(table.columns, table.where(), table.duplicate_headers)
        tables[n] = table
    if not options.portal_check:
        return [resolve_offline(step.mapping) for step in plan.steps], tables, 0
    schemas: dict[str, PortalSchema] = {}
    client = client_for(options, limiter)
    try:
        checked = [
            check_mapping(
                client,
                step.mapping,
                mode=options.mode or step.mapping.mode,
                source=str(step.mapping_file),
                schemas=schemas,
            )
            for step in plan.steps
        ]
        requests = client.requests_sent
    finally:
        client.close()
    return checked, tables, requests


def look_up_first(
    plan: PlanFile, options: RunOptions, tables: dict[int, Table], limiter: RateLimiter
) -> tuple[Prefetched, int]:
    """(object type, property) -> stored key -> ids of every key a step refers to that no
    step's rows hold: records of object types no step imports (customers by email), and
    records of an imported type that its sheet does not list (a SKU imported last month). Each
    distinct key once; and the requests sent for them."""
    wanted = _wanted(plan, tables)
    if not wanted:
        return {}, 0
    state_dir = options.state_dir or default_state_dir()
    client = client_for(options, limiter)
    try:
        portal = identify_portal(client, options.token, state_dir, portal_id=options.portal_id)
        before = client.requests_sent
        base = options.journal_base or options.base_url
        resolver = Resolver(
            client,
            journals={
                to: journal_path(state_dir, base, to, portal.portal_id if portal else None)
                for to, _ in wanted
            },
        )
        found: Prefetched = {}
        for (to, by), keys in wanted.items():
            answer = resolver.find(Reference(to=to, by=by), keys)
            found[(to, by)] = {k: ids for k, ids in answer.items() if ids is not None}
        log.info(
            "looked up %d keys that no step's rows hold, before anything is written",
            sum(len(k) for k in wanted.values()),
        )
        return found, client.requests_sent - before
    finally:
        client.close()


def _wanted(plan: PlanFile, tables: dict[int, Table]) -> dict[tuple[str, str], set[str]]:
    """(object type, property) -> the keys steps refer to that no step's rows hold."""
    importers: dict[str, list[int]] = {}
    for n, step in enumerate(plan.steps):
        importers.setdefault(step.mapping.object_type, []).append(n)
    wanted: dict[tuple[str, str], set[str]] = {}
    for n, step in enumerate(plan.steps):
        for (to, by), keys in cell_keys(tables[n], step.mapping).items():
            held = _keys_in_steps(plan, tables, importers.get(to, []), to, by)
            if held is not None:
                wanted.setdefault((to, by), set()).update(keys - held)
    return {target: keys for target, keys in wanted.items() if keys}


def _keys_in_steps(
    plan: PlanFile, tables: dict[int, Table], steps: list[int], to: str, by: str
) -> set[str] | None:
    """The `by` keys the rows of `steps` (those importing `to`) hold, as HubSpot stores them;
    None when one of them is not keyed by `by`: its rows may get `by` values that only exist
    once it has run, so keys of `to` by `by` cannot be looked up before it."""
    held: set[str] = set()
    for n in steps:
        mapping = plan.steps[n].mapping
        if mapping.key is None or mapping.key_property != by:
            return None
        held.update(stored_keys(tables[n].frame[mapping.key], to, by))
    return held
