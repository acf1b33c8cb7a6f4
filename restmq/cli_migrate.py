"""``restmq migrate-v1 --from <redis url>``: import a RestMQ 1.x database (docs/operations.md).

The target is chosen with the options of ``serve`` (flags, ``RESTMQ_*`` variables, the TOML
file): a Redis URL and prefix, or, without one, the embedded Valkey of ``--data-dir`` — the
running broker's through its socket, or, when no broker runs there, one started for the
migration and stopped after it. The import itself is ``restmq.engine.migrate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from restmq.config import Settings, load_settings
from restmq.engine.connection import Storage, open_storage, prepare
from restmq.engine.migrate import BATCH, MigrationReport, QueueReport, migrate_v1
from restmq.errors import ConfigError, EmbeddedServerError, RestMQError

if TYPE_CHECKING:
    from restmq.embedded import EmbeddedValkey

_COLUMNS = ("moved", "already", "expired", "not_text", "renumbered", "with_ttl")


def _target_options(func: Any) -> Any:
    options = [
        click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                     help="TOML config file (env RESTMQ_CONFIG)."),
        click.option("--redis-url", default=None, help="The target: redis://, rediss://, unix://."),
        click.option("--redis-host", default=None, help="Target Redis host (1.x option)."),
        click.option("--redis-port", type=int, default=None, help="Target Redis port."),
        click.option("--redis-db", type=int, default=None, help="Target Redis database."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Without a Redis URL: the embedded Valkey's data directory."),
        click.option("--prefix", default=None, help="Target key namespace prefix [restmq:]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("migrate-v1")
@click.option("--from", "source", required=True, metavar="URL",
              help="redis:// URL of the RestMQ 1.x database, with its db number.")
@_target_options
@click.option("--batch", type=click.IntRange(1, 10_000), default=BATCH, show_default=True,
              help="Messages read and written per step.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate_v1_command(
    source: str, config_file: Path | None, batch: int, as_json: bool, **flags: Any
) -> None:
    """Import the queues, messages, policies and statuses of a RestMQ 1.x database.

    The 1.x database is only read. Messages keep their order, keys and remaining TTL; a
    second run moves only what the first did not (messages added to 1.x since).
    """
    try:
        settings = load_settings(flags, config_file=config_file)
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None
    try:
        report = asyncio.run(_migrate(settings, source, batch))
    except RestMQError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else _human(report))


async def _migrate(settings: Settings, source: str, batch: int) -> MigrationReport:
    async with _target(settings) as storage:
        return await migrate_v1(source, storage.pipeliner, storage.store.keys, batch)


@contextlib.asynccontextmanager
async def _target(settings: Settings) -> AsyncIterator[Storage]:
    """The target storage, with the Lua scripts loaded."""
    async with _target_url(settings) as url:
        storage = open_storage(url, settings.prefix, 4)
        try:
            await prepare(storage)
            yield storage
        finally:
            await storage.close()


@contextlib.asynccontextmanager
async def _target_url(settings: Settings) -> AsyncIterator[str]:
    if not settings.embedded:
        yield settings.storage_url()
        return
    from restmq.embedded import EmbeddedValkey  # only when no Redis is given

    valkey = EmbeddedValkey(settings.data_dir.resolve())
    owned = await _start_unless_running(valkey)
    try:
        yield valkey.url
    finally:
        if owned:
            await valkey.stop()


async def _start_unless_running(valkey: EmbeddedValkey) -> bool:
    """Start the data directory's Valkey; False when a running broker's already serves it."""
    try:
        await valkey.start()
    except EmbeddedServerError:
        if valkey.socket_path.exists():
            return False
        raise
    return True


def _human(report: MigrationReport) -> str:
    totals = report.totals()
    lines = [
        f"{report.source}: moved {_count(totals['moved'], 'message')} of "
        f"{_count(totals['queues'], 'queue')} ({totals['new_queues']} migrated for the first time)"
    ]
    if report.queues:
        lines.append(_row("queue", *_COLUMNS, "policy", "status"))
        lines += [_queue_row(queue) for queue in report.queues]
    else:
        lines.append("no queue found: is QUEUESET in that database (check the db number)?")
    lines += [f"skipped queue {name!r}: {why}" for name, why in report.skipped.items()]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _queue_row(queue: QueueReport) -> str:
    counts = [str(getattr(queue, name)) for name in _COLUMNS]
    return _row(queue.queue, *counts, queue.policy or "-", queue.status or "-")


def _row(name: str, *cells: str) -> str:
    return f"{name:<24} " + " ".join(f"{cell:>10}" for cell in cells)
