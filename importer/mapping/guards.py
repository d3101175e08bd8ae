"""Guards: the limits that stop a run before it writes anything when its feed looks wrong (too
many invalid rows, too many records changed or missing, too few or too many rows), as the
command line (`--max-invalid`, ...) or the mapping's `guards:` give them (`Guards`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction

__all__ = [
    "DEFAULT_MAX_MISSING",
    "GUARD_NAMES",
    "Guards",
    "Limit",
    "RowRange",
    "option_name",
    "parse_limit",
    "parse_rows",
]

GUARD_NAMES = ("expect_rows", "max_invalid", "max_missing", "max_changed")
"""The keys of `guards:` in a mapping, in the order a run judges them."""

_LIMIT_RE = re.compile(r"(?P<amount>[+-]?\d+(?:\.\d+)?)\s*(?P<percent>%?)")
_ROWS_RE = re.compile(r"(?P<low>[+-]?\d*)\s*(?::\s*(?P<high>[+-]?\d*))?")
_LIMIT_FORM = "give a number (N) or a percentage (N%), e.g. 10 or 5%"
_ROWS_FORM = "give MIN or MIN:MAX, numbers of the sheet's data rows, e.g. 100 or 100:200"


def option_name(guard: str) -> str:
    """The command-line option of a guard: `max_invalid` -> `--max-invalid`."""
    return "--" + guard.replace("_", "-")


@dataclass(frozen=True)
class Limit:
    """At most `amount` rows (or records), or `amount` percent of them; `given` says where the
    limit was set (`--max-invalid`, `the mapping's max_invalid`)."""

    amount: Fraction
    percent: bool
    given: str = ""

    def __str__(self) -> str:
        """`10 %`, `12.5 %` or `3`, as messages say it."""
        return f"{_number(self.amount)} %" if self.percent else _number(self.amount)

    def exceeded(self, count: int, total: int) -> bool:
        """More than the limit: `count` over `amount`, or over `amount` percent of `total`."""
        if self.percent:
            return count * 100 > self.amount * total
        return count > self.amount


@dataclass(frozen=True)
class RowRange:
    """From `low` to `high` data rows (None: no upper bound); `given` as for `Limit`."""

    low: int
    high: int | None
    given: str = ""

    def __str__(self) -> str:
        """`100:200`, `100` (at least) or `:200` (at most), as the option takes it."""
        if self.high is None:
            return str(self.low)
        return f"{self.low or ''}:{self.high}"

    def expected(self) -> str:
        """`100 to 200`, `at least 100` or `at most 200`."""
        if self.high is None:
            return f"at least {self.low:,}"
        if not self.low:
            return f"at most {self.high:,}"
        return f"{self.low:,} to {self.high:,}"


@dataclass(frozen=True)
class Guards:
    """The guards of a run: None where a guard is not set."""

    max_invalid: Limit | None = None
    """Invalid rows, of the sheet's data rows."""
    max_missing: Limit | None = None
    """Records the mapping's `missing_rows:` would archive or set, of the records it holds."""
    max_changed: Limit | None = None
    """Records that would be updated, of the sheet's data rows."""
    expect_rows: RowRange | None = None
    """The sheet's data rows, skipped rows included."""

    def over(self, other: Guards) -> Guards:
        """These guards, with `other`'s where these are not set (the command line over the
        mapping)."""
        mine = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(other, **{name: v for name, v in mine.items() if v is not None})

    @property
    def any(self) -> bool:
        """Whether any guard is set."""
        return any(getattr(self, f.name) is not None for f in fields(self))


DEFAULT_MAX_MISSING = Limit(Fraction(10), percent=True, given="the default max_missing")
"""The guard on missing records when `missing_rows:` archives or sets them and no max_missing
is given."""


def parse_limit(raw: object, given: str) -> Limit:
    """`10`, `10%` or `12.5 %` (a number from YAML too) as a Limit; ValueError saying what is
    wrong otherwise (negative, over 100 %, a fraction of a row, not a number)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"{raw!r} is not a number or a percentage: {_LIMIT_FORM}")
    text = str(raw).strip()
    found = _LIMIT_RE.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a number or a percentage: {_LIMIT_FORM}")
    try:
        amount = Fraction(Decimal(found["amount"]))
    except InvalidOperation:  # the pattern lets only decimals through; said all the same
        raise ValueError(f"{text!r} is not a number or a percentage: {_LIMIT_FORM}") from None
    percent = bool(found["percent"])
    if amount < 0:
        raise ValueError(f"{text!r} is negative: {_LIMIT_FORM} (0 stops at the first one)")
    if percent and amount > 100:
        raise ValueError(f"{text!r} is more than 100 %")
    if not percent and amount.denominator != 1:
        raise ValueError(f"{text!r} is not a whole number: give a count, or add % for a share")
    return Limit(amount, percent, given)


def parse_rows(raw: object, given: str) -> RowRange:
    """`MIN`, `MIN:MAX` or `:MAX` (an int from YAML too) as a RowRange; ValueError saying what
    is wrong otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f"{raw!r} is not a number of rows: {_ROWS_FORM}")
    text = str(raw).strip()
    found = _ROWS_RE.fullmatch(text)
    if found is None or not (found["low"] or found["high"]):
        raise ValueError(f"{text!r} is not a number of rows: {_ROWS_FORM}")
    low = int(found["low"] or 0)
    high = int(found["high"]) if found["high"] else None
    if low < 0 or (high is not None and high < 0):
        raise ValueError(f"{text!r} is negative: {_ROWS_FORM}")
    if high is not None and high < low:
        raise ValueError(f"{text!r}: MIN {low} is more than MAX {high}")
    return RowRange(low, high, given)


def _number(value: Fraction) -> str:
    """A limit's amount as written: `10`, `12.5`."""
    if value.denominator == 1:
        return str(value.numerator)
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0")
