"""Access control for every route (SPEC §6): the ACL file and access keys.

How this works. ``ACCESS`` is the one visible table from a route (method and path template)
to what it needs: an ACL section, a right (``read``, ``write`` or ``admin``, checked against an
access key) and where the queue's name comes from. ``POST /queue`` and ``POST /xmlrpc`` read
their body to find the command, hence the section or right. A route missing from the table
needs the ``admin`` section and right (fail closed); public routes map to None.

The queue checked is the queue served (STYLE habit 15): each place a queue's name comes from
is read here through the very function its handler uses, and those parse the request once and
keep the result on it: ``path_queue`` (the path), ``read_params`` (query and body, the body
winning), ``read_command`` (a JSON command) and ``read_call`` (an XML-RPC call).

For each request the middleware takes the current rules (the ACL file is re-read at most once
per second when its size or mtime changed; a broken new file keeps the old rules), the client's
credentials (``Authorization: Basic`` or ``Bearer``; on the WebSocket and SSE routes, which
browsers open without custom headers, also the cookies ``auth=<user>:<password>`` and
``access_key=<token>``), looks up a presented access key, and lets
``restmq.protocol.acl.decide`` answer. A refusal raises Unauthorized or Forbidden before the
handler runs, so a refused request changes nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from restmq.engine.accesskeys import AccessKeyStore
from restmq.errors import ConfigError, Forbidden, RestMQError, Unauthorized
from restmq.http.commands import Command
from restmq.http.jsonproto import read_command
from restmq.http.params import read_params
from restmq.http.routing import path_queue, route_template
from restmq.http.xmlrpc import read_call
from restmq.protocol import acl
from restmq.protocol.acl import (
    ADMIN,
    ADMIN_USE,
    COMET,
    CONSUMER,
    PRODUCER,
    RESERVE,
    SSE,
    WEBSOCKET,
    XMLRPC,
    Acl,
    KeyState,
    Presented,
    Right,
)

log = logging.getLogger("restmq.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
QueueOf = Callable[[web.Request], Awaitable[str | None]]
RELOAD_INTERVAL = 1.0
MISSING: tuple[int, ...] = ()  # the signature of a file that cannot be found
COOKIE_SECTIONS = frozenset({WEBSOCKET, SSE})


@dataclass(frozen=True, slots=True)
class Target:
    """What a request needs: an ACL section, a right, and its queue (None: every queue);
    ``admin_use`` says what the admin right is needed for, in a refusal's message."""

    section: str
    right: Right
    queue: QueueOf
    admin_use: str = ADMIN_USE


Resolve = Callable[[web.Request], Awaitable[Target]]


# --- where the queue's name comes from ------------------------------------------------------


async def _from_path(request: web.Request) -> str | None:
    return path_queue(request)


async def _from_params(request: web.Request) -> str | None:
    """``queue`` as ``GET /`` and ``POST /`` read it: from the query or the body (body wins)."""
    return (await read_params(request)).text("queue")


async def _every_queue(request: web.Request) -> str | None:
    return None


def _named(queue: str) -> QueueOf:
    async def named(request: web.Request) -> str | None:
        return queue

    return named


def _fixed(section: str, right: Right, queue: QueueOf = _every_queue) -> Resolve:
    target = Target(section, right, queue)

    async def resolve(request: web.Request) -> Target:
        return target

    return resolve




# --- commands in a body: POST /queue and POST /xmlrpc ---------------------------------------

COMMANDS: dict[str, tuple[str, Right]] = {
    "add": (PRODUCER, "write"),
    "get": (CONSUMER, "read"),
    "take": (CONSUMER, "read"),
    "del": (CONSUMER, "read"),
    "reserve": (RESERVE, "read"),
    "ack": (RESERVE, "read"),
    "nack": (RESERVE, "read"),
    "extend": (RESERVE, "read"),
}

XMLRPC_METHODS: dict[str, Right] = {
    "get": "read",
    "take": "read",
    "len": "read",
    "queues": "read",
    "reserve": "read",
    "ack": "read",
    "set": "write",
    "add": "write",
}


def _strictest(section: str, admin_use: str) -> Target:
    return Target(section, "admin", _every_queue, admin_use)


async def _json_command(request: web.Request) -> Target:
    """The command's section and right; what cannot be read needs everything (fail closed)."""
    try:
        command = await read_command(request)
    except RestMQError:
        return _strictest(PRODUCER, "send a command that cannot be read")
    return command_target(command)


def command_target(command: Command) -> Target:
    """The section and right a JSON-protocol command needs (unknown: everything)."""
    cmd = command["cmd"]
    known = COMMANDS.get(cmd)
    if known is None:
        return _strictest(PRODUCER, f"run the unknown command {cmd!r}")
    queue = command.get("queue")
    return Target(*known, _named(queue) if isinstance(queue, str) else _every_queue)


async def check_command(request: web.Request, command: Command) -> None:
    """Check a command that arrived inside a stream (a WebSocket frame) like ``POST /queue``
    would: its own section and right, with the handshake's credentials (the ``auth`` cookie
    counts only for the WebSocket section itself, so a cross-site page cannot use a
    browser's cookie to change queues)."""
    await request.app[ACCESS_CONTROL].check(request, command_target(command))


async def _xmlrpc_call(request: web.Request) -> Target:
    """Section ``xmlrpc``; the right from the method, the queue from its first argument."""
    try:
        call = await read_call(request)
    except RestMQError:  # malformed: the strictest need; the handler answers the 400
        return _strictest(XMLRPC, "send a malformed XML-RPC call")
    right = XMLRPC_METHODS.get(call.method)
    if right is None:
        return _strictest(XMLRPC, f"call the unknown XML-RPC method {call.method!r}")
    args = call.params
    queue = args[0] if args and isinstance(args[0], str) and call.method != "queues" else None
    return Target(XMLRPC, right, _every_queue if queue is None else _named(queue))


# --- the table ---------------------------------------------------------------------------

_CONSUMER = _fixed(CONSUMER, "read", _from_path)
_ADMIN = _fixed(ADMIN, "admin", _from_path)
_RESERVE = _fixed(RESERVE, "read", _from_path)

ACCESS: dict[tuple[str, str], Resolve | None] = {
    ("GET", "/"): _fixed(CONSUMER, "read", _from_params),
    ("POST", "/"): _fixed(PRODUCER, "write", _from_params),
    ("GET", "/q"): _fixed(CONSUMER, "read"),
    ("GET", "/q/"): _fixed(CONSUMER, "read"),
    ("GET", "/q/{queue}"): _CONSUMER,
    ("POST", "/q/{queue}"): _fixed(PRODUCER, "write", _from_path),
    ("DELETE", "/q/{queue}"): _ADMIN,
    ("POST", "/q/{queue}/reserve"): _RESERVE,
    ("POST", "/q/{queue}/ack"): _RESERVE,
    ("POST", "/q/{queue}/nack"): _RESERVE,
    ("POST", "/q/{queue}/extend"): _RESERVE,
    ("GET", "/queue"): None,
    ("POST", "/queue"): _json_command,
    ("POST", "/xmlrpc"): _xmlrpc_call,
    ("GET", "/j/{queue}"): _CONSUMER,
    ("GET", "/p/{queue}"): _CONSUMER,
    ("POST", "/p/{queue}"): _ADMIN,
    ("GET", "/control"): _fixed(ADMIN, "admin"),
    ("GET", "/control/"): _fixed(ADMIN, "admin"),
    ("GET", "/control/{queue}"): _ADMIN,
    ("POST", "/control/{queue}"): _ADMIN,
    ("GET", "/stats"): _fixed(ADMIN, "admin"),
    ("GET", "/stats/"): _fixed(ADMIN, "admin"),
    ("GET", "/stats/{queue}"): _ADMIN,
    ("GET", "/events/stats"): _fixed(ADMIN, "admin"),
    ("GET", "/metrics"): _fixed(ADMIN, "admin"),
    ("GET", "/c/{queue}"): _fixed(COMET, "read", _from_path),
    ("GET", "/sse/{queue}"): _fixed(SSE, "read", _from_path),
    ("GET", "/ws/{queue}"): _fixed(WEBSOCKET, "read", _from_path),
    ("POST", "/collectd/data"): _fixed(PRODUCER, "write", _named("collectd_data")),
    ("POST", "/collectd/event"): _fixed(PRODUCER, "write", _named("collectd_event")),
    ("GET", "/static/{filename}"): None,
    ("GET", "/livez"): None,
    ("GET", "/healthz"): None,
    ("GET", "/openapi.json"): None,
}
UNLISTED = _fixed(ADMIN, "admin")


def route_of(request: web.Request) -> tuple[str, str] | None:
    """The (method, path template) of a routed request; None for a 404 or 405."""
    template = route_template(request)
    if template is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return method, template


# --- the ACL file, re-read when it changes ----------------------------------------------


class AclFile:
    """The rules of an ACL file, re-read on request at most every ``interval`` seconds."""

    def __init__(
        self,
        path: Path,
        interval: float = RELOAD_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._interval = interval
        self._clock = clock
        self._signature = _signature(path)
        self._rules = _load(path)
        self._checked = clock()
        self._failed: tuple[int, ...] | None = None

    @property
    def rules(self) -> Acl:
        """The current rules (re-read first when the file changed)."""
        now = self._clock()
        if now - self._checked >= self._interval:
            self._checked = now
            self._refresh()
        return self._rules

    def _refresh(self) -> None:
        try:
            signature = _signature(self._path)
        except ConfigError as exc:
            return self._keep(MISSING, exc)
        if signature == self._signature:
            self._failed = None
            return None
        if signature == self._failed:
            return None
        try:
            self._rules = _load(self._path)
        except ConfigError as exc:
            return self._keep(signature, exc)
        self._signature, self._failed = signature, None
        log.info("ACL file %s reloaded", self._path)
        return None

    def _keep(self, signature: tuple[int, ...], exc: ConfigError) -> None:
        """Log once per broken version of the file; the rules stay as they were."""
        if signature != self._failed:
            log.warning("ACL file %s not reloaded, keeping the previous rules: %s",
                        self._path, exc.message)
        self._failed = signature


def _signature(path: Path) -> tuple[int, ...]:
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read ACL file {path}: {exc.strerror}") from None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _load(path: Path) -> Acl:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ACL file {path}: {exc}") from None
    try:
        return acl.parse(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


# --- the middleware ---------------------------------------------------------------------


class AccessControl:
    """Checks each request against the ACL and access keys before its handler runs."""

    def install(self, app: web.Application) -> None:
        app[ACCESS_CONTROL] = self
        app.middlewares.append(self.middleware)

    def __init__(self, acl_file: AclFile | None, keys: AccessKeyStore) -> None:
        self._file = acl_file
        self._keys = keys

    @classmethod
    def load(cls, path: Path | None, keys: AccessKeyStore) -> AccessControl:
        """Read the ACL file now (ConfigError when missing or invalid); None: allow all."""
        return cls(AclFile(path) if path is not None else None, keys)

    @property
    def rules(self) -> Acl:
        return self._file.rules if self._file is not None else acl.OPEN

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path_queue(request)  # a path naming a queue in escapes that are not UTF-8: 400
        if self._open_to(request):
            return await handler(request)
        route = route_of(request)
        if route is not None:
            resolve = ACCESS.get(route, UNLISTED)
            if resolve is not None:
                await self.check(request, await resolve(request))
        return await handler(request)

    def _open_to(self, request: web.Request) -> bool:
        """No ACL file and no credentials presented: every rule would allow (the hot path)."""
        headers = request.headers
        return self._file is None and "Authorization" not in headers and "Cookie" not in headers

    async def check(self, request: web.Request, target: Target) -> None:
        """Raise Unauthorized or Forbidden unless the request may do what ``target`` says."""
        presented = credentials(request, target.section)
        rules, ip = self.rules.section(target.section), request.remote or ""
        verdict = acl.judge_address(rules, ip)  # before any lookup or body read
        if verdict.allowed:
            key, refusal = await self._key_state(request, presented.token, target)
            verdict = acl.decide(rules, ip, presented, key, refusal)
        if verdict.allowed:
            return
        log.debug("refused %s %s from %s: %s", request.method, request.path, request.remote,
                  verdict.reason)
        if verdict.status == 401:
            raise Unauthorized(verdict.reason, verdict.challenge or acl.BASIC_CHALLENGE)
        raise Forbidden(verdict.reason)

    async def permits(self, request: web.Request, method: str, template: str) -> bool:
        """Whether this request's client may use another route (e.g. ``GET /stats``)."""
        if self._open_to(request):
            return True
        resolve = ACCESS.get((method, template), UNLISTED)
        if resolve is None:
            return True
        try:
            await self.check(request, await resolve(request))
        except (Unauthorized, Forbidden):
            return False
        return True

    async def _key_state(
        self, request: web.Request, token: str | None, target: Target
    ) -> tuple[KeyState, str | None]:
        """What a presented key may do here, and why not when it may not."""
        if token is None:
            return "none", None
        found = await self._keys.lookup(token)
        if found is None:
            return "unknown", None
        queue = await target.queue(request)
        exists = False
        if found.rights.needs_existence(target.right, queue) and queue is not None:
            exists = await self._keys.queue_exists(queue)
        refusal = found.rights.refusal(target.right, queue, exists, target.admin_use)
        return ("lacking", refusal) if refusal else ("granted", None)


ACCESS_CONTROL = web.AppKey("restmq_access", AccessControl)


async def permits(request: web.Request, method: str, template: str) -> bool:
    """Whether the client of ``request`` may use the route ``method template``: what a
    public route shows only to those the ACL lets see it (``/healthz``'s storage address)."""
    return await request.app[ACCESS_CONTROL].permits(request, method, template)


def credentials(request: web.Request, section: str) -> Presented:
    """Basic or Bearer from the header; on cookie sections, the cookies fill what is missing."""
    presented = acl.parse_authorization(request.headers.get("Authorization"))
    if section not in COOKIE_SECTIONS:
        return presented
    basic = presented.basic
    if basic is None and "auth" in request.cookies:
        basic = acl.parse_user_password(request.cookies["auth"]).basic
    token = presented.token or request.cookies.get("access_key") or None
    return Presented(basic, token)
