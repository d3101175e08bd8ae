"""Plan files: the steps (a mapping and the sheet or file it reads: a path, a glob or a URL),
every mistake named, and the order they run in: after the steps whose object types they refer
to (a cycle is an error naming it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError, InputFileError
from ..core.hubspot import canonical_object_type
from ..mapping.file import _UniqueKeyLoader, load_mapping
from ..mapping.missing_keys import refuse_in_plan
from ..mapping.model import Mapping
from ..sheets.inputs import open_input

__all__ = ["PlanFile", "Step", "load_plan", "reordered"]

_PLAN_KEYS = ("input", "steps")
_STEP_KEYS = ("mapping", "sheet", "input")


@dataclass(frozen=True, kw_only=True)
class Step:
    mapping_file: Path
    mapping: Mapping
    input_file: Path
    sheet: str | None

    @property
    def name(self) -> str:
        return self.sheet or self.input_file.stem


@dataclass(frozen=True, kw_only=True)
class PlanFile:
    path: Path
    steps: tuple[Step, ...]
    """In the order they run."""


def load_plan(path: Path) -> PlanFile:
    """Read a plan file and its mappings, every mistake named; steps in the order they run."""
    path = Path(path)
    where = str(path)
    data = _read_yaml(path)
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a plan is a mapping with `steps:` (and `input:`)")
    problems += [f"{k}: not a plan key (keys: input, steps)" for k in data if k not in _PLAN_KEYS]
    default_input = data.get("input")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("steps: required: a list of {mapping, sheet, input}")
        raw_steps = []
    steps: list[Step] = []
    for n, raw in enumerate(raw_steps):
        # Relative to where the plan really is: a link to it elsewhere names the same files.
        step = _step(f"steps[{n}]", raw, path.resolve().parent, default_input, problems)
        if step is not None:
            steps.append(step)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        noun = "mistake" if len(problems) == 1 else "mistakes"
        raise ConfigError(f"{where}: {len(problems)} {noun} in the plan:\n{listed}")
    return PlanFile(path=path, steps=tuple(_ordered(steps, where)))


def _read_yaml(path: Path) -> Any:
    """The plan file's YAML, parsed; a file that cannot be read or parsed is a ConfigError."""
    where = str(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such plan file; check the --plan path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None


def _step(at: str, raw: Any, base: Path, default_input: Any, problems: list[str]) -> Step | None:
    """One step of the plan (files relative to `base`, the plan's folder), with its mapping
    loaded; None, with its mistakes added to `problems`, if it cannot be."""
    if not isinstance(raw, dict):
        problems.append(f"{at}: give {{mapping: ..., sheet: ...}}")
        return None
    problems += [
        f"{at}.{k}: not a step key (keys: mapping, sheet, input)"
        for k in raw
        if k not in _STEP_KEYS
    ]
    mapping_name, input_name = raw.get("mapping"), raw.get("input", default_input)
    if not isinstance(mapping_name, str) or not mapping_name.strip():
        problems.append(f"{at}.mapping: required: the mapping file, relative to the plan")
        return None
    if not isinstance(input_name, str) or not input_name.strip():
        problems.append(f"{at}.input: required here, or `input:` at the top of the plan")
        return None
    mapping_file = base / mapping_name
    input_file = _input_file(f"{at}.input", input_name, base, problems)
    sheet = raw.get("sheet")
    try:
        mapping = load_mapping(mapping_file)
        refuse_in_plan(mapping.missing_rows, mapping_name)
    except ConfigError as exc:
        problems.append(f"{at}.mapping: {exc}")
        return None
    return Step(
        mapping_file=mapping_file,
        mapping=mapping,
        input_file=input_file,
        sheet=str(sheet) if sheet is not None else None,
    )


def _input_file(at: str, input_name: str, base: Path, problems: list[str]) -> Path:
    """The file a step reads: a path relative to the plan's folder (`base`), or a glob's match
    or a URL's download (read once however many steps name it); its mistake added to
    `problems`."""
    try:
        input_file = open_input(input_name, base).local
    except (ConfigError, InputFileError) as exc:
        problems.append(f"{at}: {exc}")
        return base / input_name
    if not input_file.is_file():
        problems.append(f"{at}: {input_file} is not a file")
    return input_file


def reordered(plan: PlanFile, kinds: dict[str, str]) -> PlanFile:
    """The plan's steps ordered again, object types compared as `kinds` has them (each name
    -> one name for its type: a custom object's type id for `pets` and `p4242424_pets`), so
    that a step runs after the step importing the type it refers to by another name."""

    def same(name: str) -> str:
        """The one name of the type `name` names."""
        return kinds.get(name, canonical_object_type(name))

    steps = _ordered(list(plan.steps), str(plan.path), same)
    return plan if tuple(steps) == plan.steps else PlanFile(path=plan.path, steps=tuple(steps))


def _ordered(
    steps: list[Step], where: str, same: Callable[[str], str] = canonical_object_type
) -> list[Step]:
    """Steps after the steps whose object types they refer to (a stable topological order);
    `same` gives each object type name one name for its type (`0-7` and `products`)."""
    after: dict[int, set[int]] = {}
    for i, step in enumerate(steps):
        targets = {same(r.to) for r in step.mapping.references}
        after[i] = {
            j
            for j, other in enumerate(steps)
            if j != i and same(other.mapping.object_type) in targets
        }
    done: list[int] = []
    state: dict[int, str] = {}

    def visit(i: int, trail: list[int]) -> None:
        if state.get(i) == "done":
            return
        if state.get(i) == "visiting":
            loop = [*trail[trail.index(i) :], i]
            names = " -> ".join(f"{steps[j].name} ({steps[j].mapping.object_type})" for j in loop)
            raise ConfigError(
                f"{where}: the steps refer to each other in a cycle: {names}. Import one side "
                "without the reference first, or refer to records HubSpot already has."
            )
        state[i] = "visiting"
        for j in sorted(after[i]):
            visit(j, [*trail, i])
        state[i] = "done"
        done.append(i)

    for i in range(len(steps)):
        visit(i, [])
    return [steps[i] for i in done]
