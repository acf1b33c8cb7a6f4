"""Validation of the names clients choose: queues, message keys, JSONP callbacks."""

from __future__ import annotations

import re

from restmq.errors import BadRequest, InvalidQueueName
from restmq.keys import MAX_QUEUE_NAME

_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,63}")
# Within that pattern, what makes ``name(...);`` valid JavaScript: dotted identifiers, and a
# first identifier that is not a reserved word (``if(...)`` or ``a..b(...)`` would not parse).
_DOTTED = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
# fmt: off
_RESERVED = frozenset({
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete",
    "do", "else", "enum", "export", "extends", "false", "finally", "for", "function", "if",
    "implements", "import", "in", "instanceof", "interface", "let", "new", "null", "package",
    "private", "protected", "public", "return", "static", "super", "switch", "throw", "true",
    "try", "typeof", "var", "void", "while", "with", "yield",
})
# fmt: on
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
    if not _DOTTED.fullmatch(name) or name.split(".", 1)[0] in _RESERVED:
        raise BadRequest("invalid callback name: not a JavaScript function reference")
    return name
