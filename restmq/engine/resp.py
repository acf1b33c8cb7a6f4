"""RESP2 request encoding for the pipeliner's hot path.

redis-py re-encodes every argument of every command; a script call carries its queue's ~28
key names, so that work dominated a request's storage cost. Here the part of an EVALSHA call
that never changes for a given script and queue (name, SHA, key count and keys) is encoded
once and cached; only the script's arguments are encoded per call. Replies are still read and
decoded by redis-py (with hiredis).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

Arg = str | bytes | int | float


def _bulk(value: Arg) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, float):
        data = repr(value).encode()
    else:
        data = str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(_bulk(arg) for arg in args)


@lru_cache(maxsize=8192)
def _script_prefix(sha: str, keys: tuple[str, ...]) -> bytes:
    parts: tuple[Arg, ...] = ("EVALSHA", sha, len(keys), *keys)
    return b"".join(_bulk(arg) for arg in parts)


def pack_script(sha: str, keys: Sequence[str], args: Sequence[Arg]) -> bytes:
    """``EVALSHA sha numkeys keys... args...`` with the constant part cached."""
    head = b"*%d\r\n" % (3 + len(keys) + len(args))
    return head + _script_prefix(sha, tuple(keys)) + b"".join(_bulk(arg) for arg in args)
