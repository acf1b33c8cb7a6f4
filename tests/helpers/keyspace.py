"""The keyspace check: no value without a reference, no reference without a value.

Usable by any test after any load: it reads every key under a namespace prefix with SCAN and
checks each queue's invariant (SPEC §2): every stored value's id is in exactly one of
ready / delayed / leased, each at most once, and every id those (and the side tables) name
has a value. Returns a list of human-readable problems; an empty list means consistent.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from redis.asyncio import Redis

from restmq.keys import QUEUE_KEY_SUFFIXES

SIDE_TABLES = ("refs", "leases", "deliv")


async def _group(redis: Redis, prefix: str) -> dict[str, set[str]]:
    bases: dict[str, set[str]] = defaultdict(set)
    async for key in redis.scan_iter(match=prefix + "{*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        base, _, suffix = name.rpartition(":")
        if suffix in QUEUE_KEY_SUFFIXES:
            bases[base].add(suffix)
    return bases


async def _ids(redis: Redis, base: str) -> dict[str, list[str]]:
    def s(values: object) -> list[str]:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]  # type: ignore[attr-defined]

    return {
        "vals": s(await redis.hkeys(base + ":vals")),
        "ready": s(await redis.lrange(base + ":ready", 0, -1)),
        "delayed": s(await redis.zrange(base + ":delayed", 0, -1)),
        "leased": s(await redis.zrange(base + ":leased", 0, -1)),
        "exp": s(await redis.zrange(base + ":exp", 0, -1)),
        **{t: s(await redis.hkeys(f"{base}:{t}")) for t in SIDE_TABLES},
    }


def _problems(base: str, ids: dict[str, list[str]]) -> list[str]:
    problems = []
    placed = Counter(ids["ready"] + ids["delayed"] + ids["leased"])
    values = set(ids["vals"])
    for msg_id, times in placed.items():
        if times > 1:
            problems.append(f"{base}: id {msg_id} referenced {times} times")
        if msg_id not in values:
            problems.append(f"{base}: reference {msg_id} without a value")
    for msg_id in values - set(placed):
        problems.append(f"{base}: value {msg_id} without a reference")
    for table in ("exp", *SIDE_TABLES):
        for msg_id in set(ids[table]) - values:
            problems.append(f"{base}: {table} entry {msg_id} without a value")
    return problems


async def keyspace_problems(redis: Redis, prefix: str) -> list[str]:
    """Every inconsistency found under ``prefix`` (empty when the keyspace is sound)."""
    problems: list[str] = []
    for base in sorted(await _group(redis, prefix)):
        problems += _problems(base, await _ids(redis, base))
    return problems


async def assert_no_orphans(redis: Redis, prefix: str) -> None:
    problems = await keyspace_problems(redis, prefix)
    assert not problems, "keyspace problems:\n" + "\n".join(problems[:50])
