"""``restmq keys create|list|revoke``: manage access keys (SPEC §6) in the broker's Redis.

The storage options are those of ``serve`` (flags, ``RESTMQ_*`` variables, the TOML file).
Without a Redis URL the commands use the embedded Valkey of a running broker, through its
socket ``<data-dir>/valkey.sock``; the embedded Valkey only runs while its broker does.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from restmq.config import Settings, load_settings
from restmq.engine.accesskeys import AccessKey, AccessKeyStore
from restmq.engine.connection import open_storage
from restmq.errors import ConfigError, RestMQError
from restmq.protocol.acl import KeyRights

SOCKET_NAME = "valkey.sock"  # restmq.embedded.SOCKET_NAME, without importing the supervisor
T = TypeVar("T")


def _storage_options(func: Any) -> Any:
    options = [
        click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                     help="TOML config file (env RESTMQ_CONFIG)."),
        click.option("--redis-url", default=None, help="redis://, rediss:// or unix:// URL."),
        click.option("--redis-host", default=None, help="Redis host (1.x option)."),
        click.option("--redis-port", type=int, default=None, help="Redis port (1.x option)."),
        click.option("--redis-db", type=int, default=None, help="Redis database (1.x option)."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Data directory of a running broker's embedded Valkey."),
        click.option("--prefix", default=None, help="Key namespace prefix [restmq:]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(config_file: Path | None, flags: dict[str, Any]) -> Settings:
    try:
        return load_settings(flags, config_file=config_file)
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None


def _url(settings: Settings) -> str:
    if not settings.embedded:
        return settings.storage_url()
    socket = settings.data_dir / SOCKET_NAME
    if not socket.exists():
        raise click.ClickException(
            f"no Redis URL given and no running broker's socket at {socket}; "
            "pass --redis-url or --data-dir"
        )
    return f"unix://{socket.resolve()}"


def _run(settings: Settings, action: Callable[[AccessKeyStore], Awaitable[T]]) -> T:
    """Run one action against the key store, turning RestMQ errors into CLI errors."""

    async def main() -> T:
        storage = open_storage(_url(settings), settings.prefix, 2)
        try:
            return await action(AccessKeyStore(storage.pipeliner, storage.store.keys))
        finally:
            await storage.close()

    try:
        return asyncio.run(main())
    except RestMQError as exc:
        raise click.ClickException(exc.message) from None


def _queues(values: tuple[str, ...]) -> frozenset[str]:
    """Queue names from repeated and/or comma-separated options."""
    return frozenset(name.strip() for value in values for name in value.split(",") if name.strip())


def _rights(rights: KeyRights) -> dict[str, Any]:
    return {
        "read": sorted(rights.read),
        "write": sorted(rights.write),
        "create": rights.create,
        "admin": rights.admin,
    }


def _describe(key: AccessKey) -> dict[str, Any]:
    created = datetime.datetime.fromtimestamp(key.created, datetime.UTC)
    return {"name": key.name, "hash": key.digest[:12], **_rights(key.rights),
            "created": created.isoformat(timespec="seconds")}


@click.group("keys")
def keys() -> None:
    """Manage access keys (Authorization: Bearer <token>)."""


@keys.command("create")
@_storage_options
@click.option("--read", "read", multiple=True, help="Queues it may read: q1,q2 or '*'.")
@click.option("--write", "write", multiple=True, help="Queues it may write: q1,q2 or '*'.")
@click.option("--create", "create", is_flag=True, help="May write to queues that do not exist.")
@click.option("--admin", "admin", is_flag=True, help="May use the admin routes.")
@click.option("--name", default=None, help="A unique name [key-<hash prefix>].")
def create_key(
    config_file: Path | None, read: tuple[str, ...], write: tuple[str, ...], create: bool,
    admin: bool, name: str | None, **flags: Any,
) -> None:
    """Create a key and print its token once (only its hash is stored)."""
    rights = KeyRights(_queues(read), _queues(write), create, admin)
    settings = _settings(config_file, flags)
    token, key = _run(settings, lambda store: store.create(name, rights))
    click.echo(token)
    click.echo(f"created access key {key.name!r} (hash {key.digest[:12]}): "
               f"{json.dumps(_rights(rights))}; the token is not shown again", err=True)


@keys.command("list")
@_storage_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_keys(config_file: Path | None, as_json: bool, **flags: Any) -> None:
    """List keys: name, hash prefix, rights, creation time (never the token)."""
    found = _run(_settings(config_file, flags), lambda store: store.list())
    rows = [_describe(key) for key in found]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    for row in rows:
        click.echo(
            f"{row['name']}\t{row['hash']}\tread={','.join(row['read']) or '-'}\t"
            f"write={','.join(row['write']) or '-'}\tcreate={'yes' if row['create'] else 'no'}\t"
            f"admin={'yes' if row['admin'] else 'no'}\t{row['created']}"
        )


@keys.command("revoke")
@_storage_options
@click.argument("name_or_hash")
def revoke_key(config_file: Path | None, name_or_hash: str, **flags: Any) -> None:
    """Revoke a key by name or by hash prefix (at least 6 hex digits)."""
    key = _run(_settings(config_file, flags), lambda store: store.revoke(name_or_hash))
    click.echo(f"revoked access key {key.name!r} (hash {key.digest[:12]})", err=True)
