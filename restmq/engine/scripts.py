"""The Lua scripts, read from ``lua/*.lua`` once, and their SHA1 digests.

Per-queue scripts get ``common.lua`` prepended (shared helpers: sweep, forget, next_due).
They are loaded into Redis with SCRIPT LOAD and called by SHA; after a Redis restart the
store reloads them when Redis answers NOSCRIPT.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources


class ScriptName(StrEnum):
    ADD = "add"
    TAKE = "take"
    GET = "get"
    DELETE = "delete"
    PURGE = "purge"
    STATS = "stats"
    PEEK = "peek"
    SWEEP = "sweep"
    TIMER_CAS = "timer_cas"
    CLAIM = "claim"
    PRESENCE = "presence"
    DELIVERED = "delivered"
    RELEASE = "release"
    HISTORY = "history"
    RESERVE = "reserve"
    ACK = "ack"
    NACK = "nack"
    EXTEND = "extend"
    PUTBACK = "putback"
    MIGRATE_V1 = "migrate_v1"


STANDALONE = frozenset({ScriptName.TIMER_CAS})
# Scripts that change nothing a client asked for (stats and peek only run the sweep that the
# timers would run anyway): unanswered, they are a 503, never a 504 (SPEC §3.8).
READ_ONLY_SCRIPTS = frozenset({ScriptName.STATS, ScriptName.PEEK, ScriptName.HISTORY})


@dataclass(frozen=True, slots=True)
class Script:
    name: ScriptName
    source: str
    sha: str


def _read(name: str) -> str:
    return resources.files("restmq.engine").joinpath("lua", f"{name}.lua").read_text("utf-8")


def _build(name: ScriptName, common: str) -> Script:
    body = _read(name.value)
    source = body if name in STANDALONE else common + "\n" + body
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


def load_scripts() -> dict[ScriptName, Script]:
    """Every script, with its full source and SHA1."""
    common = _read("common")
    return {name: _build(name, common) for name in ScriptName}
