"""Brokers started with an ACL file, their queues as the engine sees them, and access keys
made with the real ``restmq keys`` command."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from restmq.engine.connection import Storage
from restmq.protocol.acl import SECTIONS
from tests.acl.families import PRELOADED, Answer, Client, Family, session_of
from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.helpers.wait import async_wait_until


def every_section(body: str) -> str:
    return "".join(f"[{section}]\n{body}\n\n" for section in SECTIONS)


@dataclass
class Setup:
    """A broker started with an ACL file, and the engine's view of its queues."""

    broker: Broker
    acl: Path
    storage: Storage
    backend: Backend

    @property
    def url(self) -> str:
        return self.broker.url

    async def queue(self, family: Family, tag: str = "") -> str:
        """A fresh queue for one family, holding PRELOADED messages."""
        name = f"{family.name.replace(' ', '-')}{tag}-{uuid.uuid4().hex[:6]}"
        await self.storage.store.add(name, [f"m{n}" for n in range(PRELOADED)])
        return name

    async def length(self, queue: str) -> int:
        return await self.storage.store.length(queue)

    async def refused(self, family: Family, client: Client, status: int) -> Answer:
        """The family's request is refused with ``status`` and a JSON error; nothing changed."""
        queue = await self.queue(family)
        async with session_of(client) as session:
            answer = await family.act(session, self.url, queue)
        assert answer.status == status, f"{family.name}: {answer}"
        assert isinstance(answer.body, dict) and "error" in answer.body, family.name
        assert await self.length(queue) == PRELOADED, f"{family.name} changed its queue"
        return answer

    async def allowed(self, family: Family, client: Client) -> Answer:
        """The family's request succeeds and has its effect on the queue."""
        queue = await self.queue(family)
        async with session_of(client) as session:
            answer = await family.act(session, self.url, queue)
        assert answer.status == 200, f"{family.name}: {answer}"
        expected = PRELOADED + family.delta

        async def done() -> bool:
            return await self.length(queue) == expected

        await async_wait_until(done, 10, f"{family.name} changed its queue to {expected}")
        return answer


def run_keys(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    """``restmq keys ...`` as a real process against the test's backend and namespace."""
    command = [sys.executable, "-m", "restmq", "keys", *args]
    if "--data-dir" not in args:
        command += ["--redis-url", backend.url]
    command += ["--prefix", backend.prefix]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def create_key(backend: Backend, *args: str) -> str:
    done = run_keys(backend, "create", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
