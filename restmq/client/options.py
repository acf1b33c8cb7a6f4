"""How a client reaches its broker: the base URL, the credentials, the timeouts."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

DEFAULT_SERVER = "http://127.0.0.1:8888"
WS_SCHEMES = {"http": "ws", "https": "wss"}
MAX_FRAME = 64 * 1024 * 1024  # far above any message the broker accepts (1 MiB by default)


@dataclass(frozen=True, slots=True)
class Options:
    """The broker's address and what every request carries."""

    server: str = DEFAULT_SERVER
    timeout: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        server: str,
        token: str | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Options:
        """``token`` is an access key (``Authorization: Bearer``); ``auth`` is a user and
        password for HTTP Basic (the ACL file's). The WebSocket route gets the same header."""
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        elif auth is not None:
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {pair}"
        return cls(server.rstrip("/"), timeout, headers)

    def url(self, path: str) -> str:
        return self.server + path

    def ws_url(self, path: str) -> str:
        scheme, sep, rest = self.server.partition("://")
        return WS_SCHEMES.get(scheme, scheme) + sep + rest + path

    def timeout_for(self, wait: float) -> float:
        """A request the broker may hold ``wait`` seconds (long polling) gets that much more."""
        return self.timeout + wait
