"""`sandbox`: the HubSpot emulator on its own, for other tools to try against."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..core.errors import ConfigError
from ..core.hubspot import SEARCH_RATE_PER_SECOND
from .common import EXIT_OK, cli
from .entry import _interrupt

if TYPE_CHECKING:
    from ..sandbox import SandboxConfig


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    help="Keep records in this SQLite file (default: in memory).",
)
@click.option("--token", help="Accept only this bearer token (default: any token).")
@click.option(
    "--echo-trace-ids",
    is_flag=True,
    help="Echo objectWriteTraceId in created results (unverified for HubSpot).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(1),
    default=190,
    show_default=True,
    help="Requests allowed per rolling window (10 s unless --rate-window-ms says otherwise).",
)
@click.option(
    "--latency",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Seconds each answer takes, the work included (as HubSpot's latency).",
)
@click.option(
    "--rate-window-ms",
    type=click.IntRange(100),
    default=10_000,
    show_default=True,
    help="The rolling window of --rate-limit, in milliseconds.",
)
@click.option(
    "--daily-limit",
    type=click.IntRange(1),
    default=650_000,
    show_default=True,
    help="Requests allowed per day (a Professional portal's limit by default).",
)
@click.option(
    "--search-lag",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Seconds before search sees a write (HubSpot's search lags writes by seconds).",
)
@click.option(
    "--search-rate-limit",
    type=click.IntRange(1),
    default=SEARCH_RATE_PER_SECOND,
    show_default=True,
    help="Search requests allowed per second per token (search's own limit).",
)
@click.option(
    "--no-legacy-paths",
    is_flag=True,
    help="Answer 404 on the numbered paths (/crm/v3, /crm/v4, /account-info/v3), as after "
    "HubSpot's sunset; only the date-based ones are served.",
)
def sandbox(
    host: str,
    port: int,
    db: Path | None,
    token: str | None,
    echo_trace_ids: bool,
    rate_limit: int,
    latency: float,
    rate_window_ms: int,
    daily_limit: int,
    search_lag: float,
    search_rate_limit: int,
    no_legacy_paths: bool,
) -> int:
    """Serve the local HubSpot emulator until interrupted (Ctrl-C)."""
    from ..sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        db=db,
        token=token,
        echo_trace_ids=echo_trace_ids,
        rate_limit=rate_limit,
        rate_interval_ms=rate_window_ms,
        daily_limit=daily_limit,
        latency=latency,
        search_lag=search_lag,
        search_rate_limit=search_rate_limit,
        legacy_paths=not no_legacy_paths,
    )
    try:
        box = Sandbox(config, host=host, port=port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program uses "
            "that port; choose another --port (0 picks a free one)"
        ) from None
    # systemd and schedulers stop services with SIGTERM: shut down as for Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    _say_how_to_use(box.url, config, db)
    try:
        box.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        box.stop()
    return EXIT_OK


def _say_how_to_use(url: str, config: SandboxConfig, db: Path | None) -> None:
    """Where the sandbox listens, the token to give it, and where its records live."""
    click.echo(f"HubSpot sandbox listening on {url}" + (f" (records in {db})" if db else ""))
    token = "<the --token value>" if config.token else "sandbox"
    click.echo(
        f"Import into it with: HUBSPOT_BASE_URL={url} HUBSPOT_ACCESS_TOKEN={token} "
        "hubspot-import run ..."
        + (
            ""
            if config.token
            else "\n(it accepts any token that is not empty: never give it a real one)"
        )
        + (
            ""
            if db
            else "\nIts records live in memory and are gone when it stops: give --db FILE to "
            "keep them (a journal of runs against it is true only as long as they are kept)"
        )
    )
