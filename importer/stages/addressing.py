"""Addressing: the decisions for a run's rows, each batch addressed so HubSpot takes it. A
key HubSpot does not hold unique never addresses a batch update or upsert: updates by it are
looked up by search and sent by record id, upserts by it are refused before anything is
sent."""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from dataclasses import replace

from ..api.client import HubSpotClient
from ..api.lookup import RECORD_ID, Finder
from ..core.errors import ConfigError, HubSpotError
from ..core.outcome import RowResult, RowStatus
from ..core.prepared import Prepared
from ..mapping.model import Mapping, SyncMode, WriteRule
from ..state.journal import KnownRow
from .decide import Decisions, Operation, decide
from .verify import Drift

__all__ = ["by_record_id", "decide_rows", "not_unique_upsert"]


def decide_rows(
    rows: Prepared,
    known: dict[str, KnownRow],
    mode: SyncMode,
    mapping: Mapping,
    drift: Drift | None,
    client: HubSpotClient | None = None,
) -> Decisions:
    """The decisions from the journal's rows, with what --verify found (if it ran). With a
    `client`, a key HubSpot does not hold unique never addresses a batch: upserts by it are
    refused (ConfigError), and updates by it are given their record's id (`by_record_id`)."""
    if drift is not None and mapping.held_back:
        drift = _allowed_edits(drift, mapping.held_back)
    decisions = decide(
        rows,
        known,
        mode,
        has_key=mapping.key_property is not None,
        notes=drift.notes() if drift else None,
        force=set(drift.edited) if drift else (),
        clear_empty=mapping.clearing,
    )
    return decisions if client is None else by_record_id(decisions, client, mapping)


def by_record_id(decisions: Decisions, client: HubSpotClient, mapping: Mapping) -> Decisions:
    """`decisions` with no batch addressed by a key HubSpot does not hold unique, which it
    refuses (or, were it to take one, could write to any record holding the key). Upserts by
    such a key are refused before anything is sent (ConfigError); each update by it is
    looked up by search, every page of it: one record holding the key is updated by its id,
    none fails the row, and two or more leave it `uncertain`, naming each, never written."""
    actions, prop = decisions.actions, mapping.key_property
    keyed = [
        p
        for p, op in zip(actions.positions, actions.operations, strict=True)
        if op is Operation.UPDATE and actions.record_id(p) is None
    ]
    upserts = Operation.UPSERT in actions.operations
    if prop is None or not (keyed or upserts):
        return decisions
    # True only from the portal's definitions (the mapping's check): then no need to ask.
    checked = mapping.key is not None and mapping.by_column[mapping.key].unique
    finder = Finder(client, mapping.object_type, prop, unique=True if checked else None)
    by_id = prop == RECORD_ID  # HubSpot refuses it as an idProperty: each key is the id
    if not by_id and finder.holds_unique():
        return decisions
    if upserts and (by_id or finder.holds_unique() is False):
        raise ConfigError(not_unique_upsert(mapping.object_type, prop))
    values = [v for p in keyed if (v := actions.prepared.key_values[p]) is not None]
    if finder.find(values) is None:
        raise HubSpotError(
            f"could not look {mapping.object_type} up by {prop} in HubSpot, which does not "
            "hold it unique (so no update is sent by it); nothing was sent"
        )
    found: dict[int, str] = {}
    settled: dict[int, RowResult] = {}
    for position in keyed:
        row, value = actions.prepared.rows[position], actions.prepared.key_values[position]
        held = finder.holding(value) if value is not None else []
        if len(held) == 1:
            found[position] = held[0]
        else:
            settled[position] = _unaddressed(row, mapping, value, held, searched=not by_id)
    return Decisions(
        actions=actions.addressed(found, settled),
        settled={**decisions.settled, **{r.row: r for r in settled.values()}},
    )


def not_unique_upsert(object_type: str, prop: str) -> str:
    """Why a run refuses to upsert by `prop`, and what to do instead."""
    return (
        f"upsert finds each record by the key's property, and HubSpot does not hold {prop} "
        f"of {object_type} unique, so it refuses a batch upsert by it (and two records may "
        f"hold one value): nothing was sent. Make {prop} unique in HubSpot (the property's "
        f"setting 'Require unique values for this property'), key the mapping on a property "
        f"HubSpot holds unique, or run with --mode update (each record is looked up by "
        f"search) or --mode create"
    )


def _unaddressed(
    row: int, mapping: Mapping, value: str | None, held: list[str], *, searched: bool
) -> RowResult:
    """The result of an update by a key HubSpot does not hold unique (`searched`; else the
    record id) that no record, or more than one, holds: nothing is sent."""
    prop = mapping.key_property
    if held:
        return RowResult(
            row=row,
            status=RowStatus.UNCERTAIN,
            message=f"not updated: {len(held)} {mapping.object_type} records have {prop} "
            f"{value!r} ({', '.join(held)}), and HubSpot does not hold {prop} unique, so "
            "which one is this row's cannot be told; merge or delete the duplicates in "
            f"HubSpot (or make {prop} unique there), then run again",
        )
    if value is None:
        return RowResult(
            row=row,
            status=RowStatus.FAILED,
            message=f"not updated: the row has no {prop} to find its record by",
        )
    how = (
        f" (searched, as HubSpot does not hold {prop} unique; a record made in the last "
        "seconds may not be searchable yet)"
        if searched
        else ""
    )
    return RowResult(
        row=row,
        status=RowStatus.FAILED,
        message=f"not updated: no {mapping.object_type} record has {prop} {value!r}{how}",
    )


def _allowed_edits(drift: Drift, rules: AnyMapping[str, WriteRule]) -> Drift:
    """What --verify found, without the edits in HubSpot that write rules leave to HubSpot:
    any value of a create_only property, and a value of an if_empty one (one emptied is
    filled again, as the rule allows)."""
    edited: dict[str, list[str]] = {}
    for key, props in drift.edited.items():
        held = drift.held.get(key, {})
        kept = [
            p
            for p in props
            if rules.get(p) is not WriteRule.CREATE_ONLY
            and not (rules.get(p) is WriteRule.IF_EMPTY and held.get(p) not in (None, ""))
        ]
        if kept:
            edited[key] = kept
    return replace(drift, edited=edited)
