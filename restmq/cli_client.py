"""The command-line client: ``restmq add|get|take|del|reserve|ack|nack|tail|stats|policy|
pause|resume|queues|purge`` against a running broker, through ``restmq.client``.

Output is for people by default (one message per line, tables for stats) and JSON with
``--json``. Exit status (docs/client.md): 0 done, 1 nothing there (an empty queue, a gone
message), 2 an error (the broker refused, or could not be reached, bad input); 130 when stopped
with Ctrl-C. Requests that fail for a transient reason (503, 504, the network) are repeated as
``--attempts`` and ``--retry-time`` allow (``restmq.client.retry``). ``--server`` and
``--token`` also come from ``RESTMQ_SERVER`` and ``RESTMQ_TOKEN`` (click reads them, as it
reads the flags). The commands are registered on ``restmq`` (restmq.cli) and on
``restmq-client``, which needs none of the server's dependencies.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn

import click

from restmq.client import (
    DEFAULT_SERVER,
    Client,
    Lease,
    LeaseFailure,
    Message,
    QueueStats,
    Reserved,
    Retry,
    Via,
)
from restmq.client.retry import DEFAULT_RETRY
from restmq.errors import BadRequest, MessageGone, RestMQError
from restmq.types import POLICIES, Policy

BATCH_SIZE = 1000  # messages per request of a batch add
BATCH_BYTES = 512 * 1024  # value bytes per request, well within the broker's 4 MiB body
STATS_COLUMNS = ("queue", "len", "status", "policy", "consumers", "leased", "delayed", "dead")
VIAS: dict[str, Via] = {"sse": "sse", "comet": "comet", "ws": "ws"}
CLIENT_COMMANDS: list[click.Command] = []


# ---------------------------------------------------------------------------- output


def table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A plain text table: columns padded to their widest cell, headers in capitals."""
    lines = [[h.upper() for h in headers], *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    """Prints either the human text or the JSON of an answer."""

    as_json: bool

    def show(self, human: str, data: object) -> None:
        if self.as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            click.echo(human)

    def show_lines(self, lines: list[str], data: object) -> None:
        """Like ``show``, with no line at all for no lines."""
        if self.as_json or lines:
            self.show("\n".join(lines), data)


def _plain(item: Message | Reserved | QueueStats) -> dict[str, Any]:
    """The JSON of what the client returned; a message as the API shows it (docs/client.md)."""
    if isinstance(item, Message):
        return {"queue": item.queue, "key": item.key, "value": item.value, "count": item.count}
    return dataclasses.asdict(item)


def _line(message: Message | Reserved) -> str:
    return f"{message.key}  {message.value}"


EXIT_NOTHING, EXIT_ERROR, EXIT_INTERRUPTED = 1, 2, 130


def nothing(message: str) -> NoReturn:
    """Exit 1: there was nothing to show (an empty queue, a message already gone)."""
    click.echo(f"restmq: {message}", err=True)
    sys.exit(EXIT_NOTHING)


def failed(message: str) -> NoReturn:
    """Exit 2: the broker refused, could not be reached, or the input was bad."""
    click.echo(f"restmq: {message}", err=True)
    sys.exit(EXIT_ERROR)


# ---------------------------------------------------------------------------- commands

_CLIENT_OPTIONS = [
    click.option("--server", envvar="RESTMQ_SERVER", default=DEFAULT_SERVER, show_default=True,
                 help="The broker's URL (env RESTMQ_SERVER)."),
    click.option("--token", envvar="RESTMQ_TOKEN", default=None,
                 help="An access key, sent as a Bearer token (env RESTMQ_TOKEN)."),
    click.option("--timeout", type=float, default=10.0, show_default=True,
                 help="Seconds to wait for an answer."),
    click.option("--attempts", type=click.IntRange(min=1), default=DEFAULT_RETRY.attempts,
                 show_default=True,
                 help="Tries per request when the broker is unavailable (503), cannot tell "
                 "(504) or unreachable; 1 never retries."),
    click.option("--retry-time", type=click.FloatRange(min=0), default=DEFAULT_RETRY.total,
                 show_default=True, help="Seconds after which no new try starts."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts."),
]


def client_command(
    name: str, **context: Any
) -> Callable[[Callable[..., None]], click.Command]:
    """A command that gets a connected Client and an Output before its own arguments. A
    message already gone ends it with exit status 1, any other RestMQ error with 2, Ctrl-C
    with 130. ``context``: click's context settings."""

    def decorate(func: Callable[..., None]) -> click.Command:
        @functools.wraps(func)
        def run(
            server: str, token: str | None, timeout: float, attempts: int, retry_time: float,
            as_json: bool, **args: Any,
        ) -> None:
            retry = Retry(attempts=attempts, total=retry_time)
            try:
                with Client(server, token=token, timeout=timeout, retry=retry) as client:
                    func(client, Output(as_json), **args)
            except MessageGone as exc:
                nothing(exc.message)
            except RestMQError as exc:
                failed(exc.message)
            except KeyboardInterrupt:
                sys.exit(EXIT_INTERRUPTED)

        for option in reversed(_CLIENT_OPTIONS):
            run = option(run)
        command = click.command(name, context_settings=context)(run)
        CLIENT_COMMANDS.append(command)
        return command

    return decorate


@client_command("add")
@click.argument("queue")
@click.argument("value", required=False)
@click.option("--file", "source", type=click.File("rb"), default=None,
              help="Add every line of this file as a message ('-' for stdin), in batches.")
@click.option("--ttl", type=float, default=None, help="Seconds before the message expires.")
@click.option("--delay", type=float, default=None, help="Seconds before it becomes visible.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=BATCH_SIZE,
              show_default=True, help="Messages per request with --file.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar with --file [when stderr is a terminal].")
@click.option("--idempotency-key", default=None,
              help="Sent as Idempotency-Key: the same command run again within the broker's "
              "window adds nothing (with --file, '<key>-<n>' for the n-th batch) [a fresh "
              "random key per request].")
def add(
    client: Client, out: Output, queue: str, value: str | None, source: IO[bytes] | None,
    ttl: float | None, delay: float | None, batch_size: int, progress: bool | None,
    idempotency_key: str | None,
) -> None:
    """Add VALUE to QUEUE, or every line of --file (one message per line)."""
    if (value is None) == (source is None):
        raise click.UsageError("give either a VALUE or --file")
    if value is not None:
        key = client.add(queue, value, ttl=ttl, delay=delay, idempotency_key=idempotency_key)
        out.show(key, {"queue": queue, "key": key})
        return
    assert source is not None
    show = sys.stderr.isatty() if progress is None else progress
    keys = add_lines(client, queue, source, batch_size, show, idempotency_key,
                     ttl=ttl, delay=delay)
    span = f" ({keys[0]} … {keys[-1]})" if keys else ""
    out.show(f"added {len(keys)} messages to {queue}{span}", {"queue": queue, "keys": keys})


def add_lines(
    client: Client, queue: str, source: IO[bytes], batch_size: int, show: bool,
    idempotency_key: str | None = None, **options: Any,
) -> list[str]:
    """Send every line of ``source`` in batches; returns the keys, in order. With an
    ``idempotency_key``, batch n carries ``<key>-<n>``: a run again adds nothing twice."""
    keys: list[str] = []
    with progress_bar(show, input_size(source)) as advance:
        for number, (values, size) in enumerate(batches(source, batch_size, BATCH_BYTES), 1):
            once = None if idempotency_key is None else f"{idempotency_key}-{number}"
            keys += client.add(queue, values, idempotency_key=once, **options)
            advance(len(values), size)
    return keys


def input_size(source: IO[bytes]) -> int | None:
    """The byte size of a regular file (stdin redirected from one too); None for a pipe."""
    try:
        stat = os.fstat(source.fileno())
    except (OSError, ValueError):
        return None
    return stat.st_size if stat.st_size > 0 else None


def batches(lines: Iterable[bytes], count: int, max_bytes: int) -> Iterator[tuple[list[str], int]]:
    """Lines as UTF-8 values, without their line ending, grouped by up to ``count`` values and
    about ``max_bytes``; each group comes with the input bytes it used."""
    values: list[str] = []
    size = 0
    for number, line in enumerate(lines, 1):
        values.append(_decode(line, number))
        size += len(line)
        if len(values) >= count or size >= max_bytes:
            yield values, size
            values, size = [], 0
    if values:
        yield values, size


def _decode(line: bytes, number: int) -> str:
    try:
        return line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"line {number} is not valid UTF-8") from None


@contextmanager
def progress_bar(show: bool, total: int | None) -> Iterator[Callable[[int, int], None]]:
    """``advance(messages, nbytes)``: a bar over the input's bytes when its size is known, a
    message counter otherwise; nothing at all when not shown."""
    if not show:
        yield lambda messages, nbytes: None
    elif total is None:
        sent = 0

        def count(messages: int, nbytes: int) -> None:
            nonlocal sent
            sent += messages
            click.echo(f"\r{sent} messages sent", nl=False, err=True)

        yield count
        click.echo(err=True)
    else:
        with click.progressbar(length=total, label="adding", file=sys.stderr) as bar:
            yield lambda messages, nbytes: bar.update(nbytes)


@client_command("get")
@click.argument("queue")
def get(client: Client, out: Output, queue: str) -> None:
    """Show QUEUE's oldest message without taking it (its count grows by one)."""
    message = client.get(queue)
    if message is None:
        nothing(f"queue {queue!r} is empty")
    out.show(f"{_line(message)}  (count {message.count})", _plain(message))


@client_command("take")
@click.argument("queue")
@click.option("--count", "-n", type=click.IntRange(1, 1000), default=None,
              help="Take up to this many.")
@click.option("--wait", type=float, default=0.0, help="Seconds to wait for a message.")
def take(client: Client, out: Output, queue: str, count: int | None, wait: float) -> None:
    """Take (remove and show) QUEUE's oldest message, or up to --count."""
    found = client.take(queue, count=count or 1, wait=wait)
    if not found:
        nothing(f"queue {queue!r} is empty")
    data = [_plain(m) for m in found]
    out.show("\n".join(_line(m) for m in found), data if count else data[0])


@client_command("del")
@click.argument("queue")
@click.argument("key")
def delete(client: Client, out: Output, queue: str, key: str) -> None:
    """Delete the message KEY of QUEUE, waiting or leased."""
    deleted = client.delete(queue, key)
    if not deleted:
        nothing(f"no such message: {key}")
    out.show(f"deleted {key}", {"queue": queue, "key": key, "deleted": True})


@client_command("reserve")
@click.argument("queue")
@click.option("--visibility", type=float, default=None,
              help="Seconds the lease lasts, the API's 'timeout' [the broker's default, 30].")
@click.option("--count", "-n", type=click.IntRange(1, 1000), default=None,
              help="Reserve up to this many.")
@click.option("--wait", type=float, default=0.0, help="Seconds to wait for a message.")
def reserve(
    client: Client, out: Output, queue: str, visibility: float | None, count: int | None,
    wait: float,
) -> None:
    """Lease QUEUE's oldest message (or up to --count); ack it with its key and receipt."""
    found = client.reserve(queue, count=count or 1, timeout=visibility, wait=wait)
    if not found:
        nothing(f"queue {queue!r} is empty")
    rows = [(r.key, r.deliveries, r.receipt, r.value) for r in found]
    data = [_plain(r) for r in found]
    out.show(table(("key", "deliveries", "receipt", "value"), rows), data if count else data[0])


# A receipt may begin with "-": taken as an argument, not as an unknown option.
RECEIPT_COMMAND = {"ignore_unknown_options": True}
LEASES_HELP = ("Settle the leases in this file ('-' for stdin) in batches: what `reserve "
               "--json` prints (an object, a list, or one object per line).")


def read_leases(queue: str, source: IO[bytes]) -> list[Lease]:
    """The leases of QUEUE in a JSON text: an object, a list of them, or one per line, each
    with ``key`` and ``receipt`` (what ``restmq reserve --json`` prints)."""
    text = source.read().decode("utf-8", "replace")
    try:
        found = json.loads(text)
    except ValueError:
        found = [_json_line(line, n) for n, line in enumerate(text.splitlines(), 1) if line]
    items = found if isinstance(found, list) else [found]
    if not all(_is_lease(item) for item in items):
        raise BadRequest("each lease must be a JSON object with a string 'key' and 'receipt'")
    return [Lease(queue, item["key"], item["receipt"]) for item in items]


def _json_line(line: str, number: int) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise BadRequest(f"line {number} is not JSON") from None


def _is_lease(item: Any) -> bool:
    return isinstance(item, dict) and all(isinstance(item.get(f), str) for f in ("key", "receipt"))


def one_lease(queue: str, key: str | None, receipt: str | None, source: IO[bytes] | None) -> Lease:
    """The lease of KEY and RECEIPT; a usage error unless exactly they or --file are given."""
    pair = key is not None and receipt is not None
    if (source is None) != pair or (source is not None and key is not None):
        raise click.UsageError("give either KEY and RECEIPT or --file")
    return Lease(queue, key or "", receipt or "")


def settled(failures: list[LeaseFailure]) -> None:
    """Report the leases a batch could not settle; exit 1 when they were all gone, 2 when
    any was refused otherwise (see docs/client.md)."""
    for failure in failures:
        click.echo(f"restmq: {failure.error}", err=True)
    if any(not f.error.startswith("no such message") for f in failures):
        sys.exit(EXIT_ERROR)
    if failures:
        sys.exit(EXIT_NOTHING)


def _failed_json(failures: list[LeaseFailure]) -> list[dict[str, str]]:
    return [{"key": f.key, "error": f.error} for f in failures]


@client_command("ack", **RECEIPT_COMMAND)
@click.argument("queue")
@click.argument("key", required=False)
@click.argument("receipt", required=False)
@click.option("--file", "source", type=click.File("rb"), default=None, help=LEASES_HELP)
def ack(
    client: Client, out: Output, queue: str, key: str | None, receipt: str | None,
    source: IO[bytes] | None,
) -> None:
    """Acknowledge the leased message KEY of QUEUE (it is deleted), or every lease of --file."""
    lease = one_lease(queue, key, receipt, source)
    if source is None:
        client.ack(lease)
        out.show(f"acked {lease.key}", {"queue": queue, "key": lease.key, "acked": True})
        return
    result = client.ack_many(read_leases(queue, source))
    human = [f"acked {k}" for k in result.acked]
    data = {"queue": queue, "acked": result.acked, "failed": _failed_json(result.failed)}
    out.show_lines(human, data)
    settled(result.failed)


@client_command("nack", **RECEIPT_COMMAND)
@click.argument("queue")
@click.argument("key", required=False)
@click.argument("receipt", required=False)
@click.option("--delay", type=float, default=None, help="Seconds before it is visible again.")
@click.option("--file", "source", type=click.File("rb"), default=None, help=LEASES_HELP)
def nack(
    client: Client, out: Output, queue: str, key: str | None, receipt: str | None,
    delay: float | None, source: IO[bytes] | None,
) -> None:
    """Give the leased message KEY back to QUEUE (or to its dead letters), or every lease of
    --file."""
    lease = one_lease(queue, key, receipt, source)
    if source is None:
        outcome = client.nack(lease, delay)
        out.show(f"{lease.key} {outcome}", {"queue": queue, "key": lease.key, "outcome": outcome})
        return
    result = client.nack_many(read_leases(queue, source), delay)
    nacked = [{"key": k, "outcome": outcome} for k, outcome in result.nacked.items()]
    human = [f"{k} {outcome}" for k, outcome in result.nacked.items()]
    out.show_lines(human, {"queue": queue, "nacked": nacked, "failed": _failed_json(result.failed)})
    settled(result.failed)


@client_command("tail")
@click.argument("queue")
@click.option("--follow", "-f", is_flag=True,
              help="Keep streaming until Ctrl-C (the default; --count stops earlier).")
@click.option("--count", "-n", type=click.IntRange(min=1), default=None,
              help="Stop after this many messages.")
@click.option("--via", type=click.Choice(["sse", "comet", "ws"]), default="sse",
              show_default=True, help="The streaming transport.")
def tail(
    client: Client, out: Output, queue: str, follow: bool, count: int | None, via: str
) -> None:
    """Stream QUEUE's messages as the broker delivers them (it consumes them, as any
    streaming consumer does); reconnects by itself."""
    for received, message in enumerate(client.stream(queue, VIAS[via]), 1):
        out.show(_line(message), {"key": message.key, "value": message.value})
        if received == count:
            return


@client_command("stats")
@click.argument("queue", required=False)
def stats(client: Client, out: Output, queue: str | None) -> None:
    """The counts of every queue (every page of the broker's listing), or of QUEUE."""
    found = client.stats() if queue is None else {queue: client.stats(queue)}
    rows = [(s.name, s.len, s.status, s.policy, s.consumers, s.leased, s.delayed, s.dead)
            for s in found.values()]
    data = {name: _plain(s) for name, s in found.items()}
    out.show(table(STATS_COLUMNS, rows), data if queue is None else data[queue])


@client_command("policy")
@click.argument("queue")
@click.argument("policy", required=False, type=click.Choice(POLICIES))
@click.option("--max-deliveries", type=click.IntRange(min=0), default=None,
              help="Leases before a message goes to <queue>:dead (0: no limit).")
def policy(
    client: Client, out: Output, queue: str, policy: Policy | None, max_deliveries: int | None
) -> None:
    """Show QUEUE's policy, or set it (broadcast or roundrobin) and/or --max-deliveries."""
    if policy is None and max_deliveries is None:
        found = client.policy(queue)
    else:
        found = client.set_policy(queue, policy, max_deliveries)
    limit = f" (max_deliveries {found.max_deliveries})" if found.max_deliveries else ""
    out.show(f"{queue}: {found.policy}{limit}", dataclasses.asdict(found))


@client_command("pause")
@click.argument("queue")
def pause(client: Client, out: Output, queue: str) -> None:
    """Stop delivering QUEUE to streaming consumers; messages accumulate."""
    client.pause(queue)
    out.show(f"{queue} paused", {"queue": queue, "status": "stopped"})


@client_command("resume")
@click.argument("queue")
def resume(client: Client, out: Output, queue: str) -> None:
    """Deliver QUEUE again, its backlog first."""
    client.resume(queue)
    out.show(f"{queue} resumed", {"queue": queue, "status": "started"})


@client_command("queues")
def queues(client: Client, out: Output) -> None:
    """The names of every queue, in name order (every page of the broker's listing)."""
    names = client.queues()
    out.show("\n".join(names), names)


@client_command("purge")
@click.argument("queue")
@click.confirmation_option(prompt="Remove every message of the queue?")
def purge(client: Client, out: Output, queue: str) -> None:
    """Remove QUEUE whole: its messages, leases and counters (asks first; --yes does not)."""
    removed = client.purge(queue)
    out.show(f"purged {queue}: {removed} messages", {"queue": queue, "purged": removed})


@click.group(name="restmq-client")
@click.version_option(package_name="restmq")
def client_main() -> None:
    """RestMQ's command-line client alone: the same commands as `restmq add|take|…`, for an
    install without the server's dependencies."""


for _command in CLIENT_COMMANDS:
    client_main.add_command(_command)
