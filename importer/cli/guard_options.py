"""The guards' options of `run` and `check` (--max-invalid, --max-changed, --max-missing,
--expect-rows), each checked as it is read: a mistake is a usage error (exit 2)."""

from __future__ import annotations

import click

from ..mapping.guards import Limit, RowRange, option_name, parse_limit, parse_rows

__all__ = ["GUARD_OPTIONS"]

_STOPS = "Stop before writing anything (exit 3)"


def _guard(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Limit | RowRange | None:
    """A guard's N or N% (--expect-rows: MIN[:MAX]) as the run takes it; BadParameter saying
    what is wrong."""
    if value is None or param.name is None:
        return None
    try:
        if param.name == "expect_rows":
            return parse_rows(value, option_name(param.name))
        return parse_limit(value, option_name(param.name))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


GUARD_OPTIONS = (
    click.option(
        "--max-invalid",
        metavar="N|N%",
        callback=_guard,
        help=f"{_STOPS} when more than N rows, or N% of the sheet's data rows, are invalid "
        "(0: any invalid row). Overrides the mapping's guards: max_invalid.",
    ),
    click.option(
        "--max-changed",
        metavar="N|N%",
        callback=_guard,
        help=f"{_STOPS} when more than N records, or N% of the sheet's data rows, would be "
        "updated. Overrides the mapping's guards: max_changed.",
    ),
    click.option(
        "--max-missing",
        metavar="N|N%",
        callback=_guard,
        help=f"{_STOPS} when more than N records, or N% of those the mapping holds, would be "
        "archived or set by its missing_rows: rule (default 10% when that rule is not keep). "
        "Overrides the mapping's guards: max_missing.",
    ),
    click.option(
        "--expect-rows",
        metavar="MIN[:MAX]",
        callback=_guard,
        help=f"{_STOPS} unless the sheet has MIN to MAX data rows, skipped rows included (MIN "
        "alone: at least MIN; :MAX: at most MAX). Overrides the mapping's guards: expect_rows.",
    ),
)
"""Given to `run` and `check` (and, through them, to a plan's every step)."""
