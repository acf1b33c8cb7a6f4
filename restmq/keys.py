"""Every Redis key name RestMQ uses is built here, and nowhere else.

All keys of one queue share the hash tag ``{<queue>}`` so a queue lives in one Redis Cluster
slot and each Lua script touches one slot. The dead-letter queue ``<q>:dead`` is tagged with its
parent's name, so moving a message to it stays inside one slot too. The registry of queue names
and the daemon presence keys are global (no queue tag) and are updated separately.
"""

from __future__ import annotations

from dataclasses import dataclass

DEAD_SUFFIX = ":dead"
MAX_QUEUE_NAME = 256

# The per-queue key suffixes, in the order the Lua scripts receive them as KEYS.
QUEUE_KEY_SUFFIXES = (
    "seq",  # INCR counter that numbers messages
    "ready",  # list of waiting message ids; LPUSH new, RPOP oldest
    "vals",  # hash id -> value
    "refs",  # hash id -> soft-get count
    "exp",  # zset id -> expiry time (ms) for messages sent with a TTL
    "delayed",  # zset id -> due time (ms)
    "leased",  # zset id -> lease deadline (ms)
    "leases",  # hash id -> receipt of the current lease
    "deliv",  # hash id -> number of deliveries so far
    "meta",  # hash: policy, status, max_deliveries; bookkeeping: listed, rr, idle marks
    "history",  # list of recently broadcast "id<TAB>ms<TAB>value" entries (SSE replay)
    "consumers",  # hash "<daemon>/<n>" -> presence deadline (ms) of a streaming consumer
    "credits",  # hash "<daemon>/<n>" -> messages the consumer may still be sent
    "pollers",  # hash daemon -> presence deadline (ms) of its long-polling requests
)


def is_dead_letter_queue(queue: str) -> bool:
    return queue.endswith(DEAD_SUFFIX) and len(queue) > len(DEAD_SUFFIX)


def hash_tag(queue: str) -> str:
    """The Cluster hash tag of a queue: its own name, or its parent's for a dead-letter queue."""
    return queue[: -len(DEAD_SUFFIX)] if is_dead_letter_queue(queue) else queue


def dead_letter_queue(queue: str) -> str:
    """The name of a queue's dead-letter queue. A dead-letter queue is terminal: it is its
    own, so there is never a ``<queue>:dead:dead`` (SPEC §4)."""
    return queue if is_dead_letter_queue(queue) else queue + DEAD_SUFFIX


def message_key(queue: str, msg_id: int | str) -> str:
    """The public key of a message: ``<queue>:<n>``."""
    return f"{queue}:{msg_id}"


def parse_message_key(queue: str, key: str) -> int | None:
    """The id of a message key of ``queue``, or None when the key is not ``<queue>:<n>``."""
    head, sep, tail = key.rpartition(":")
    if not sep or head != queue or not tail.isdigit() or not tail.isascii() or len(tail) > 18:
        return None  # 18 digits: every id a 64-bit counter can make
    return int(tail)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one namespace prefix (default ``restmq:``)."""

    prefix: str = "restmq:"

    def queue(self, queue: str) -> list[str]:
        """All per-queue keys, in ``QUEUE_KEY_SUFFIXES`` order."""
        base = self._queue_base(queue)
        return [base + suffix for suffix in QUEUE_KEY_SUFFIXES]

    def queue_key(self, queue: str, suffix: str) -> str:
        """One per-queue key by its suffix."""
        assert suffix in QUEUE_KEY_SUFFIXES, suffix
        return self._queue_base(queue) + suffix

    def depth_keys(self, queue: str) -> list[str]:
        """What depth.lua reads of a queue: its ready, leased, delayed and consumers keys,
        then its dead-letter queue's ready key (its own for a dead-letter queue)."""
        base = self._queue_base(queue)
        dead = base if is_dead_letter_queue(queue) else f"{base}{DEAD_SUFFIX[1:]}:"
        return [base + "ready", base + "leased", base + "delayed", base + "consumers",
                dead + "ready"]

    def _queue_base(self, queue: str) -> str:
        tag = hash_tag(queue)
        if tag == queue:
            return f"{self.prefix}{{{queue}}}:"
        return f"{self.prefix}{{{tag}}}:{DEAD_SUFFIX[1:]}:"

    @property
    def registry(self) -> str:
        """The set of the names of all queues."""
        return self.prefix + "queues"

    @property
    def timers(self) -> str:
        """The zset of queues with pending TTLs, delays or leases, scored by next due time (ms)."""
        return self.prefix + "timers"

    def queue_channel(self, queue: str) -> str:
        """The pub/sub channel of a queue: wake-ups, broadcast messages, purge events."""
        return self.queue_channel_prefix + queue

    @property
    def queue_channel_prefix(self) -> str:
        return self.prefix + "q:"

    def daemon_channel(self, daemon_id: str) -> str:
        """The pub/sub channel on which one daemon receives its roundrobin deliveries."""
        return self.daemon_channel_prefix + daemon_id

    @property
    def daemon_channel_prefix(self) -> str:
        return self.prefix + "to:"

    def pattern(self) -> str:
        """A SCAN pattern matching every key of this namespace."""
        return self.prefix + "*"

    @property
    def access_keys(self) -> str:
        """The hash of access keys: SHA-256 hex digest of a token -> its JSON record."""
        return self.prefix + "access-keys"

    def idempotency(self, queue: str, token: str) -> str:
        """What the add that carried ``Idempotency-Key: <token>`` answered (SPEC §3.8); in the
        queue's slot, written by the add script itself, expiring after the dedup window.
        ``token`` is a digest of the client's key, so any key makes a short, safe name."""
        return self._queue_base(queue) + "idem:" + token

    def migrated_v1(self, queue: str) -> str:
        """The highest RestMQ 1.x message id that ``restmq migrate-v1`` looked at for a queue.

        It shares the queue's hash tag (the import script writes it with the messages) and,
        unlike the queue's own keys, survives a purge: a second run never brings back messages
        that were purged after the first.
        """
        return self._queue_base(queue) + "migrated-v1"
