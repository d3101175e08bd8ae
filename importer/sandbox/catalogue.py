"""The portal's settings a catalogue's values refer to (owners, pipelines, currencies): the
properties they define, and the checks of written values against them (routes.py serves the
endpoints that list them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config import SandboxConfig
from .currencies import price_defs
from .owners import owner_problem
from .pipelines import pipeline_defs, stage_problem
from .portal import PropertyDef

__all__ = ["derived_properties", "value_problems"]


def derived_properties(config: SandboxConfig) -> dict[str, tuple[PropertyDef, ...]]:
    """Per object type, the properties the portal's settings define: the pipeline and stage
    properties of each type with pipelines, and a product's price in each currency."""
    derived = {name: pipeline_defs(name, pipes) for name, pipes in config.pipelines.items()}
    derived["products"] = (*derived.get("products", ()), *price_defs(config.currencies))
    return derived


def value_problems(
    config: SandboxConfig,
    object_type: str,
    defs: dict[str, PropertyDef],
    properties: dict[str, str],
    current: Callable[[], dict[str, str] | None],
) -> list[dict[str, Any]]:
    """The problems HubSpot finds with an input's values against the portal's settings: an
    owner property given no active owner's id, a stage of another pipeline than the
    record's (`current`: the properties of the record an update writes, read only when a
    stage needs them; None on a create)."""
    problems = []
    for name, value in properties.items():
        prop = defs.get(name)
        if prop is not None and prop.referenced_object_type == "OWNER":
            problem = owner_problem(config.owners, name, value)
            if problem is not None:
                problems.append(problem)
    pipelines = config.pipelines.get(object_type, ())
    stage = stage_problem(object_type, pipelines, properties, current)
    return [*problems, stage] if stage is not None else problems
