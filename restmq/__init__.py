"""RestMQ: a message broker that speaks HTTP and keeps its data in Redis.

The public surface: the settings object and the error tree.
"""

from restmq.config import Settings
from restmq.errors import (
    BadRequest,
    Forbidden,
    MessageTooLarge,
    NotFound,
    RestMQError,
    StorageUnavailable,
    Unauthorized,
)

__all__ = [
    "BadRequest",
    "Forbidden",
    "MessageTooLarge",
    "NotFound",
    "RestMQError",
    "Settings",
    "StorageUnavailable",
    "Unauthorized",
]
