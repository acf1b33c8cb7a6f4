"""Deliveries written to a connection whose bytes have not all left this machine yet.

A transport keeps a roundrobin delivery here from its write until the connection's byte
counts (``restmq.http.wire``) show it sent; only then is it settled. If the connection is
aborted first, what is still here goes back to the queue. Entries are in write order, and
bytes leave a connection in that order, so the sent ones are always at the front.
"""

from __future__ import annotations

from collections import deque

from restmq.delivery.consumer import Delivery


class InFlight:
    """Written deliveries, each with the connection offset of its last byte and its time."""

    def __init__(self) -> None:
        self._entries: deque[tuple[int, float, Delivery]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, delivery: Delivery, end: int, written_at: float) -> None:
        """``delivery``'s last byte is at offset ``end``; it was written at ``written_at``."""
        self._entries.append((end, written_at, delivery))

    def sent(self, upto: int) -> list[Delivery]:
        """Remove and return the deliveries whose bytes are all within the first ``upto``."""
        done = []
        while self._entries and self._entries[0][0] <= upto:
            done.append(self._entries.popleft()[2])
        return done

    def oldest(self) -> float | None:
        """When the oldest delivery still here was written (None when empty)."""
        return self._entries[0][1] if self._entries else None

    def drain(self) -> list[Delivery]:
        """Remove and return every delivery still here."""
        done = [entry[2] for entry in self._entries]
        self._entries.clear()
        return done
