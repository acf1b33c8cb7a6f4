"""What the client library hands back: messages, leases, a queue's policy."""

from __future__ import annotations

from dataclasses import dataclass

from restmq.types import Message, Policy, QueueStats

__all__ = ["Lease", "Message", "QueuePolicy", "QueueStats", "Reserved"]


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
