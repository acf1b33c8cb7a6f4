"""The ACL file and the access decision (SPEC §6): pure, no I/O.

How this works. ``parse`` turns the INI text of the original RestMQ's ACL file into one
``Rule`` per section. A request belongs to one section (``restmq.http.access`` maps routes to
sections); ``decide`` takes the section's rules, the client's address, the credentials it
presented and, when it presented an access key, what that key may do, and returns a
``Verdict``: allowed, 401 (no or wrong credentials) or 403 (address refused, or a key lacking
the right). The order is fixed: the address first (credentials cannot fix a refused address),
then an access key when one was presented, then the section's own credential requirement.

Sections: the original four, ``rest:producer``, ``rest:consumer``, ``comet:consumer`` and
``websocket:consumer``, plus ``sse:consumer``, ``xmlrpc``, ``reserve`` and ``admin``. A section
absent from the file gets the rules of its parents (``PARENTS``; every parent must allow), and
an absent section without parents allows everyone, as in the original. Values of ``[DEFAULT]``
apply to every section. Unknown sections or options are errors: a typo must not open a route.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import ipaddress
from base64 import b64decode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from restmq.errors import ConfigError

PRODUCER = "rest:producer"
CONSUMER = "rest:consumer"
COMET = "comet:consumer"
WEBSOCKET = "websocket:consumer"
SSE = "sse:consumer"
XMLRPC = "xmlrpc"
RESERVE = "reserve"
ADMIN = "admin"
SECTIONS = (PRODUCER, CONSUMER, COMET, WEBSOCKET, SSE, XMLRPC, RESERVE, ADMIN)

# A new section missing from the file is as strict as the original sections that used to
# guard its routes (the original guarded DELETE, policy and control changes with rest:producer).
PARENTS: dict[str, tuple[str, ...]] = {
    SSE: (COMET,),
    XMLRPC: (PRODUCER, CONSUMER),
    RESERVE: (CONSUMER,),
    ADMIN: (PRODUCER,),
}
OPTIONS = frozenset({"hosts_allow", "hosts_deny", "username", "password", "access_keys"})
KEY_MODES = {"optional": False, "required": True}

REALM = 'realm="restmq"'
BASIC_CHALLENGE = f'Basic {REALM}, charset="UTF-8"'
BEARER_CHALLENGE = f"Bearer {REALM}"
INVALID_TOKEN_CHALLENGE = f'Bearer {REALM}, error="invalid_token"'

Right = Literal["read", "write", "admin"]
ADMIN_USE = "use the admin routes"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- host lists ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hosts:
    """One ``hosts_allow``/``hosts_deny`` value: addresses, prefixes, CIDR networks, ``all``.

    A complete IP address matches that address only; any other text is a string prefix, as in
    the original (``192.168.0.`` matches ``192.168.0.7``); ``10.0.0.0/8`` is a network.
    """

    addresses: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    everyone: bool = False

    @property
    def specific(self) -> bool:
        return bool(self.addresses or self.prefixes or self.networks)

    def names(self, ip: str) -> bool:
        """True when a specific entry (not ``all``) matches the address."""
        if ip in self.addresses or ip.startswith(self.prefixes):
            return True
        return bool(self.networks) and _in_networks(ip, self.networks)


def _in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)


def parse_hosts(text: str) -> Hosts | None:
    """A host list, or None when the value is empty (the same as no line at all)."""
    tokens = text.split()
    if not tokens:
        return None
    addresses, prefixes, networks = set(), [], []
    for token in tokens:
        if token.lower() == "all":
            continue
        if "/" in token:
            networks.append(_network(token))
        elif _is_address(token):
            addresses.add(normalize_ip(token))
        else:
            prefixes.append(token)
    everyone = any(token.lower() == "all" for token in tokens)
    return Hosts(frozenset(addresses), tuple(prefixes), tuple(networks), everyone)


def _network(token: str) -> Network:
    try:
        return ipaddress.ip_network(token, strict=False)
    except ValueError:
        raise ConfigError(f"invalid network {token!r}") from None


def _is_address(token: str) -> bool:
    try:
        ipaddress.ip_address(token)
    except ValueError:
        return False
    return True


def normalize_ip(ip: str) -> str:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as plain IPv4; others unchanged."""
    if ":" not in ip or "." not in ip:
        return ip  # not IPv4-mapped: skip the parse, this runs on every request
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else str(address)


# --- rules and the file -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """The rules of one section of the file."""

    allow: Hosts | None = None
    deny: Hosts | None = None
    username: str | None = None
    password: str | None = None
    keys_required: bool = False

    @property
    def needs_password(self) -> bool:
        return self.username is not None

    @property
    def is_open(self) -> bool:
        """True when the rule lets everyone in without credentials."""
        return self.allow is None and self.deny is None and not self.needs_password and not (
            self.keys_required
        )

    def admits(self, ip: str) -> bool:
        """The original's order: a listed allowed address, then the deny list, then defaults."""
        allow, deny = self.allow, self.deny
        if allow is not None and allow.names(ip):
            return True
        if deny is not None and deny.names(ip):
            return False
        if allow is not None and allow.everyone:
            return True
        if deny is not None and deny.everyone:
            return False
        # An allow list alone means "only these"; with a deny list, the rest is allowed.
        return not (allow is not None and deny is None)

    def password_matches(self, user: str, password: str) -> bool:
        """Constant-time comparison of both fields (hashed first, so lengths do not leak)."""
        same_user = _same(user, self.username or "")
        same_password = _same(password, self.password or "")
        return self.needs_password and same_user & same_password


def _same(given: str, expected: str) -> bool:
    left = hashlib.sha256(given.encode("utf-8")).digest()
    right = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(left, right)


OPEN_RULE = Rule()


@dataclass(frozen=True, slots=True)
class Acl:
    """The rules of every section; a section is allowed only when all its rules allow."""

    rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def section(self, name: str) -> tuple[Rule, ...]:
        return self.rules.get(name, (OPEN_RULE,))


OPEN = Acl()


def parse(text: str) -> Acl:
    """Parse the ACL file's text; raises ConfigError with the reason when it is invalid."""
    config = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    try:
        config.read_string(text)
    except configparser.Error as exc:
        raise ConfigError(f"malformed ACL file: {exc}") from None
    _check_names(config)
    own = {name: _rule(name, config[name]) for name in SECTIONS if config.has_section(name)}
    base = _rule("DEFAULT", config.defaults())
    return Acl({name: _resolve(name, own, base) for name in SECTIONS})


def _check_names(config: configparser.ConfigParser) -> None:
    unknown = sorted(set(config.sections()) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown ACL section(s): {', '.join(unknown)}")
    for name in ["DEFAULT", *config.sections()]:
        extra = sorted(set(config[name]) - OPTIONS)
        if extra:
            raise ConfigError(f"unknown option(s) in [{name}]: {', '.join(extra)}")


def _resolve(name: str, own: dict[str, Rule], base: Rule) -> tuple[Rule, ...]:
    if name in own:
        return (own[name],)
    parents = PARENTS.get(name, ())
    if not parents:
        return (base,)
    return tuple(rule for parent in parents for rule in _resolve(parent, own, base))


def _rule(name: str, values: Mapping[str, str]) -> Rule:
    username = values.get("username") or None
    password = values.get("password") or None
    if (username is None) != (password is None):
        raise ConfigError(f"[{name}] sets only one of username and password")
    mode = (values.get("access_keys") or "optional").strip().lower()
    if mode not in KEY_MODES:
        raise ConfigError(f"[{name}] access_keys must be 'optional' or 'required'")
    if KEY_MODES[mode] and username is not None:
        raise ConfigError(f"[{name}] requires access keys and a password: choose one")
    return Rule(
        allow=_hosts(name, values.get("hosts_allow", "")),
        deny=_hosts(name, values.get("hosts_deny", "")),
        username=username,
        password=password,
        keys_required=KEY_MODES[mode],
    )


def _hosts(name: str, text: str) -> Hosts | None:
    try:
        return parse_hosts(text)
    except ConfigError as exc:
        raise ConfigError(f"[{name}] {exc.message}") from None


# --- access keys --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRights:
    """What an access key may do: read and write listed queues (``*`` = any), create, admin."""

    read: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()
    create: bool = False
    admin: bool = False

    def may(self, right: Right, queue: str | None, exists: bool) -> bool:
        """Whether the key holds ``right`` on ``queue`` (None: on every queue)."""
        return _RIGHT_CHECKS[right](self, queue, exists)

    def needs_existence(self, right: Right, queue: str | None) -> bool:
        """True when the answer depends on whether the queue exists (write without create)."""
        return right == "write" and queue is not None and not self.create

    def refusal(
        self, right: Right, queue: str | None, exists: bool, admin_use: str = ADMIN_USE
    ) -> str | None:
        """Why the key may not do this (the 403's message), or None when it may.

        ``admin_use`` says what the admin right is needed for on this route.
        """
        if self.may(right, queue, exists):
            return None
        if right == "admin":
            return f"access key may not {admin_use} (it has no admin right)"
        where = "every queue (it needs '*')" if queue is None else f"queue {queue!r}"
        if right == "read":
            return f"access key may not read {where}"
        if queue is not None and _covers(self.write, queue):
            return f"access key may not create queue {queue!r}"
        return f"access key may not write to {where}"


def _covers(queues: frozenset[str], queue: str | None) -> bool:
    return "*" in queues or (queue is not None and queue in queues)


_RIGHT_CHECKS: dict[Right, Callable[[KeyRights, str | None, bool], bool]] = {
    "read": lambda key, queue, exists: _covers(key.read, queue),
    "write": lambda key, queue, exists: _covers(key.write, queue) and (exists or key.create),
    "admin": lambda key, queue, exists: key.admin,
}


# --- credentials and the decision ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presented:
    """The credentials a request carried: Basic (or the ``auth`` cookie) and a Bearer token."""

    basic: tuple[str, str] | None = None
    token: str | None = None


NOTHING = Presented()


def parse_authorization(header: str | None) -> Presented:
    """Read an ``Authorization`` header; a malformed or foreign scheme counts as nothing."""
    if not header:
        return NOTHING
    scheme, _, data = header.strip().partition(" ")
    reader = _SCHEMES.get(scheme.lower())
    return reader(data.strip()) if reader else NOTHING


def _basic(data: str) -> Presented:
    try:
        decoded = b64decode(data, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return NOTHING
    return parse_user_password(decoded)


def parse_user_password(text: str) -> Presented:
    """``user:password`` (the Basic payload and the WebSocket ``auth`` cookie)."""
    user, sep, password = text.partition(":")
    return Presented(basic=(user, password)) if sep else NOTHING


_SCHEMES: dict[str, Callable[[str], Presented]] = {
    "basic": _basic,
    "bearer": lambda data: Presented(token=data),
}

KeyState = Literal["none", "unknown", "granted", "lacking"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome: ``status`` 200 (allowed), 401 or 403, a reason and a 401's challenge."""

    status: int
    reason: str = ""
    challenge: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200


ALLOWED = Verdict(200)
_KEY_VERDICTS: dict[KeyState, Verdict] = {
    "unknown": Verdict(401, "unknown access key", INVALID_TOKEN_CHALLENGE),
    "lacking": Verdict(403, "the access key does not allow this"),
    "granted": ALLOWED,
}


def decide(
    rules: tuple[Rule, ...],
    ip: str,
    presented: Presented,
    key: KeyState,
    refusal: str | None = None,
) -> Verdict:
    """The access decision for one request to a section with ``rules``; ``refusal`` is why a
    "lacking" key may not do this (``KeyRights.refusal``)."""
    if key == "none" and all(rule.is_open for rule in rules):
        return ALLOWED
    address = judge_address(rules, ip)
    if not address.allowed:
        return address
    if key == "lacking" and refusal:
        return Verdict(403, refusal)
    if key != "none":
        return _KEY_VERDICTS[key]
    for rule in rules:
        verdict = _credentials(rule, presented)
        if not verdict.allowed:
            return verdict
    return ALLOWED


def judge_address(rules: tuple[Rule, ...], ip: str) -> Verdict:
    """403 unless every rule lets the address in (credentials cannot change this)."""
    client = normalize_ip(ip)
    if all(rule.admits(client) for rule in rules):
        return ALLOWED
    return Verdict(403, f"address {client} not allowed")


def _credentials(rule: Rule, presented: Presented) -> Verdict:
    if rule.keys_required:
        return Verdict(401, "an access key is required", BEARER_CHALLENGE)
    if not rule.needs_password:
        return ALLOWED
    if presented.basic is None:
        return Verdict(401, "authentication required", BASIC_CHALLENGE)
    if not rule.password_matches(*presented.basic):
        return Verdict(401, "invalid username or password", BASIC_CHALLENGE)
    return ALLOWED
