"""The ACL file's rules and the access decision, as tables of cases (no server)."""

from __future__ import annotations

from base64 import b64encode

import pytest

from restmq.errors import ConfigError
from restmq.protocol import acl
from restmq.protocol.acl import (
    BASIC_CHALLENGE,
    BEARER_CHALLENGE,
    INVALID_TOKEN_CHALLENGE,
    KeyRights,
    Presented,
    parse,
    parse_authorization,
)

LOCAL, NEIGHBOUR, STRANGER = "127.0.0.1", "192.168.0.7", "10.1.2.3"


def rules_of(body: str, section: str = acl.PRODUCER) -> tuple[acl.Rule, ...]:
    return parse(body).section(section)


NOTHING = Presented()


def status(body: str, ip: str, presented: Presented = NOTHING, key: acl.KeyState = "none",
           section: str = acl.PRODUCER) -> int:
    return acl.decide(rules_of(body, section), ip, presented, key).status


def basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


# --- addresses ------------------------------------------------------------------------------

ADDRESS_CASES = [
    # (section body, client ip, expected status)
    ("", STRANGER, 200),
    ("hosts_allow = 127.0.0.1", LOCAL, 200),
    ("hosts_allow = 127.0.0.1", STRANGER, 403),
    ("hosts_allow = 127.0.0.1", "127.0.0.10", 403),  # a whole address matches itself only
    ("hosts_allow = 127.0.0.", "127.0.0.10", 200),  # the original's string prefixes
    ("hosts_allow = 127.0.0.1 192.168.0.7\nhosts_deny = all", NEIGHBOUR, 200),
    ("hosts_allow = 127.0.0.1 192.168.0.7\nhosts_deny = all", STRANGER, 403),
    ("hosts_allow = 127.0.0.1\nhosts_deny = 192.168.0.", NEIGHBOUR, 403),
    ("hosts_allow = 127.0.0.1\nhosts_deny = 192.168.0.", STRANGER, 200),  # as the original
    ("hosts_allow = all\nhosts_deny = 192.168.0.", NEIGHBOUR, 403),
    ("hosts_allow = all\nhosts_deny = 192.168.0.", STRANGER, 200),
    ("hosts_allow = all\nhosts_deny = all", STRANGER, 200),
    ("hosts_deny = all", STRANGER, 403),  # the original ignored this; deny means deny
    ("hosts_deny = 192.168.0.", NEIGHBOUR, 403),
    ("hosts_deny = 192.168.0.", LOCAL, 200),
    ("hosts_allow = 10.0.0.0/8", STRANGER, 200),
    ("hosts_allow = 10.0.0.0/8", LOCAL, 403),
    ("hosts_deny = 10.0.0.0/8", STRANGER, 403),
    ("hosts_allow = 127.0.0.1", "::ffff:127.0.0.1", 200),  # IPv4-mapped IPv6
    ("hosts_allow = ::1", "::1", 200),
    ("hosts_allow = ::1", LOCAL, 403),
    ("hosts_allow =", STRANGER, 200),  # an empty list is no list
]


@pytest.mark.parametrize(("body", "ip", "expected"), ADDRESS_CASES)
def test_addresses_are_allowed_or_refused_like_the_original(
    body: str, ip: str, expected: int
) -> None:
    assert status(f"[rest:producer]\n{body}\n", ip) == expected


# --- Basic credentials --------------------------------------------------------------------

PASSWORD_SECTION = "[rest:producer]\nusername = alice\npassword = s3cr:et\n"
CREDENTIAL_CASES = [
    # (Authorization header, expected status, expected challenge)
    (None, 401, BASIC_CHALLENGE),
    (basic("alice", "s3cr:et"), 200, None),
    (basic("alice", "wrong"), 401, BASIC_CHALLENGE),
    (basic("bob", "s3cr:et"), 401, BASIC_CHALLENGE),
    (basic("alice", ""), 401, BASIC_CHALLENGE),
    ("Basic !!!not-base64", 401, BASIC_CHALLENGE),
    ("Basic " + b64encode(b"no-colon").decode(), 401, BASIC_CHALLENGE),
    ("Digest username=alice", 401, BASIC_CHALLENGE),
    ("bAsIc " + b64encode(b"alice:s3cr:et").decode(), 200, None),
]


@pytest.mark.parametrize(("header", "expected", "challenge"), CREDENTIAL_CASES)
def test_a_password_section_answers_401_with_a_basic_challenge_until_credentials_match(
    header: str | None, expected: int, challenge: str | None
) -> None:
    verdict = acl.decide(rules_of(PASSWORD_SECTION), LOCAL, parse_authorization(header), "none")
    assert (verdict.status, verdict.challenge) == (expected, challenge)


def test_the_basic_challenge_is_a_valid_scheme_with_a_realm() -> None:
    assert BASIC_CHALLENGE.startswith('Basic realm="restmq"')


def test_a_refused_address_is_403_even_with_the_right_password() -> None:
    body = PASSWORD_SECTION + "hosts_allow = 127.0.0.1\n"
    presented = parse_authorization(basic("alice", "s3cr:et"))
    assert status(body, STRANGER, presented) == 403


def test_the_websocket_cookie_carries_user_and_password() -> None:
    presented = acl.parse_user_password("alice:s3cr:et")
    assert presented.basic == ("alice", "s3cr:et")
    assert acl.parse_user_password("no-colon") == Presented()


# --- access keys --------------------------------------------------------------------------

KEY_STATE_CASES = [
    # (section body, key state, expected status, expected challenge)
    ("", "granted", 200, None),
    ("", "unknown", 401, INVALID_TOKEN_CHALLENGE),
    ("", "lacking", 403, None),
    ("access_keys = required", "none", 401, BEARER_CHALLENGE),
    ("access_keys = required", "granted", 200, None),
    ("access_keys = required", "lacking", 403, None),
    ("username = a\npassword = b", "granted", 200, None),  # a valid key replaces Basic
    ("hosts_deny = all", "granted", 403, None),  # a key does not open a refused address
]


@pytest.mark.parametrize(("body", "key", "expected", "challenge"), KEY_STATE_CASES)
def test_a_presented_access_key_is_checked_before_the_sections_password(
    body: str, key: acl.KeyState, expected: int, challenge: str | None
) -> None:
    rules = rules_of(f"[rest:producer]\n{body}\n")
    verdict = acl.decide(rules, LOCAL, Presented(token="t"), key)
    assert (verdict.status, verdict.challenge) == (expected, challenge)


RIGHT_CASES = [
    # (rights, right, queue, queue exists, expected)
    (KeyRights(read=frozenset({"q"})), "read", "q", True, True),
    (KeyRights(read=frozenset({"q"})), "read", "other", True, False),
    (KeyRights(read=frozenset({"q"})), "read", None, True, False),
    (KeyRights(read=frozenset({"*"})), "read", None, True, True),
    (KeyRights(read=frozenset({"q"})), "write", "q", True, False),
    (KeyRights(write=frozenset({"q"})), "write", "q", True, True),
    (KeyRights(write=frozenset({"q"})), "write", "q", False, False),
    (KeyRights(write=frozenset({"q"}), create=True), "write", "q", False, True),
    (KeyRights(write=frozenset({"*"})), "write", "new", False, False),
    (KeyRights(write=frozenset({"*"}), create=True), "write", "new", False, True),
    (KeyRights(create=True), "write", "new", False, False),
    (KeyRights(read=frozenset({"*"}), write=frozenset({"*"}), create=True), "admin", None, True,
     False),
    (KeyRights(admin=True), "admin", "q", True, True),
]


@pytest.mark.parametrize(("rights", "right", "queue", "exists", "expected"), RIGHT_CASES)
def test_a_key_may_read_write_create_or_administer_only_what_it_lists(
    rights: KeyRights, right: acl.Right, queue: str | None, exists: bool, expected: bool
) -> None:
    assert rights.may(right, queue, exists) is expected


REFUSAL_CASES = [
    # (rights, right, queue, queue exists, the 403's message)
    (KeyRights(read=frozenset({"pub"})), "read", "secret",
     "access key may not read queue 'secret'"),
    (KeyRights(read=frozenset({"pub"})), "read", None,
     "access key may not read every queue (it needs '*')"),
    (KeyRights(read=frozenset({"pub"})), "write", "pub",
     "access key may not write to queue 'pub'"),
    (KeyRights(write=frozenset({"pub"})), "write", "secret",
     "access key may not write to queue 'secret'"),
    (KeyRights(write=frozenset({"x"})), "write", "x", "access key may not create queue 'x'"),
    (KeyRights(write=frozenset({"*"})), "write", "x", "access key may not create queue 'x'"),
    (KeyRights(write=frozenset({"x"})), "write", None,
     "access key may not write to every queue (it needs '*')"),
    (KeyRights(read=frozenset({"*"})), "admin", "x",
     "access key may not use the admin routes (it has no admin right)"),
]


@pytest.mark.parametrize(("rights", "right", "queue", "message"), REFUSAL_CASES)
def test_a_refused_key_is_told_what_it_may_not_do(
    rights: KeyRights, right: acl.Right, queue: str | None, message: str
) -> None:
    assert rights.refusal(right, queue, False) == message
    verdict = acl.decide(rules_of(""), LOCAL, Presented(token="t"), "lacking", message)
    assert (verdict.status, verdict.reason) == (403, message)


def test_a_key_that_may_has_no_refusal() -> None:
    assert KeyRights(write=frozenset({"x"})).refusal("write", "x", True) is None
    assert KeyRights(admin=True).refusal("admin", None, False, "purge") is None
    message = KeyRights().refusal("admin", None, False, "run the unknown command 'zap'")
    assert message == "access key may not run the unknown command 'zap' (it has no admin right)"


def test_only_writing_without_create_depends_on_the_queue_existing() -> None:
    rights = KeyRights(write=frozenset({"q"}))
    assert rights.needs_existence("write", "q")
    assert not rights.needs_existence("read", "q")
    assert not KeyRights(write=frozenset({"q"}), create=True).needs_existence("write", "q")


AUTHORIZATION_CASES = [
    (None, Presented()),
    ("", Presented()),
    ("Bearer rmq_abc", Presented(token="rmq_abc")),
    ("bearer   rmq_abc  ", Presented(token="rmq_abc")),
    ("Bearer", Presented(token="")),
    (basic("u", "p"), Presented(basic=("u", "p"))),
    ("Negotiate xyz", Presented()),
]


@pytest.mark.parametrize(("header", "expected"), AUTHORIZATION_CASES)
def test_the_authorization_header_is_read_as_basic_or_bearer(
    header: str | None, expected: Presented
) -> None:
    assert parse_authorization(header) == expected


# --- sections, defaults and the file ------------------------------------------------------

ORIGINAL_FILE = """\
# RestMQ ACL
#
# When username and password are set, RestMQ will require
# clients to authenticate themselves using HTTP Basic.

[rest:producer]
#hosts_allow = 127.0.0.1 192.168.0.7
#hosts_deny = all
#username = lero
#password = lero

[rest:consumer]
#hosts_allow = 127.0.0.1
#hosts_deny = 192.168.0.
#username = zz
#password = bla

[comet:consumer]
#hosts_allow = 127.0.0.1
#hosts_deny = all
#username = lero
#password = lero

[websocket:consumer]
#hosts_allow = all
#hosts_deny = 192.168.0.
#username = lerr
#password = lerr
"""


@pytest.mark.parametrize("section", acl.SECTIONS)
def test_the_original_sample_file_allows_everyone_everywhere(section: str) -> None:
    assert status(ORIGINAL_FILE, STRANGER, section=section) == 200


INHERITANCE_CASES = [
    # (file, section, client ip, expected status)
    ("[rest:producer]\nhosts_deny = all\n", acl.ADMIN, LOCAL, 403),
    ("[rest:producer]\nhosts_deny = all\n[admin]\n", acl.ADMIN, LOCAL, 200),
    ("[rest:consumer]\nhosts_deny = all\n", acl.RESERVE, LOCAL, 403),
    ("[comet:consumer]\nhosts_deny = all\n", acl.SSE, LOCAL, 403),
    ("[rest:consumer]\nhosts_deny = all\n", acl.XMLRPC, LOCAL, 403),
    ("[rest:producer]\nhosts_deny = all\n", acl.XMLRPC, LOCAL, 403),
    ("[rest:producer]\nhosts_deny = all\n", acl.CONSUMER, LOCAL, 200),
    ("[DEFAULT]\nhosts_deny = all\n", acl.WEBSOCKET, LOCAL, 403),
    ("[DEFAULT]\nhosts_deny = all\n[rest:consumer]\nhosts_deny =\n", acl.CONSUMER, LOCAL, 200),
]


@pytest.mark.parametrize(("text", "section", "ip", "expected"), INHERITANCE_CASES)
def test_an_absent_new_section_takes_the_rules_of_the_sections_that_guarded_its_routes(
    text: str, section: str, ip: str, expected: int
) -> None:
    assert status(text, ip, section=section) == expected


BROKEN_FILES = [
    ("[rest:produser]\nhosts_deny = all\n", "unknown ACL section"),
    ("[rest:producer]\nhost_deny = all\n", "unknown option"),
    ("[rest:producer]\nusername = a\n", "only one of username and password"),
    ("[rest:producer]\naccess_keys = sometimes\n", "access_keys must be"),
    ("[rest:producer]\naccess_keys = required\nusername = a\npassword = b\n", "choose one"),
    ("[rest:producer]\nhosts_allow = 10.0.0.0/33\n", "invalid network"),
    ("hosts_allow = all\n", "malformed ACL file"),
    ("[rest:producer]\n[rest:producer]\n", "malformed ACL file"),
]


@pytest.mark.parametrize(("text", "reason"), BROKEN_FILES)
def test_a_broken_file_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse(text)


def test_passwords_keep_percent_signs_and_semicolons() -> None:
    rules = rules_of("[rest:producer]\nusername = u\npassword = 100% ;sure\n")
    assert rules[0].password == "100% ;sure"
