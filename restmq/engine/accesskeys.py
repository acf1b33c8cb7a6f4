"""Access keys in Redis (SPEC §6): create, list, revoke, and the daemon's cached lookup.

A token is ``rmq_`` followed by 256 random bits. Only its SHA-256 digest is stored, as a field
of one hash (``Keys.access_keys``) whose value is the key's JSON record: name, rights and
creation time. A plain digest is enough for tokens this random (nothing to brute-force), and it
makes a lookup one HGET. Lookups are cached for ``cache_seconds`` (1 s by default), found or
not, so a revoked key stops working, and a new one starts working, within that time.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from restmq.engine.pipeline import Pipeliner
from restmq.engine.store import QueueStore
from restmq.errors import BadRequest, NotFound
from restmq.keys import Keys
from restmq.protocol.acl import KeyRights

TOKEN_PREFIX = "rmq_"
MIN_HASH_PREFIX = 6
CACHE_LIMIT = 10_000


def digest(token: str) -> str:
    """The stored form of a token: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A stored access key: never the token, only its digest."""

    name: str
    digest: str
    rights: KeyRights
    created: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "read": sorted(self.rights.read),
                "write": sorted(self.rights.write),
                "create": self.rights.create,
                "admin": self.rights.admin,
                "created": self.created,
            }
        )

    @classmethod
    def from_json(cls, key_digest: str, text: str) -> AccessKey:
        record: dict[str, Any] = json.loads(text)
        rights = KeyRights(
            read=frozenset(record.get("read", ())),
            write=frozenset(record.get("write", ())),
            create=bool(record.get("create")),
            admin=bool(record.get("admin")),
        )
        return cls(str(record["name"]), key_digest, rights, float(record.get("created", 0)))


class AccessKeyStore:
    """The access keys of one namespace, with a short-lived lookup cache."""

    def __init__(
        self,
        pipeliner: Pipeliner,
        keys: Keys,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._p = pipeliner
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, AccessKey | None]] = {}

    @classmethod
    def beside(cls, store: QueueStore, cache_seconds: float = 1.0) -> AccessKeyStore:
        """The key store on the same connection and namespace as a queue store."""
        return cls(store._p, store.keys, cache_seconds)  # one pipeliner per daemon

    async def create(self, name: str | None, rights: KeyRights) -> tuple[str, AccessKey]:
        """Store a new key; returns the token (shown once) and the stored record.

        Names are unique (checked before storing; two concurrent creations of one name are not
        prevented). Without a name the key is called ``key-<first 8 digits of its hash>``.
        """
        token = new_token()
        key_digest = digest(token)
        name = name or f"key-{key_digest[:8]}"
        if any(key.name == name for key in await self.list()):
            raise BadRequest(f"an access key named {name!r} already exists")
        key = AccessKey(name, key_digest, rights, time.time())
        await self._p.call("HSET", self._keys.access_keys, key.digest, key.to_json())
        return token, key

    async def list(self) -> list[AccessKey]:
        """Every stored key, oldest first."""
        flat = await self._p.call("HGETALL", self._keys.access_keys)
        found = [AccessKey.from_json(d, text) for d, text in _pairs(flat)]
        return sorted(found, key=lambda key: (key.created, key.name))

    async def revoke(self, name_or_hash: str) -> AccessKey:
        """Delete the key with this name, or the one key whose digest starts with this."""
        key = _choose(await self.list(), name_or_hash)
        await self._p.call("HDEL", self._keys.access_keys, key.digest)
        self._cache.pop(key.digest, None)
        return key

    async def lookup(self, token: str) -> AccessKey | None:
        """The key of a presented token, or None when no such key exists (cached briefly)."""
        key_digest = digest(token)
        now = self._clock()
        cached = self._cache.get(key_digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        text = await self._p.call("HGET", self._keys.access_keys, key_digest)
        found = AccessKey.from_json(key_digest, text) if text else None
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_digest] = (now + self._cache_seconds, found)
        return found

    async def queue_exists(self, queue: str) -> bool:
        """Whether the queue is in the registry (writing to a new one needs ``create``)."""
        return bool(await self._p.call("SISMEMBER", self._keys.registry, queue))


def _pairs(flat: Any) -> Iterable[tuple[str, str]]:
    if isinstance(flat, dict):
        return flat.items()
    return zip(flat[::2], flat[1::2], strict=True)


def _choose(keys: list[AccessKey], name_or_hash: str) -> AccessKey:
    named = [key for key in keys if key.name == name_or_hash]
    if named:
        return named[0]
    wanted = name_or_hash.lower()
    if len(wanted) < MIN_HASH_PREFIX:
        raise NotFound(f"no access key named {name_or_hash!r}")
    matching = [key for key in keys if key.digest.startswith(wanted)]
    if len(matching) > 1:
        raise BadRequest(f"hash prefix {name_or_hash!r} matches {len(matching)} keys")
    if not matching:
        raise NotFound(f"no access key named or hashed {name_or_hash!r}")
    return matching[0]
