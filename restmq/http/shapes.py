"""The JSON shapes of messages in answers, shared by the REST routes and the JSON protocol."""

from __future__ import annotations

from typing import Any

from restmq.types import Message, Reserved


def taken(message: Message) -> dict[str, Any]:
    """A taken message, as ``GET /q/<queue>`` answers it."""
    return {"key": message.key, "value": message.value, "count": message.count}


def reserved(message: Reserved) -> dict[str, Any]:
    """A leased message with what is needed to acknowledge it (SPEC §4)."""
    return {
        "queue": message.queue,
        "key": message.key,
        "value": message.value,
        "receipt": message.receipt,
        "deliveries": message.deliveries,
    }


def many(queue: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch answer: ``{"queue": q, "messages": [...]}``."""
    return {"queue": queue, "messages": items}
