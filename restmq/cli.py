"""The ``restmq`` command: flags → one Settings → the server.

Every ``serve`` flag defaults to None so that environment variables and the TOML file can
supply it; ``restmq.config.load_settings`` applies the precedence.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from restmq.config import load_settings
from restmq.errors import ConfigError, EmbeddedServerError
from restmq.logs import setup_logging


@click.group()
@click.version_option(package_name="restmq")
def main() -> None:
    """RestMQ: a message broker that speaks HTTP and keeps its data in Redis."""


def _serve_options(func: Any) -> Any:
    options = [
        click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                     help="TOML config file (env RESTMQ_CONFIG)."),
        click.option("--listen", default=None, help="Address to listen on [127.0.0.1]."),
        click.option("--port", type=int, default=None, help="HTTP port [8888]."),
        click.option("--redis-url", default=None,
                     help="redis://, rediss:// or unix:// URL of an existing Redis/Valkey."),
        click.option("--redis-host", default=None, help="Redis host (1.x option)."),
        click.option("--redis-port", type=int, default=None, help="Redis port (1.x option)."),
        click.option("--redis-db", type=int, default=None, help="Redis database (1.x option)."),
        click.option("--redis-pool", type=int, default=None, help="Redis connections per worker."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Embedded Valkey's data directory [./restmq-data]."),
        click.option("--prefix", default=None, help="Key namespace prefix [restmq:]."),
        click.option("--workers", type=int, default=None, help="Worker processes [1]."),
        click.option("--acl", type=click.Path(path_type=Path), default=None, help="ACL file."),
        click.option("--max-message-size", type=int, default=None, help="Bytes [1 MiB]."),
        click.option("--max-body-size", type=int, default=None, help="Bytes [4 MiB]."),
        click.option("--heartbeat", type=float, default=None,
                     help="Seconds between SSE/WebSocket heartbeats [15]."),
        click.option("--stream-lease", type=float, default=None,
                     help="Seconds a roundrobin message may stay in flight [15]."),
        click.option("--presence-timeout", type=float, default=None,
                     help="Seconds before a silent daemon's consumers vanish [5]."),
        click.option("--stream-credits", type=int, default=None,
                     help="Messages in flight per streaming consumer [64]."),
        click.option("--history-size", type=int, default=None,
                     help="Broadcast messages kept for SSE replay per queue [256]."),
        click.option("--history-age", type=float, default=None,
                     help="Seconds broadcast messages stay replayable [3600]."),
        click.option("--log-level", default=None, help="debug, info, warning, error [info]."),
        click.option("--access-log/--no-access-log", default=None, help="Log every request."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@_serve_options
def serve(config_file: Path | None, **flags: Any) -> None:
    """Run the broker (with its own Valkey unless a Redis is given)."""
    import uvloop

    from restmq.server import serve as run_server

    try:
        settings = load_settings(flags, config_file=config_file)
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    setup_logging(settings.log_level)
    try:
        uvloop.run(run_server(settings))
    except (EmbeddedServerError, ConfigError) as exc:
        click.echo(f"restmq: {exc.message}", err=True)
        sys.exit(1)
