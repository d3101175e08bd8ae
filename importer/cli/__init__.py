"""Command line: the only package that prints, reads the environment's token and picks exit
codes. `main` runs it (tests call it directly), `entry_point` is the console script."""

from . import history, importing, properties, serve  # noqa: F401  (they add their commands to `cli`)
from .common import EXIT_ERROR, EXIT_INTERNAL, EXIT_LOCKED, EXIT_OK, EXIT_ROWS, cli
from .entry import entry_point, main

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_ROWS",
    "cli",
    "entry_point",
    "main",
]
