"""The portal's pipelines as HubSpot's pipelines API gives them, the pipeline and stage
properties they define, and the check HubSpot makes that a record's stage is one of its
pipeline's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.hubspot import pipeline_properties
from .portal import PropertyDef
from .replies import Reply, error

__all__ = [
    "DEFAULT_PIPELINES",
    "Pipeline",
    "Stage",
    "get_pipeline",
    "list_pipelines",
    "pipeline_defs",
    "stage_problem",
]

_EPOCH = "1970-01-01T00:00:00Z"
"""When HubSpot says its default pipelines and their stages were created (createdAt 0)."""
_STAGE_LABELS = {"deals": "Deal stage", "tickets": "Ticket status", "orders": "Order stage"}


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage of a pipeline: its id is what a record's stage property holds."""

    id: str
    label: str
    metadata: dict[str, str] = field(default_factory=dict)
    """HubSpot's metadata, every value a string: a deal stage's probability and isClosed,
    a ticket stage's ticketState."""
    archived: bool = False


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """One pipeline of an object type, with its stages."""

    id: str
    label: str
    display_order: int
    stages: tuple[Stage, ...]
    """In their display order."""
    archived: bool = False
    created_at: str = _EPOCH
    updated_at: str = _EPOCH

    def as_json(self) -> dict[str, Any]:
        """The pipeline as HubSpot's pipelines API answers it, its stages in their order."""
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "stages": [
                {
                    "id": s.id,
                    "label": s.label,
                    "displayOrder": n,
                    "metadata": dict(s.metadata),
                    "archived": s.archived,
                    "createdAt": self.created_at,
                    "updatedAt": self.updated_at,
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                }
                for n, s in enumerate(self.stages)
            ],
        }

    def has_stage(self, stage_id: str) -> bool:
        """Whether one of its stages has this id."""
        return any(s.id == stage_id for s in self.stages)


def _deal_stage(stage_id: str, label: str, probability: str, *, closed: bool = False) -> Stage:
    """A deal stage with HubSpot's metadata: its probability and whether it closes the deal."""
    return Stage(
        id=stage_id,
        label=label,
        metadata={"isClosed": "true" if closed else "false", "probability": probability},
    )


def _ticket_stage(stage_id: str, label: str, state: str = "OPEN") -> Stage:
    """A ticket stage with HubSpot's metadata: whether a ticket in it is open or closed."""
    return Stage(id=stage_id, label=label, metadata={"ticketState": state})


_DEAL_PIPELINES = (
    Pipeline(
        id="default",
        label="Sales Pipeline",
        display_order=0,
        stages=(
            _deal_stage("appointmentscheduled", "Appointment scheduled", "0.2"),
            _deal_stage("qualifiedtobuy", "Qualified to buy", "0.4"),
            _deal_stage("presentationscheduled", "Presentation scheduled", "0.6"),
            _deal_stage("decisionmakerboughtin", "Decision maker bought-in", "0.8"),
            _deal_stage("contractsent", "Contract sent", "0.9"),
            _deal_stage("closedwon", "Closed won", "1.0", closed=True),
            _deal_stage("closedlost", "Closed lost", "0.0", closed=True),
        ),
    ),
    # A pipeline the portal added: numbered ids, and a "Closed won" of its own, so a stage's
    # label alone does not say which stage it is.
    Pipeline(
        id="75123456",
        label="Renewals",
        display_order=1,
        created_at="2024-02-01T10:00:00Z",
        updated_at="2025-01-10T16:20:00Z",
        stages=(
            _deal_stage("75123457", "Renewal due", "0.3"),
            _deal_stage("75123458", "Quote sent", "0.6"),
            _deal_stage("75123459", "Closed won", "1.0", closed=True),
            _deal_stage("75123460", "Closed lost", "0.0", closed=True),
        ),
    ),
)
# UNVERIFIED: the ids of HubSpot's order pipeline and stages are ids of HubSpot's form (UUIDs),
# not HubSpot's own, which were not found.
_ORDER_PIPELINE = Pipeline(
    id="b0c8b19c-6666-58c4-8732-4eb9436128e1",
    label="Order pipeline",
    display_order=0,
    stages=tuple(
        Stage(id=stage_id, label=label)
        for stage_id, label in (
            ("7699d9d7-f2e3-5944-b0dc-20083a42e996", "Checkout abandoned"),
            ("e52fb82e-aa9c-5ea8-9b7f-c830032f87ee", "Checkout pending"),
            ("4f5c7993-9e72-5073-94b7-6f4260b29b88", "Checkout completed"),
            ("14c69732-39ab-5f3a-9d0c-8144f866da8b", "Processed"),
            ("47b0c6da-95eb-5502-b808-cb7de7a0678b", "Shipped"),
            ("739e498e-01e0-5170-8971-3ee30dbf56d8", "Cancelled"),
            ("ebf44fe9-ba96-50ce-8d75-8365d1b9268c", "Refunded"),
        )
    ),
)
_TICKET_PIPELINE = Pipeline(
    id="0",
    label="Support Pipeline",
    display_order=0,
    stages=(
        _ticket_stage("1", "New"),
        _ticket_stage("2", "Waiting on contact"),
        _ticket_stage("3", "Waiting on us"),
        _ticket_stage("4", "Closed", "CLOSED"),
    ),
)
DEFAULT_PIPELINES: dict[str, tuple[Pipeline, ...]] = {
    "deals": _DEAL_PIPELINES,
    "orders": (_ORDER_PIPELINE,),
    "tickets": (_TICKET_PIPELINE,),
}
"""The demo portal's pipelines, per object type."""


def _ordered(pipelines: Iterable[Pipeline]) -> list[Pipeline]:
    """Pipelines as HubSpot orders them: by displayOrder, then by label."""
    return sorted(pipelines, key=lambda p: (p.display_order, p.label))


def list_pipelines(object_type: str, pipelines: tuple[Pipeline, ...] | None) -> dict[str, Any]:
    """The pipelines of an object type (None: the type has none, which is refused)."""
    return {"results": [p.as_json() for p in _ordered(_of_type(object_type, pipelines))]}


def get_pipeline(
    object_type: str, pipelines: tuple[Pipeline, ...] | None, pipeline_id: str
) -> dict[str, Any]:
    """One pipeline of an object type by its id, or a 404."""
    for pipeline in _of_type(object_type, pipelines):
        if pipeline.id == pipeline_id:
            return pipeline.as_json()
    # UNVERIFIED: HubSpot's wording for a pipeline it does not have was not found.
    raise Reply(
        404,
        error(f"No {object_type} pipeline with id {pipeline_id} exists.", "OBJECT_NOT_FOUND"),
    )


def _of_type(object_type: str, pipelines: tuple[Pipeline, ...] | None) -> tuple[Pipeline, ...]:
    """An object type's pipelines, or the 400 for a type without pipelines."""
    if pipelines is None:
        # UNVERIFIED: HubSpot's answer for an object type without pipelines was not found.
        raise Reply(
            400,
            error(
                f"The object type {object_type} has no pipelines: pipelines are for deals, "
                "tickets, orders and the other object types with stages.",
                "VALIDATION_ERROR",
                context={"objectType": [object_type]},
            ),
        )
    return pipelines


def pipeline_defs(object_type: str, pipelines: tuple[Pipeline, ...]) -> tuple[PropertyDef, ...]:
    """The pipeline and stage properties of an object type, as HubSpot defines them from its
    pipelines: the pipelines the first's options, every stage of every pipeline the second's
    (a stage's label may be another pipeline's stage's label too)."""
    pipeline_prop, stage_prop = pipeline_properties(object_type)
    ordered = _ordered(pipelines)
    stages = [s for p in ordered for s in p.stages]
    return (
        _enumeration(pipeline_prop, "Pipeline", [(p.id, p.label) for p in ordered]),
        _enumeration(
            stage_prop, _STAGE_LABELS.get(object_type, "Stage"), [(s.id, s.label) for s in stages]
        ),
    )


def _enumeration(name: str, label: str, options: list[tuple[str, str]]) -> PropertyDef:
    """A dropdown property whose options are these (value, label) pairs."""
    return PropertyDef(
        name=name,
        label=label,
        type="enumeration",
        field_type="select",
        options=tuple(dict.fromkeys(value for value, _ in options)),
        option_labels=tuple(options),
    )


def stage_problem(
    object_type: str,
    pipelines: tuple[Pipeline, ...],
    properties: dict[str, str],
    current: Callable[[], dict[str, str] | None],
) -> dict[str, Any] | None:
    """HubSpot's problem with an input whose stage is a stage of another pipeline than the
    record's, or None. The record's pipeline: the one the input gives, else the record's
    (`current`: the properties of the record an update writes, None on a create), else the
    type's first. A stage or pipeline that is none of the portal's is refused as any value
    that is not an option is."""
    pipeline_prop, stage_prop = pipeline_properties(object_type)
    stage = properties.get(stage_prop)
    if not stage or not pipelines:
        return None
    chosen = properties.get(pipeline_prop) or (current() or {}).get(pipeline_prop)
    pipeline = next((p for p in _ordered(pipelines) if chosen is None or p.id == chosen), None)
    if pipeline is None or pipeline.has_stage(stage):
        return None
    if not any(p.has_stage(stage) for p in pipelines):
        return None  # no stage of any pipeline: INVALID_OPTION says so
    # UNVERIFIED: HubSpot's code and wording for a stage of another pipeline were not found.
    return {
        "message": (
            f'"{stage}" is not a stage of the {object_type} pipeline {pipeline.id} '
            f'("{pipeline.label}"): give a stage of that pipeline, or the pipeline the '
            f"stage belongs to in {pipeline_prop}"
        ),
        "code": "INVALID_PIPELINE_STAGE",
        "context": {"propertyName": [stage_prop]},
    }
