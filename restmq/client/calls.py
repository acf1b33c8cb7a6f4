"""The client's requests and the reading of their answers, with no I/O.

Every operation is a ``Call``: what to send (method, path, JSON body, query, headers) and how
to read the answer into a value. ``Client`` and ``AsyncClient`` only move a Call over HTTP and
hand the ``Answer`` to ``finish``, so both share every rule written here: the routes of
docs/api.md, the shapes of their answers, and the mapping of error statuses onto
``restmq.errors`` (one table, ``ERRORS``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from restmq.client.models import (
    AckResult,
    Lease,
    LeaseFailure,
    Message,
    NackResult,
    QueuePolicy,
    QueueStats,
    Reserved,
)
from restmq.errors import (
    BadRequest,
    Forbidden,
    IdempotencyConflict,
    MessageGone,
    MessageTooLarge,
    NotFound,
    NotLeased,
    OutcomeUnknown,
    RestMQError,
    StaleReceipt,
    StorageUnavailable,
    Unauthorized,
    UnexpectedAnswer,
)
from restmq.protocol.names import check_queue
from restmq.types import POLICIES, NackOutcome, Policy, Status

T = TypeVar("T")
S = TypeVar("S", bound=str)
JSONObject = dict[str, Any]
STATUSES: tuple[Status, ...] = ("started", "stopped")
OUTCOMES: tuple[NackOutcome, ...] = ("requeued", "delayed", "dead")
EMPTY_QUEUE = "empty queue"  # the JSON protocol's answer when there is nothing to give
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_SETTLE = 1000  # leases per batch ack or nack request (the broker's limit)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the broker answered: the status, the body's text and the Retry-After header."""

    status: int
    text: str
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and the function that reads its answer.

    ``wait`` is how long the broker may hold the request on purpose (long polling); the
    client adds it to its timeout. ``queue`` and ``key`` name what an error is about.
    ``repeatable``: whether the call may be made again when an attempt's outcome is unknown
    (a 504, a connection lost after sending; see ``restmq.client.retry``). ``settled``: the
    call's value when a retry finds the message gone that an earlier attempt may have removed
    (an ack); None: that is a ``MessageGone`` like any other.
    """

    method: str
    path: str
    read: Callable[[Answer], T]
    body: JSONObject | None = None
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    wait: float = 0.0
    queue: str = ""
    key: str = ""
    repeatable: bool = True
    settled: Callable[[], T] | None = None


def finish(call: Call[T], answer: Answer) -> T:
    """The value of a call's answer, or the RestMQ error that its status means."""
    if answer.status >= 400:
        raise error_for(answer, call.queue, call.key)
    return call.read(answer)


# ---------------------------------------------------------------------------- errors


def _not_found(message: str, queue: str, key: str) -> RestMQError:
    """A 404 about one message means that message is gone; otherwise the route is unknown."""
    return MessageGone(queue, key) if key else NotFound(message)


def _conflict(message: str, queue: str, key: str) -> RestMQError:
    """A 409 about a lease: the message is not leased at all, or the receipt is not its
    lease's; the broker's message says which."""
    kind = NotLeased if message.endswith("is not leased") else StaleReceipt
    return kind(queue, key, message)


ERRORS: dict[int, Callable[[str, str, str], RestMQError]] = {
    400: lambda message, queue, key: BadRequest(message),
    401: lambda message, queue, key: Unauthorized(message),
    403: lambda message, queue, key: Forbidden(message),
    404: _not_found,
    409: _conflict,
    413: lambda message, queue, key: MessageTooLarge(message),
    422: lambda message, queue, key: IdempotencyConflict(queue),
    503: lambda message, queue, key: StorageUnavailable(message),
    504: lambda message, queue, key: OutcomeUnknown(message),
}


def error_for(answer: Answer, queue: str = "", key: str = "") -> RestMQError:
    """The RestMQ error that an error answer means (an unknown status: UnexpectedAnswer).

    ``queue`` and ``key`` say what the request was about, for the errors that carry them.
    """
    message = error_message(answer)
    make = ERRORS.get(answer.status)
    if make is None:
        return UnexpectedAnswer(answer.status, message)
    error = make(message, queue, key)
    if isinstance(error, StorageUnavailable | OutcomeUnknown):
        retry_after = (answer.retry_after or "").strip()
        error.retry_after = int(retry_after) if retry_after.isdigit() else 0
    return error


def error_message(answer: Answer) -> str:
    """The ``error`` of a JSON error body, or the body's text."""
    try:
        body = json.loads(answer.text)
    except ValueError:
        return answer.text.strip() or f"status {answer.status}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return answer.text.strip()


# ---------------------------------------------------------------------------- reading


def _json(answer: Answer) -> JSONObject:
    try:
        body = json.loads(answer.text)
    except ValueError:
        raise UnexpectedAnswer(answer.status, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise UnexpectedAnswer(answer.status, "the body is not a JSON object")
    return body


def _get(obj: JSONObject, name: str, kind: type[T]) -> T:
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UnexpectedAnswer(200, f"{name!r} is missing or not a {kind.__name__}")
    return value


def _choice(obj: JSONObject, name: str, allowed: tuple[S, ...]) -> S:
    value = obj.get(name)
    for choice in allowed:
        if value == choice:
            return choice
    raise UnexpectedAnswer(200, f"{name!r} is not one of {', '.join(allowed)}")


def _list(obj: JSONObject, name: str) -> list[Any]:
    return _get(obj, name, list)


def _objects(obj: JSONObject, name: str) -> list[JSONObject]:
    items = _list(obj, name)
    if not all(isinstance(item, dict) for item in items):
        raise UnexpectedAnswer(200, f"{name!r} must hold JSON objects")
    return items


def _strings(obj: JSONObject, name: str) -> list[str]:
    items = _list(obj, name)
    if not all(isinstance(item, str) for item in items):
        raise UnexpectedAnswer(200, f"{name!r} must hold strings")
    return items


def message_of(queue: str, obj: JSONObject) -> Message:
    """A message from ``{"key", "value"[, "count"]}``."""
    count = obj.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool):
        raise UnexpectedAnswer(200, "'count' is not an int")
    return Message(queue, _get(obj, "key", str), _get(obj, "value", str), count)


def reserved_of(queue: str, obj: JSONObject) -> Reserved:
    """A leased message from ``{"key", "value", "receipt", "deliveries"}``."""
    return Reserved(
        queue,
        _get(obj, "key", str),
        _get(obj, "receipt", str),
        _get(obj, "value", str),
        _get(obj, "deliveries", int),
    )


def stats_of(obj: JSONObject) -> QueueStats:
    """A queue's counts from the JSON of ``/stats`` (SPEC §3.5)."""
    return QueueStats(
        name=_get(obj, "name", str),
        len=_get(obj, "len", int),
        status=_choice(obj, "status", STATUSES),
        policy=_choice(obj, "policy", POLICIES),
        leased=_get(obj, "leased", int),
        delayed=_get(obj, "delayed", int),
        dead=_get(obj, "dead", int),
        consumers=_get(obj, "consumers", int),
    )


def _command_answer(answer: Answer) -> JSONObject | None:
    """A JSON-protocol answer: None for an empty queue; a command error is a BadRequest."""
    obj = _json(answer)
    error = obj.get("error")
    if error == EMPTY_QUEUE:
        return None
    if isinstance(error, str):
        raise BadRequest(error)
    return obj


# ---------------------------------------------------------------------------- requests


def queue_path(prefix: str, queue: str, suffix: str = "") -> str:
    """``/q/<queue>`` and the like, the name percent-encoded (dots too, which URL
    normalisation would otherwise eat from a queue named ``..``). An invalid name is an
    InvalidQueueName before anything is sent."""
    return prefix + quote(check_queue(queue), safe="").replace(".", "%2E") + suffix


def _options(**values: float | int | str | None) -> JSONObject:
    return {name: value for name, value in values.items() if value is not None}


def _number(value: float) -> str:
    return f"{value:g}"


def new_idempotency_key() -> str:
    """A fresh random ``Idempotency-Key``: one per produce call, kept across its retries."""
    return secrets.token_urlsafe(18)


def _once(idempotency_key: str | None) -> dict[str, str]:
    return {IDEMPOTENCY_HEADER: idempotency_key or new_idempotency_key()}


def add(
    queue: str,
    value: str,
    ttl: float | None,
    delay: float | None,
    idempotency_key: str | None = None,
) -> Call[str]:
    """Add one message; the Idempotency-Key makes its retries add it once (a fresh one when
    None)."""

    def read(answer: Answer) -> str:
        key = answer.text.strip()
        if answer.status != 200 or not key:
            raise UnexpectedAnswer(answer.status, "no message key in the answer")
        return key

    body = _options(value=value, ttl=ttl, delay=delay)
    path, headers = queue_path("/q/", queue), _once(idempotency_key)
    return Call("POST", path, read, body=body, headers=headers, queue=queue)


def add_many(
    queue: str,
    values: list[str],
    ttl: float | None,
    delay: float | None,
    idempotency_key: str | None = None,
) -> Call[list[str]]:
    """Add a batch in one request, under one Idempotency-Key."""

    def read(answer: Answer) -> list[str]:
        return _strings(_json(answer), "keys")

    body = {"values": values, **_options(ttl=ttl, delay=delay)}
    path, headers = queue_path("/q/", queue), _once(idempotency_key)
    return Call("POST", path, read, body=body, headers=headers, queue=queue)


def get(queue: str) -> Call[Message | None]:
    def read(answer: Answer) -> Message | None:
        obj = _command_answer(answer)
        return None if obj is None else message_of(queue, obj)

    return Call("POST", "/queue", read, body={"cmd": "get", "queue": queue}, queue=queue)


def _take_query(count: int | None, wait: float) -> dict[str, str]:
    query = {"wait": _number(wait)} if wait else {}
    if count is not None:
        query["count"] = str(count)
    return query


def take(queue: str, wait: float) -> Call[Message | None]:
    def read(answer: Answer) -> Message | None:
        return None if answer.status == 204 else message_of(queue, _json(answer))

    path, query = queue_path("/q/", queue), _take_query(None, wait)
    return Call("GET", path, read, query=query, wait=wait, queue=queue, repeatable=False)


def take_many(queue: str, count: int, wait: float) -> Call[list[Message]]:
    def read(answer: Answer) -> list[Message]:
        if answer.status == 204:
            return []
        return [message_of(queue, obj) for obj in _objects(_json(answer), "messages")]

    path, query = queue_path("/q/", queue), _take_query(count, wait)
    return Call("GET", path, read, query=query, wait=wait, queue=queue, repeatable=False)


def delete(queue: str, key: str) -> Call[bool]:
    def read(answer: Answer) -> bool:
        obj = _command_answer(answer)
        return obj is not None and _get(obj, "deleted", bool)

    body = {"cmd": "del", "queue": queue, "key": key}
    return Call("POST", "/queue", read, body=body, queue=queue)


def reserve(queue: str, timeout: float | None, wait: float) -> Call[Reserved | None]:
    def read(answer: Answer) -> Reserved | None:
        return None if answer.status == 204 else reserved_of(queue, _json(answer))

    body = _options(timeout=timeout, wait=wait or None)
    path = queue_path("/q/", queue, "/reserve")
    return Call("POST", path, read, body=body, wait=wait, queue=queue)


def reserve_many(
    queue: str, count: int, timeout: float | None, wait: float
) -> Call[list[Reserved]]:
    def read(answer: Answer) -> list[Reserved]:
        if answer.status == 204:
            return []
        return [reserved_of(queue, obj) for obj in _objects(_json(answer), "messages")]

    body = _options(count=count, timeout=timeout, wait=wait or None)
    path = queue_path("/q/", queue, "/reserve")
    return Call("POST", path, read, body=body, wait=wait, queue=queue)


def _lease_call(
    lease: Lease,
    action: str,
    read: Callable[[Answer], T],
    settled: Callable[[], T] | None = None,
    **extra: float,
) -> Call[T]:
    body = {"key": lease.key, "receipt": lease.receipt, **extra}
    path = queue_path("/q/", lease.queue, f"/{action}")
    return Call("POST", path, read, body=body, queue=lease.queue, key=lease.key, settled=settled)


def _acked() -> None:
    return None


def ack(lease: Lease) -> Call[None]:
    """Acknowledge a lease; gone after an attempt of unknown outcome counts as done."""

    def read(answer: Answer) -> None:
        _get(_json(answer), "acked", bool)

    return _lease_call(lease, "ack", read, _acked)


def nack(lease: Lease, delay: float | None) -> Call[NackOutcome]:
    def read(answer: Answer) -> NackOutcome:
        return _choice(_json(answer), "outcome", OUTCOMES)

    return _lease_call(lease, "nack", read, **_options(delay=delay))


def extend(lease: Lease, timeout: float | None) -> Call[float]:
    def read(answer: Answer) -> float:
        value = _json(answer).get("timeout")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise UnexpectedAnswer(answer.status, "'timeout' is not a number")
        return float(value)

    return _lease_call(lease, "extend", read, **_options(timeout=timeout))


def _failures(queue: str, obj: JSONObject) -> list[LeaseFailure]:
    return [
        LeaseFailure(queue, _get(item, "key", str), _get(item, "error", str))
        for item in _objects(obj, "failed")
    ]


def _lease_entries(leases: Sequence[Lease]) -> list[JSONObject]:
    return [{"key": lease.key, "receipt": lease.receipt} for lease in leases]


def ack_many(queue: str, leases: Sequence[Lease]) -> Call[AckResult]:
    """Acknowledge up to MAX_SETTLE leases of one queue in one request."""

    def read(answer: Answer) -> AckResult:
        obj = _json(answer)
        return AckResult(_strings(obj, "acked"), _failures(queue, obj))

    body = {"messages": _lease_entries(leases)}
    return Call("POST", queue_path("/q/", queue, "/ack"), read, body=body, queue=queue)


def nack_many(queue: str, leases: Sequence[Lease], delay: float | None) -> Call[NackResult]:
    """Give up to MAX_SETTLE leases of one queue back in one request."""

    def read(answer: Answer) -> NackResult:
        obj = _json(answer)
        nacked = {
            _get(item, "key", str): _choice(item, "outcome", OUTCOMES)
            for item in _objects(obj, "nacked")
        }
        return NackResult(nacked, _failures(queue, obj))

    body = {"messages": _lease_entries(leases), **_options(delay=delay)}
    return Call("POST", queue_path("/q/", queue, "/nack"), read, body=body, queue=queue)


def by_queue(leases: Sequence[Lease], size: int = MAX_SETTLE) -> list[tuple[str, list[Lease]]]:
    """Leases grouped by queue, in their order, in chunks of at most ``size``: one batch
    request each."""
    groups: dict[str, list[Lease]] = {}
    for lease in leases:
        groups.setdefault(lease.queue, []).append(lease)
    return [
        (queue, group[i : i + size])
        for queue, group in groups.items()
        for i in range(0, len(group), size)
    ]


def joined_acks(results: Sequence[AckResult]) -> AckResult:
    """The results of several ack_many requests as one."""
    return AckResult([k for r in results for k in r.acked], [f for r in results for f in r.failed])


def joined_nacks(results: Sequence[NackResult]) -> NackResult:
    """The results of several nack_many requests as one."""
    nacked = {key: outcome for r in results for key, outcome in r.nacked.items()}
    return NackResult(nacked, [f for r in results for f in r.failed])


def _policy_of(queue: str) -> Callable[[Answer], QueuePolicy]:
    def read(answer: Answer) -> QueuePolicy:
        obj = _json(answer)
        limit = obj.get("max_deliveries")
        limit = limit if isinstance(limit, int) and limit > 0 else None
        return QueuePolicy(queue, _choice(obj, "value", POLICIES), limit)

    return read


def policy(queue: str) -> Call[QueuePolicy]:
    return Call("GET", queue_path("/p/", queue), _policy_of(queue), queue=queue)


def set_policy(
    queue: str, policy: Policy | None, max_deliveries: int | None
) -> Call[QueuePolicy]:
    body = _options(policy=policy, max_deliveries=max_deliveries)
    return Call("POST", queue_path("/p/", queue), _policy_of(queue), body=body, queue=queue)


def control(queue: str, status: str) -> Call[None]:
    def read(answer: Answer) -> None:
        _get(_json(answer), "stat", dict)

    body = {"status": status}
    return Call("POST", queue_path("/control/", queue), read, body=body, queue=queue)


def stats(queue: str) -> Call[QueueStats]:
    def read(answer: Answer) -> QueueStats:
        return stats_of(_json(answer))

    return Call("GET", queue_path("/stats/", queue), read, queue=queue)


# ---------------------------------------------------------------------------- listings
#
# ``GET /q/`` and ``GET /stats/`` answer a page of queues at a time (docs/api.md#listings):
# ``next``, present when more queues follow, is the ``after`` of the next page. A listing is
# a ``Walk``: the call of each page in turn, until a page has no ``next``.


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: its items, and the cursor of the next page (None: the last)."""

    items: list[T]
    next: str | None = None


def _cursor(obj: JSONObject, after: str) -> str | None:
    """The ``next`` of a page (None on the last page, and from a broker that does not page).
    A cursor that does not move forward would walk for ever: an UnexpectedAnswer."""
    cursor = obj.get("next")
    if cursor is None:
        return None
    if not isinstance(cursor, str) or cursor <= after:
        raise UnexpectedAnswer(200, f"'next' is not a queue name after {after!r}")
    return cursor


def _page_query(after: str, limit: int | None) -> dict[str, str]:
    query = {"after": after} if after else {}
    if limit is not None:
        query["limit"] = str(limit)
    return query


def stats_page(after: str = "", limit: int | None = None) -> Call[Page[QueueStats]]:
    """One page of ``GET /stats/``: the queues after ``after``, at most ``limit`` (the
    broker's default, 1000, when None)."""

    def read(answer: Answer) -> Page[QueueStats]:
        obj = _json(answer)
        queues = _get(obj, "queues", dict)
        found = [stats_of(stats) for stats in queues.values() if isinstance(stats, dict)]
        return Page(found, _cursor(obj, after))

    return Call("GET", "/stats/", read, query=_page_query(after, limit))


def queue_page(after: str = "", limit: int | None = None) -> Call[Page[str]]:
    """One page of ``GET /q/`` (its JSON): the names after ``after``, at most ``limit``."""

    def read(answer: Answer) -> Page[str]:
        obj = _json(answer)
        return Page(_strings(obj, "queues"), _cursor(obj, after))

    query, headers = _page_query(after, limit), {"Accept": "application/json"}
    return Call("GET", "/q/", read, query=query, headers=headers)


@dataclass(slots=True)
class Walk(Generic[T]):
    """Every page of a listing, in order: ``first()`` is the call of the first page; give each
    page read to ``then``, which answers the call of the next one, or None after the last.
    ``items`` gathers the pages' items meanwhile.

    ``page(after, limit)`` makes the call of one page (``queue_page``, ``stats_page``).
    """

    page: Callable[[str, int | None], Call[Page[T]]]
    limit: int | None = None
    items: list[T] = field(default_factory=list)

    def first(self) -> Call[Page[T]]:
        return self.page("", self.limit)

    def then(self, page: Page[T]) -> Call[Page[T]] | None:
        self.items += page.items
        return None if page.next is None else self.page(page.next, self.limit)


def purge(queue: str) -> Call[int]:
    def read(answer: Answer) -> int:
        return _get(_json(answer), "purged", int)

    return Call("DELETE", queue_path("/q/", queue), read, queue=queue)
