"""The Lua scripts, read from ``lua/*.lua`` once, and their SHA1 digests.

Per-queue scripts get ``common.lua`` prepended (shared helpers: sweep, forget, next_due), and
the scripts that settle leases ``leases.lua`` after it.
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
    ACK_MANY = "ack_many"
    NACK_MANY = "nack_many"
    PUTBACK = "putback"
    MIGRATE_V1 = "migrate_v1"
    IDLE = "idle"
    RELIST = "relist"
    DEPTH = "depth"


STANDALONE = frozenset({ScriptName.TIMER_CAS, ScriptName.DEPTH})
# Scripts that settle leases get leases.lua too, after common.lua (one per-entry step for the
# single commands and their batch forms).
SETTLING = frozenset(
    {ScriptName.ACK, ScriptName.EXTEND, ScriptName.ACK_MANY, ScriptName.NACK_MANY}
)
# Scripts that change nothing a client asked for (stats and peek only run the sweep that the
# timers would run anyway): unanswered, they are a 503, never a 504 (SPEC §3.8).
READ_ONLY_SCRIPTS = frozenset(
    {ScriptName.STATS, ScriptName.PEEK, ScriptName.HISTORY, ScriptName.DEPTH}
)


@dataclass(frozen=True, slots=True)
class Script:
    name: ScriptName
    source: str
    sha: str


def _read(name: str) -> str:
    return resources.files("restmq.engine").joinpath("lua", f"{name}.lua").read_text("utf-8")


def _build(name: ScriptName, common: str, leases: str) -> Script:
    body = _read(name.value)
    if name in SETTLING:
        body = leases + "\n" + body
    source = body if name in STANDALONE else common + "\n" + body
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


def load_scripts() -> dict[ScriptName, Script]:
    """Every script, with its full source and SHA1."""
    common, leases = _read("common"), _read("leases")
    return {name: _build(name, common, leases) for name in ScriptName}
