"""A portal's validation rules, which HubSpot enforces on API writes from API version 2026-09 on
(earlier versions and the numbered paths ignore them, as HubSpot's did): rules an admin set on
a property (its format, length or range), and properties required when another one holds a
given value. A value that breaks a rule is refused for its input only."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["ENFORCED_FROM", "rule_problems"]

ENFORCED_FROM = "2026-09"
"""The first API version that enforces validation rules on API writes."""

_CHARACTERS = {
    "NUMERIC_ONLY": (re.compile(r"[0-9]*"), "numbers only"),
    "ALPHA_ONLY": (re.compile(r"[^\W\d_]*"), "letters only"),
    "ALPHANUMERIC_ONLY": (re.compile(r"[^\W_]*"), "letters and numbers only"),
}


def rule_problems(
    rules: dict[str, list[dict[str, Any]]],
    required_when: dict[str, tuple[str, str]],
    properties: dict[str, str],
    *,
    version: str | None,
    creating: bool,
) -> list[dict[str, Any]]:
    """The problems of one input's `properties` under a portal's rules for its object type
    (`rules`: property -> HubSpot's `ruleType`/`ruleArguments`; `required_when`: property ->
    the property and value that make it required on create), as HubSpot words a property
    problem; none before API version 2026-09 (`version`: the request's, None for legacy)."""
    if version is None or version < ENFORCED_FROM:
        return []
    problems = []
    for name, value in properties.items():
        for rule in rules.get(name, []):
            broken = _breaks(rule, value)
            if broken:
                problems.append(_problem(name, str(rule.get("ruleType")), broken))
    if creating:
        for name, (other, when) in required_when.items():
            if properties.get(other) == when and not properties.get(name):
                why = f"{name} is required when {other} is {when!r}"
                problems.append(_problem(name, "CONDITIONALLY_REQUIRED", why))
    return problems


def _breaks(rule: dict[str, Any], value: str) -> str | None:
    """Why `value` breaks `rule`, or None. An empty value breaks no format rule (clearing a
    value is not a format)."""
    if value == "":
        return None
    kind = str(rule.get("ruleType"))
    args = [str(a) for a in rule.get("ruleArguments") or []]
    if kind == "ALPHANUMERIC" and args and args[0] in _CHARACTERS:
        pattern, said = _CHARACTERS[args[0]]
        return None if pattern.fullmatch(value) else f"{value!r} must hold {said}"
    if kind in ("MIN_LENGTH", "MAX_LENGTH") and args:
        length = int(args[0])
        short = kind == "MIN_LENGTH" and len(value) < length
        long = kind == "MAX_LENGTH" and len(value) > length
        if short or long:
            return f"{value!r} must be {'at least' if short else 'at most'} {length} characters"
        return None
    if kind in ("MIN_NUMBER", "MAX_NUMBER") and args:
        try:
            number, limit = Decimal(value), Decimal(args[0])
        except InvalidOperation:
            return None  # not a number: the property's type check says so
        if (kind == "MIN_NUMBER" and number < limit) or (kind == "MAX_NUMBER" and number > limit):
            return f"{value} must be {'at least' if kind == 'MIN_NUMBER' else 'at most'} {limit}"
        return None
    if kind == "REGEX" and args:
        return None if re.fullmatch(args[0], value) else f"{value!r} must match {args[0]}"
    return None


def _problem(name: str, rule: str, why: str) -> dict[str, Any]:
    return {
        "message": f"The value breaks the portal's validation rule {rule} for {name}: {why}",
        "code": "VALIDATION_RULE_VIOLATED",
        "context": {"propertyName": [name]},
    }
