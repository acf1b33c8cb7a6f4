"""The ``restmq`` command: flags → one Settings → the server.

Every ``serve`` flag defaults to None so that environment variables and the TOML file can
supply it; ``restmq.config.load_settings`` applies the precedence.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

import click

from restmq.cli_client import CLIENT_COMMANDS
from restmq.cli_keys import keys
from restmq.cli_migrate import migrate_v1_command
from restmq.config import Settings, load_settings
from restmq.errors import ConfigError, EmbeddedServerError
from restmq.logs import setup_logging


@click.group()
@click.version_option(package_name="restmq")
def main() -> None:
    """RestMQ: a message broker that speaks HTTP and keeps its data in Redis."""


# Options of every command that runs a daemon on the storage (serve, collectd, syslogd).
_STORAGE_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                 help="TOML config file (env RESTMQ_CONFIG)."),
    click.option("--listen", default=None, help="Address to listen on [127.0.0.1]."),
    click.option("--redis-url", default=None,
                 help="redis://, rediss:// or unix:// URL of an existing Redis/Valkey."),
    click.option("--redis-host", default=None, help="Redis host (1.x option)."),
    click.option("--redis-port", type=int, default=None, help="Redis port (1.x option)."),
    click.option("--redis-db", type=int, default=None, help="Redis database (1.x option)."),
    click.option("--redis-pool", type=int, default=None, help="Redis connections per worker."),
    click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                 help="Embedded Valkey's data directory [./restmq-data]."),
    click.option("--prefix", default=None, help="Key namespace prefix [restmq:]."),
    click.option("--log-level", default=None,
                 help="debug, info, warning, error or critical [info]."),
]
_SYSLOG_OPTIONS = [
    click.option("--syslog-port", type=int, default=None,
                 help="Syslog TCP and UDP port [25000]."),
    click.option("--syslog-max-line", type=int, default=None,
                 help="Bytes; a longer syslog line is cut [8192]."),
]


def _apply(options: list[Any], func: Any) -> Any:
    for option in reversed(options):
        func = option(func)
    return func


def _syslogd_options(func: Any) -> Any:
    return _apply([*_STORAGE_OPTIONS, *_SYSLOG_OPTIONS], func)


def _serve_options(func: Any) -> Any:
    options = [
        *_STORAGE_OPTIONS,
        click.option("--port", type=int, default=None, help="HTTP port [8888]."),
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
        click.option("--request-timeout", type=float, default=None,
                     help="Seconds a request may wait on the storage before 503/504 [5]."),
        click.option("--idempotency-window", type=float, default=None,
                     help="Seconds an Idempotency-Key is remembered [300]."),
        click.option("--header-timeout", type=float, default=None,
                     help="Seconds a client has to send its request line and headers [10]."),
        click.option("--keepalive-timeout", type=float, default=None,
                     help="Seconds an idle keep-alive connection stays open [75]."),
        click.option("--write-timeout", type=float, default=None,
                     help="Seconds a stream write may wait on a slow client [10]."),
        click.option("--queue-idle-time", type=float, default=None,
                     help="Seconds an empty queue with nothing set stays listed [3600]."),
        click.option("--shutdown-timeout", type=float, default=None,
                     help="Seconds SIGTERM waits for requests and streams to finish [10]."),
        click.option("--access-log/--no-access-log", default=None, help="Log every request."),
        click.option("--collectd/--no-collectd", default=None,
                     help="Add the collectd routes /collectd/data and /collectd/event."),
        click.option("--syslogd/--no-syslogd", default=None,
                     help="Also run the syslog receiver (TCP and UDP on --syslog-port)."),
        *_SYSLOG_OPTIONS,
    ]
    return _apply(options, func)


@main.command()
@_serve_options
def serve(config_file: Path | None, **flags: Any) -> None:
    """Run the broker (with its own Valkey unless a Redis is given)."""
    from restmq.server import serve as run_server

    _run(run_server, config_file, flags)


@main.command()
@_serve_options
def collectd(config_file: Path | None, **flags: Any) -> None:
    """Run the broker with the collectd routes (the same as serve --collectd)."""
    from restmq.server import serve as run_server

    _run(run_server, config_file, {**flags, "collectd": True})


@main.command()
@_syslogd_options
def syslogd(config_file: Path | None, **flags: Any) -> None:
    """Run the syslog receiver alone: TCP and UDP into queues syslogd:<sender ip>.

    Without a Redis it runs its own Valkey in --data-dir, which must not be the data directory
    of a running `restmq serve` (use `serve --syslogd`, or --redis-url, to share one).
    """
    from restmq.server import syslogd as run_syslogd

    _run(run_syslogd, config_file, flags)


def _run(
    entry: Callable[[Settings], Coroutine[Any, Any, None]],
    config_file: Path | None,
    flags: dict[str, Any],
) -> None:
    """Build the Settings, set up logging and run ``entry`` on uvloop until it returns.

    A mistake in the settings exits 2 and a start that fails exits 1, each with one line on
    stderr that says what to change (never a traceback).
    """
    import uvloop

    try:
        settings = load_settings(flags, config_file=config_file)
        setup_logging(settings.log_level)
    except ConfigError as exc:
        _fail(exc.message, 2)
    try:
        uvloop.run(entry(settings))
    except (EmbeddedServerError, ConfigError) as exc:
        _fail(exc.message, 1)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"restmq: {message}", err=True)
    sys.exit(code)


main.add_command(keys)
main.add_command(migrate_v1_command)  # restmq migrate-v1 (restmq.cli_migrate)
for _command in CLIENT_COMMANDS:  # add, take, tail, stats… (restmq.cli_client)
    main.add_command(_command)
