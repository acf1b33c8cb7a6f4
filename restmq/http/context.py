"""What every handler of one daemon shares, stored on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from restmq.config import Settings
from restmq.delivery.hub import Hub
from restmq.engine.store import QueueStore
from restmq.errors import MessageTooLarge


@dataclass(slots=True)
class Context:
    settings: Settings
    store: QueueStore
    storage: str  # the storage description shown to clients (never a password)
    hub: Hub
    metrics_dir: str | None = None  # prometheus-client's multiprocess directory (--workers N)

    def check_size(self, value: str) -> str:
        """Return ``value`` unless it exceeds the maximum message size (then 413)."""
        limit = self.settings.max_message_size
        if len(value) > limit // 4 and len(value.encode("utf-8")) > limit:
            raise MessageTooLarge(f"message larger than {limit} bytes")
        return value


CTX = web.AppKey("restmq", Context)


def ctx(request: web.Request) -> Context:
    return request.app[CTX]
