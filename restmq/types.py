"""Wire shapes and small value types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

Policy = Literal["broadcast", "roundrobin"]
Status = Literal["started", "stopped"]
POLICIES: tuple[Policy, ...] = ("broadcast", "roundrobin")


@dataclass(frozen=True, slots=True)
class Message:
    """A message as a consumer sees it: its key, its value and its soft-get count; a taken
    one also carries what undoing the take restores (its TTL end in ms, -1 for none, and
    its delivery count)."""

    queue: str
    key: str
    value: str
    count: int = 0
    expires_ms: int = -1
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class Reserved:
    """A leased message: it returns to the queue unless acknowledged before its deadline."""

    queue: str
    key: str
    value: str
    receipt: str
    deliveries: int
    deadline_ms: int


NackOutcome = Literal["requeued", "delayed", "dead"]


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The counts of one queue, read in one atomic step."""

    name: str
    len: int
    status: Status
    policy: Policy
    leased: int
    delayed: int
    dead: int
    consumers: int = 0


class QueueStatsJSON(TypedDict):
    name: str
    len: int
    status: Status
    policy: Policy
    consumers: int
    leased: int
    delayed: int
    dead: int


def stats_json(stats: QueueStats) -> QueueStatsJSON:
    """The JSON shape of a queue's stats (SPEC §3.5)."""
    return {
        "name": stats.name,
        "len": stats.len,
        "status": stats.status,
        "policy": stats.policy,
        "consumers": stats.consumers,
        "leased": stats.leased,
        "delayed": stats.delayed,
        "dead": stats.dead,
    }
