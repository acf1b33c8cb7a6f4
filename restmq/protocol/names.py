"""Validation of the names clients choose: queues, message keys, JSONP callbacks."""

from __future__ import annotations

import re

from restmq.errors import BadRequest, InvalidQueueName
from restmq.keys import MAX_QUEUE_NAME

_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,63}")
# C0 and C1 control characters and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_queue(name: str) -> str:
    """Return ``name`` when it is a valid queue name (SPEC §2), else raise InvalidQueueName."""
    if not name:
        raise InvalidQueueName(name, "the name is empty")
    if len(name) > MAX_QUEUE_NAME:
        raise InvalidQueueName(name, f"longer than {MAX_QUEUE_NAME} characters")
    if "/" in name:
        raise InvalidQueueName(name, "'/' is not allowed")
    if _CONTROL.search(name):
        raise InvalidQueueName(name, "control characters are not allowed")
    return name


def check_callback(name: str) -> str:
    """Return ``name`` when it is a valid JSONP callback name, else raise BadRequest."""
    if not _CALLBACK.fullmatch(name):
        raise BadRequest("invalid callback name: must match ^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$")
    return name
