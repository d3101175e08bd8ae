"""Settings a user gives in the environment (`HUBSPOT_IMPORT_*`), read as numbers: a value
that is not one, or is out of range, is a ConfigError naming the variable and what it takes."""

from __future__ import annotations

import math
import os

from .errors import ConfigError

__all__ = ["env_number"]


def env_number(
    name: str,
    default: float,
    *,
    low: float,
    high: float = math.inf,
    above: bool = False,
    whole: bool = False,
    takes: str,
) -> float:
    """The number the environment variable `name` holds, else `default` (unset or blank).
    It must lie from `low` (excluded when `above`) to `high`, and be whole when `whole`;
    otherwise ConfigError: `NAME='x' is not <takes>`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(int(raw)) if whole else float(raw)
    except ValueError:
        value = math.nan
    fits = (value > low if above else value >= low) and value <= high
    if math.isnan(value) or not fits:
        raise ConfigError(f"{name}={raw!r} is not {takes}")
    return value
