"""One error tree for RestMQ.

Storage and framework errors are translated into these at the boundary; the HTTP layer
maps each class to a status code in one table (``restmq.http.errors``).
"""

from __future__ import annotations


class RestMQError(Exception):
    """Raised when anything in RestMQ fails; the base of every RestMQ error."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(RestMQError):
    """Raised when a request's input is malformed or missing a field."""

    status = 400


class InvalidQueueName(BadRequest):
    """Raised when a queue name breaks the naming rules (SPEC §2)."""

    def __init__(self, queue: str, reason: str) -> None:
        super().__init__(f"invalid queue name: {reason}")
        self.queue = queue


class InvalidKey(BadRequest):
    """Raised when a message key does not belong to the queue or is not `<queue>:<n>`."""

    def __init__(self, queue: str, key: str) -> None:
        super().__init__(f"invalid message key {key!r} for queue {queue!r}")
        self.queue = queue
        self.key = key


class IdempotencyConflict(RestMQError):
    """Raised when an Idempotency-Key comes back with another request than its first one."""

    status = 422

    def __init__(self, queue: str) -> None:
        super().__init__(
            f"this Idempotency-Key was used for another request to queue {queue!r}"
            " within the dedup window; use a new key for a new request"
        )
        self.queue = queue


class MessageTooLarge(RestMQError):
    """Raised when a message or a request body exceeds the configured maximum size."""

    status = 413


class NotFound(RestMQError):
    """Raised when a route, a queue or a message does not exist."""

    status = 404


class EmptyQueue(NotFound):
    """Raised when a queue has no message to give."""

    def __init__(self, queue: str) -> None:
        super().__init__("empty queue")
        self.queue = queue


class MessageGone(NotFound):
    """Raised when a message key names no existing message (taken, acked, expired, purged)."""

    def __init__(self, queue: str, key: str) -> None:
        super().__init__(f"no such message: {key}")
        self.queue = queue
        self.key = key


class StaleReceipt(RestMQError):
    """Raised when a receipt does not hold the message's current lease (wrong or expired)."""

    status = 409

    def __init__(self, queue: str, key: str, message: str = "") -> None:
        super().__init__(message or f"wrong or expired receipt for {key}: the lease is not yours")
        self.queue = queue
        self.key = key


class NotLeased(StaleReceipt):
    """Raised when a message to acknowledge, give back or extend was never leased (it is
    waiting or delayed); a StaleReceipt, so whoever handles those handles this one too."""

    def __init__(self, queue: str, key: str, message: str = "") -> None:
        super().__init__(queue, key, message or f"message {key} is not leased")


class Unauthorized(RestMQError):
    """Raised when a request carries no valid credentials for a protected route."""

    status = 401

    def __init__(self, message: str, challenge: str = 'Basic realm="restmq"') -> None:
        super().__init__(message)
        self.challenge = challenge  # the WWW-Authenticate value of the 401


class Forbidden(RestMQError):
    """Raised when a request's credentials or address are not allowed on a route."""

    status = 403


class StorageUnavailable(RestMQError):
    """Raised when Redis/Valkey cannot be reached or does not answer."""

    status = 503
    retry_after = 1


class OutcomeUnknown(RestMQError):
    """Raised when a write was sent to Redis/Valkey but its answer never came (SPEC §3.8):
    it may or may not have been applied, so the client must not be told "nothing changed"."""

    status = 504
    retry_after = 1


class StorageError(RestMQError):
    """Raised when Redis/Valkey answers with an unexpected error (a bug, not bad input)."""

    status = 500


class EmbeddedServerError(RestMQError):
    """Raised when the embedded Valkey cannot be found or started."""


class ConfigError(RestMQError):
    """Raised when settings from flags, environment or the TOML file are invalid."""


class UnsupportedMediaType(RestMQError):
    """Raised when a request body's Content-Type is not one the route accepts."""

    status = 415

    def __init__(self, content_type: str, accepted: tuple[str, ...]) -> None:
        super().__init__(f"unsupported content type {content_type!r}; send {' or '.join(accepted)}")
        self.content_type = content_type
        self.accepted = accepted


class ClientError(RestMQError):
    """Raised when the client cannot reach the broker or loses its connection to it."""

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class UnexpectedAnswer(RestMQError):
    """Raised when the broker answers with a status or a body that the client cannot use."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"unexpected answer ({status}): {message}")
        self.status = status


class MigrationError(RestMQError):
    """Raised when the RestMQ 1.x database to import cannot be read."""

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(message)
        self.source = source  # the 1.x database's URL, without its password
