"""When the client repeats a request by itself, and how long it waits first (SPEC §3.8).

How this works. ``Client`` and ``AsyncClient`` make a call, and when it fails they ask
``Retry.pause`` how long to wait before the next attempt (None: give up and raise). An attempt
is worth repeating when the failure was transient:

- 503 (``StorageUnavailable``) means nothing changed: every call is repeated;
- 504 (``OutcomeUnknown``) means a write was sent to storage but its answer never came, and a
  failed connection after the request may have left (a reset, a timeout) leaves the same doubt:
  only a call marked ``repeatable`` is repeated. Every call is, but taking messages: a produce
  carries an ``Idempotency-Key``, so the broker adds it once; a reserve whose answer was lost
  leaves a lease that expires; ack, nack and extend are settled once and then answer a clear
  error (gone, stale receipt); reads change nothing. A take may have removed a message, so
  that doubt is raised (``OutcomeUnknown`` or ``ClientError``) for the caller to decide;
- a connection that could not even be opened sent nothing: every call is repeated.

An ack whose earlier attempt's outcome was unknown, and that a later attempt finds gone, was
acknowledged by that earlier attempt (or by someone else: the message is gone either way): it
returns as done rather than raising ``MessageGone`` (``Attempts.done_before``).

Other errors (bad input, access, a stale receipt, server bugs) are raised at once. The waits
grow exponentially from ``initial`` to ``maximum``, with jitter (each is drawn from [d/2, d]),
and are never shorter than the ``Retry-After`` of a 503 or 504. No new attempt starts after
``attempts`` tries, or when it would start later than ``total`` seconds after the first.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import httpx

from restmq.errors import (
    ClientError,
    MessageGone,
    OutcomeUnknown,
    RestMQError,
    StorageUnavailable,
)

# The httpx failures that happen before a request leaves: the broker never saw it.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def unsent(error: RestMQError) -> bool:
    """Whether the failed attempt never reached the broker (a refused or timed-out connect)."""
    return isinstance(error, ClientError) and isinstance(error.__cause__, UNSENT)


def unknown_outcome(error: RestMQError) -> bool:
    """Whether the failed attempt may have been applied: a 504, or an answer lost after the
    request was sent."""
    if isinstance(error, ClientError):
        return not unsent(error)
    return isinstance(error, OutcomeUnknown)


def transient(error: RestMQError, repeatable: bool) -> bool:
    """Whether another attempt of a call may succeed and is safe (see the module's doc)."""
    if isinstance(error, StorageUnavailable) or unsent(error):
        return True
    return repeatable and isinstance(error, OutcomeUnknown | ClientError)


@dataclass(frozen=True, slots=True)
class Retry:
    """How a client repeats a call that failed for a transient reason (docs/client.md).

    ``attempts``: tries in all, the first included (1: never repeat); ``total``: seconds after
    the first try past which no new try starts; ``initial`` and ``maximum``: the first wait
    and the cap of the waits, which double in between.
    """

    attempts: int = 6
    total: float = 30.0
    initial: float = 0.25
    maximum: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.total < 0 or not 0 < self.initial <= self.maximum:
            raise ValueError("retry: attempts >= 1, total >= 0, 0 < initial <= maximum")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first), with jitter."""
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def pause(
        self, error: RestMQError, attempt: int, elapsed: float, repeatable: bool = True
    ) -> float | None:
        """Seconds to wait before the next attempt after failed attempt ``attempt``, begun
        ``elapsed`` seconds after the first; None when ``error`` is to be raised."""
        if attempt >= self.attempts or not transient(error, repeatable):
            return None
        wait = max(self.backoff(attempt), float(getattr(error, "retry_after", 0)))
        return wait if elapsed + wait <= self.total else None


@dataclass(slots=True)
class Attempts:
    """The attempts of one call so far: how many, since when, and whether one of them may
    have been applied although it failed."""

    retry: Retry
    repeatable: bool
    count: int = 0
    started: float = field(default_factory=time.monotonic)
    doubt: bool = False

    def pause(self, error: RestMQError) -> float | None:
        """Seconds to wait before the next attempt after this ``error``; None: raise it."""
        self.count += 1
        self.doubt = self.doubt or unknown_outcome(error)
        elapsed = time.monotonic() - self.started
        return self.retry.pause(error, self.count, elapsed, self.repeatable)

    def done_before(self, error: RestMQError) -> bool:
        """Whether ``error`` finds gone a message that an earlier attempt may have removed."""
        return self.doubt and isinstance(error, MessageGone)


DEFAULT_RETRY = Retry()
NEVER = Retry(attempts=1)
