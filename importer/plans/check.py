"""What a plan does before its first write: every step's sheet read and its columns checked,
every mapping checked against the portal (each object type's properties read once), no key in
two steps that write one object type, and the keys no step's rows hold looked up. A mistake or
a failed lookup stops the plan with nothing written."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import cast

from ..api.account import identify_portal
from ..api.limiter import RateLimiter
from ..api.object_types import resolve_object_type
from ..core.errors import ConfigError, EmptySheetError, InputFileError
from ..core.hubspot import OBJECT_TYPE_IDS, canonical_object_type, key_identity, stored_number
from ..mapping.model import Mapping, PropertyType, Reference
from ..mapping.portal import PortalSchema, check_mapping, resolve_offline
from ..sheets.excel_limits import EXCEL_MAX_ROWS
from ..sheets.fingerprint import Fingerprint, take_fingerprint
from ..sheets.load import Table, load_table
from ..stages.options import Prefetched, RunOptions, client_for
from ..stages.resolve import NumberProperties, Resolver, cell_keys, stored_keys
from ..state.paths import default_state_dir, journal_path, journal_type
from .file import PlanFile, Step

__all__ = ["changed_since_check", "check_first", "look_up_first", "type_identities"]

log = logging.getLogger(__name__)


Fingerprints = dict[int, Fingerprint | None]
"""Each step's input as the plan checked it, by step."""


def type_identities(
    plan: PlanFile, options: RunOptions, limiter: RateLimiter
) -> tuple[dict[str, str], int]:
    """Each object type name the plan uses (its steps' and their references' `to:`) -> one
    name for its type: HubSpot's own types by their name (`products` for `0-7`), a custom
    object by its type id, read from its schema when the portal is checked, else as the state
    folder remembers it, else as written. And the requests sent."""
    steps = [s.mapping for s in plan.steps]
    names = {m.object_type for m in steps} | {r.to for m in steps for r in m.references}
    kinds = {n: canonical_object_type(n) for n in names}
    custom = sorted(n for n in names if kinds[n] not in OBJECT_TYPE_IDS)
    if not custom:
        return kinds, 0
    if not options.portal_check:
        state_dir = options.state_dir or default_state_dir()
        base = options.journal_base or options.base_url
        kinds.update({n: journal_type(state_dir, base, n, options.portal_id) for n in custom})
        return kinds, 0
    client = client_for(options, limiter)
    try:
        for name in custom:
            # A type HubSpot has not: the portal check says what is wrong with it.
            with contextlib.suppress(ConfigError):
                kinds[name] = resolve_object_type(client, name).journal_name
        return kinds, client.requests_sent
    finally:
        client.close()


def plan_numbers(mappings: list[Mapping], kinds: dict[str, str]) -> NumberProperties:
    """Object type name -> the number properties the plan's steps key its records by (each
    under every name the plan gives the type), as their checked mappings type them."""
    numbers: dict[str, set[str]] = {}
    for mapping in mappings:
        key = mapping.by_column.get(mapping.key) if mapping.key is not None else None
        if key is None or key.type is not PropertyType.NUMBER:
            continue
        kind = kinds.get(mapping.object_type, mapping.object_type)
        for name in [n for n, k in kinds.items() if k == kind] or [mapping.object_type]:
            numbers.setdefault(name, set()).add(key.property)
    return {name: frozenset(props) for name, props in numbers.items()}


def check_first(
    plan: PlanFile, options: RunOptions, limiter: RateLimiter, kinds: dict[str, str]
) -> tuple[list[Mapping], dict[int, Table], Fingerprints, int]:
    """Every step's sheet read and its columns checked, and every mapping checked against the
    portal (each object type's properties read once), before the plan writes anything: a
    mistake in its last step stops it with nothing written. Returns the checked mappings, the
    sheets by step, each step's input file as read (its fingerprint, taken before reading:
    `changed_since_check`), and the requests sent. `kinds`: each object type name -> one name
    for its type (`type_identities`)."""
    if options.header_row is not None:
        raise ConfigError(
            "--header-row names one sheet's header row; a plan reads several sheets: give "
            "header_row: in the mapping of each step whose header is not found by itself"
        )
    tables: dict[int, Table] = {}
    fingerprints: Fingerprints = {}
    for n, step in enumerate(plan.steps):
        fingerprints[n] = _fingerprint(step.input_file)
        tables[n] = _checked_sheet(step, options)
    if not options.portal_check:
        checked = [resolve_offline(step.mapping) for step in plan.steps]
        _refuse_shared_keys(plan, tables, kinds, checked)
        return checked, tables, fingerprints, 0
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
    _refuse_shared_keys(plan, tables, kinds, checked)
    return checked, tables, fingerprints, requests


def _refuse_shared_keys(
    plan: PlanFile, tables: dict[int, Table], kinds: dict[str, str], checked: list[Mapping]
) -> None:
    """ConfigError when two steps write the same object type (`kinds`: each step's type as
    one name) keyed by the same property and a key is in both sheets: the later step would
    write the earlier one's record again. Keys compare as the journal compares them: a number
    property's (as the `checked` mappings type it) as the number HubSpot stores."""
    first: dict[tuple[str, str, str], tuple[int, int]] = {}
    for n, step in enumerate(plan.steps):
        mapping = step.mapping
        if mapping.key is None or mapping.key not in tables[n].frame:
            continue
        prop, kind = mapping.key_property or "", kinds[mapping.object_type]
        number = checked[n].by_column[mapping.key].type is PropertyType.NUMBER
        shared: list[tuple[int, int, int, str]] = []
        seen_here: set[str] = set()
        column = tables[n].frame[mapping.key]
        for row, cell in zip(column.index.tolist(), column.astype(str).str.strip(), strict=True):
            value = key_identity(kind, prop, stored_number(cell) if number else cell)
            if not value or value in seen_here:
                continue
            seen_here.add(value)
            earlier = first.setdefault((kind, prop, value), (n, row))
            if earlier[0] != n:
                shared.append((*earlier, row, cell))
        if shared:
            raise ConfigError(_shared_keys_message(plan, tables, n, shared))


def _shared_keys_message(
    plan: PlanFile, tables: dict[int, Table], n: int, shared: list[tuple[int, int, int, str]]
) -> str:
    """What to tell of the keys step `n` shares with earlier steps: (earlier step, its row,
    this step's row, the key) each."""
    step = plan.steps[n]
    other, other_row, row, value = shared[0]
    more = f" (and {len(shared) - 1} more keys)" if len(shared) > 1 else ""
    return (
        f"steps {plan.steps[other].name} and {step.name} both write "
        f"{step.mapping.object_type} records keyed by {step.mapping.key_property}: "
        f"{value!r} is in {tables[other].where()} row {other_row} and in "
        f"{tables[n].where()} row {row}{more}. One record would be written twice, the later "
        "step over the earlier one. Import each record in one step (merge the rows, or "
        "remove them from one sheet); nothing was sent."
    )


def _checked_sheet(step: Step, options: RunOptions) -> Table:
    """A step's sheet, read, its columns checked against its mapping, and no longer than a
    results sheet holds (said before anything is sent, not after)."""
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
    if len(table.frame) > EXCEL_MAX_ROWS - 1:
        raise InputFileError(
            f"{table.where()}: {len(table.frame):,} rows, more than one sheet of the plan's "
            f"results workbook holds ({EXCEL_MAX_ROWS - 1:,}): import it on its own (`run "
            "--mapping`), whose Results continue on further sheets; nothing was sent"
        )
    return table


def _fingerprint(path: Path) -> Fingerprint | None:
    """The input file's fingerprint, taken before it is read (None if it cannot be read: the
    reading says why)."""
    try:
        return take_fingerprint(path)
    except OSError:
        return None


def changed_since_check(step: Step, checked: Fingerprint | None) -> str | None:
    """What to say when the step's input is no longer the file the plan checked (another
    version was written since), else None."""
    if checked is None:
        return None
    now = _fingerprint(step.input_file)
    if now is not None and now.same_content(checked):
        return None
    seen = f"{now.size:,} bytes, SHA-256 {now.sha256[:12]}…" if now else "it cannot be read"
    return (
        f"{step.input_file} changed after the plan checked it ({checked.size:,} bytes, "
        f"SHA-256 {checked.sha256[:12]}… then; {seen} now): step {step.name} was not run, so "
        "that no row is sent from a version of the file that was not checked. Run the plan "
        "again to import the file as it is now."
    )


def look_up_first(
    plan: PlanFile,
    options: RunOptions,
    tables: dict[int, Table],
    limiter: RateLimiter,
    numbers: NumberProperties,
    kinds: dict[str, str],
) -> tuple[Prefetched, int]:
    """(object type, property) -> stored key -> ids of every key a step refers to that no
    step's rows hold: records of object types no step imports (customers by email), and
    records of an imported type that its sheet does not list (a SKU imported last month). Each
    distinct key once; and the requests sent for them. `numbers` and `kinds`: as
    `plan_numbers` and `type_identities` give them."""
    wanted = _wanted(plan, tables, numbers, kinds)
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
            settle=options.search_settle,
            numbers=dict(numbers),
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


def _wanted(
    plan: PlanFile, tables: dict[int, Table], numbers: NumberProperties, kinds: dict[str, str]
) -> dict[tuple[str, str], set[str]]:
    """(object type, property) -> the keys steps refer to that no step's rows hold (object
    types compared as `kinds` has them, number keys as numbers)."""
    importers: dict[str, list[int]] = {}
    for n, step in enumerate(plan.steps):
        importers.setdefault(kinds.get(step.mapping.object_type, ""), []).append(n)
    wanted: dict[tuple[str, str], set[str]] = {}
    for n, step in enumerate(plan.steps):
        for (to, by), keys in cell_keys(tables[n], step.mapping, numbers).items():
            steps = importers.get(kinds.get(to, to), [])
            held = _keys_in_steps(plan, tables, steps, to, by, numbers)
            if held is not None:
                wanted.setdefault((to, by), set()).update(keys - held)
    return {target: keys for target, keys in wanted.items() if keys}


def _keys_in_steps(
    plan: PlanFile,
    tables: dict[int, Table],
    steps: list[int],
    to: str,
    by: str,
    numbers: NumberProperties,
) -> set[str] | None:
    """The `by` keys the rows of `steps` (those importing `to`) hold, as HubSpot stores them;
    None when one of them is not keyed by `by`: its rows may get `by` values that only exist
    once it has run, so keys of `to` by `by` cannot be looked up before it."""
    held: set[str] = set()
    for n in steps:
        mapping = plan.steps[n].mapping
        if mapping.key is None or mapping.key_property != by:
            return None
        held.update(stored_keys(tables[n].frame[mapping.key], to, by, numbers))
    return held
