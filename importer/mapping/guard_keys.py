"""`guards:` in a mapping read and checked: max_invalid, max_missing and max_changed (N or N%)
and expect_rows (MIN or MIN:MAX), each a `Limit` or `RowRange` of `Guards`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .association_keys import AssociationKeys, unknown_keys
from .guards import GUARD_NAMES, Guards, Limit, parse_limit, parse_rows

__all__ = ["parse_guards"]

KEY = "guards"
_GIVEN = "the mapping's %s"
T = TypeVar("T")


def parse_guards(parser: AssociationKeys, raw: Any) -> Guards:
    """`guards: {max_invalid: 10%, expect_rows: "100:200"}` as Guards; each mistake is one of
    the parser's problems. A range is written in quotes: YAML reads an unquoted 1:30 as 90."""
    if raw is None:
        return Guards()
    if not isinstance(raw, dict):
        parser.fail(KEY, 'give the guards to set, e.g. {max_invalid: 10%, expect_rows: "100:"}')
        return Guards()
    unknown_keys(parser.problems, KEY, raw, GUARD_NAMES)
    rows = raw.get("expect_rows")
    in_range = None
    if rows is not None:
        in_range = _checked(parser, "expect_rows", lambda: parse_rows(rows, _GIVEN % "expect_rows"))
    return Guards(
        max_invalid=_limit(parser, raw, "max_invalid"),
        max_missing=_limit(parser, raw, "max_missing"),
        max_changed=_limit(parser, raw, "max_changed"),
        expect_rows=in_range,
    )


def _limit(parser: AssociationKeys, raw: dict[Any, Any], name: str) -> Limit | None:
    """One guard's N or N%, None when not set or (said to `parser`) wrong."""
    value = raw.get(name)
    if value is None:
        return None
    return _checked(parser, name, lambda: parse_limit(value, _GIVEN % name))


def _checked(parser: AssociationKeys, name: str, parse: Callable[[], T]) -> T | None:
    """What `parse` makes of a guard's value, or None after telling `parser` why not."""
    try:
        return parse()
    except ValueError as exc:
        parser.fail(f"{KEY}.{name}", str(exc))
        return None
