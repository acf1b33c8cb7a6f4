"""RestMQ: a message broker that speaks HTTP and keeps its data in Redis.

The public surface: the client library, the settings object and the error tree. The clients
are imported on first use, so that ``import restmq`` (as the server does) needs neither httpx
nor websockets, and ``import restmq.client`` needs none of the server's dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restmq.config import Settings
from restmq.errors import (
    BadRequest,
    ClientError,
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

if TYPE_CHECKING:
    from restmq.client import AsyncClient, Client

_CLIENTS = ("AsyncClient", "Client")

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "Forbidden",
    "IdempotencyConflict",
    "MessageGone",
    "MessageTooLarge",
    "NotFound",
    "NotLeased",
    "OutcomeUnknown",
    "RestMQError",
    "Settings",
    "StaleReceipt",
    "StorageUnavailable",
    "Unauthorized",
    "UnexpectedAnswer",
]


def __getattr__(name: str) -> Any:
    if name in _CLIENTS:
        import restmq.client

        return getattr(restmq.client, name)
    raise AttributeError(f"module 'restmq' has no attribute {name!r}")
