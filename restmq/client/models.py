"""What the client library hands back: messages, leases, a queue's policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from restmq.types import Message, NackOutcome, Policy, QueueStats

__all__ = [
    "AckResult",
    "Lease",
    "LeaseFailure",
    "Message",
    "NackResult",
    "QueuePolicy",
    "QueueStats",
    "Reserved",
]


@dataclass(frozen=True, slots=True)
class Lease:
    """The handle of a leased message: all that ``ack``, ``nack`` and ``extend`` need."""

    queue: str
    key: str
    receipt: str


@dataclass(frozen=True, slots=True)
class Reserved(Lease):
    """A message leased by ``reserve``: it returns to its queue unless acknowledged in time.

    ``deliveries`` counts the leases of this message so far, this one included.
    """

    value: str
    deliveries: int


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """How a queue delivers to streaming consumers, and its dead-letter limit (None: no limit)."""

    queue: str
    policy: Policy
    max_deliveries: int | None = None


@dataclass(frozen=True, slots=True)
class LeaseFailure:
    """A lease that a batch could not settle, and why, in the broker's words (the message is
    gone, the receipt is wrong or expired, the message is not leased, the key is not one of
    the queue's). Nothing changed for it."""

    queue: str
    key: str
    error: str


@dataclass(frozen=True, slots=True)
class AckResult:
    """What ``ack_many`` did: the keys acknowledged (deleted), in order, and the failures."""

    acked: list[str] = field(default_factory=list)
    failed: list[LeaseFailure] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NackResult:
    """What ``nack_many`` did: where each message given back went, by key, and the failures."""

    nacked: dict[str, NackOutcome] = field(default_factory=dict)
    failed: list[LeaseFailure] = field(default_factory=list)
