"""Storage operations of the streaming delivery layer (SPEC §3.4, §8).

Consumers are named ``<daemon>/<n>``; their presence (a deadline refreshed by the daemon's
heartbeat) and credits live in the queue's hash-tagged keys, so claims, leases and presence
change together in one script. See ``lua/claim.lua`` for how messages are chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from restmq.engine.scripts import ScriptName
from restmq.engine.store import QueueStore


@dataclass(frozen=True, slots=True)
class DeliveryTuning:
    """How much a daemon may claim at once and how long a roundrobin lease lasts."""

    credits: int = 64  # messages in flight per consumer (the bounded buffer)
    batch: int = 256  # messages per claim
    lease_ms: int = 15_000  # roundrobin in-flight lease; longer than the stall timeout
    presence_ms: int = 5_000  # a consumer vanishes this long after its daemon's last heartbeat
    history_size: int = 256
    history_age_ms: int = 3_600_000


class StreamStore:
    """Presence, claims and settlements of streaming consumers, on top of the queue store."""

    def __init__(self, store: QueueStore, tuning: DeliveryTuning) -> None:
        self._store = store
        self.tuning = tuning

    @property
    def store(self) -> QueueStore:
        return self._store

    async def join(self, queue: str, member: str, now_ms: int) -> None:
        deadline = now_ms + self.tuning.presence_ms
        await self._store.run(
            ScriptName.PRESENCE, queue, deadline, self.tuning.credits, "join", member
        )

    async def refresh(self, queue: str, members: Sequence[str], now_ms: int) -> None:
        deadline = now_ms + self.tuning.presence_ms
        await self._store.run(
            ScriptName.PRESENCE, queue, deadline, self.tuning.credits, "refresh", *members
        )

    async def leave(self, queue: str, members: Sequence[str]) -> None:
        await self._store.run(ScriptName.PRESENCE, queue, 0, 0, "leave", *members)

    async def claim(self, queue: str) -> int:
        """Claim waiting messages for the queue's consumers everywhere; returns how many."""
        t = self.tuning
        claimed = await self._store.run(
            ScriptName.CLAIM,
            queue,
            queue,
            self._store.keys.daemon_channel_prefix,
            t.batch,
            t.lease_ms,
            t.history_size,
        )
        return int(claimed)

    async def note_leases(self, queue: str, due_ms: int) -> None:
        """Make the sweeper look at the queue when its leases would expire."""
        await self._store.set_timer(queue, due_ms)

    async def delivered(
        self, queue: str, credits: Mapping[str, int], settled: Iterable[tuple[str, str]]
    ) -> None:
        """Give credits back and delete the roundrobin messages that were written."""
        args: list[str | int] = [self.tuning.credits]
        for member, count in credits.items():
            args += [member, count]
        args.append("--")
        for member, msg_id in settled:
            args += [member, msg_id]
        await self._store.run(ScriptName.DELIVERED, queue, *args)

    async def release(self, queue: str, member: str, ids: Sequence[str]) -> int:
        """Put back the roundrobin messages a departed consumer was never sent."""
        if not ids:
            return 0
        return int(await self._store.run(ScriptName.RELEASE, queue, member, *ids))

    async def history(self, queue: str, after_id: int) -> list[tuple[str, str]]:
        """Broadcast messages after ``after_id`` still in the window: (id, value), oldest first."""
        flat = await self._store.run(
            ScriptName.HISTORY, queue, after_id, self.tuning.history_age_ms
        )
        return list(zip(flat[::2], flat[1::2], strict=True))
