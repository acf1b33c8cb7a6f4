"""Access control against real brokers: every route family under every rule kind.

Each test starts a real ``restmq serve --acl <file>`` and talks to it with real HTTP and
WebSocket clients. The allowed client is 127.0.0.1; a refused one connects from 127.0.0.2
(the whole 127/8 is loopback) or sends missing or wrong credentials. A refused request must get
its 401 or 403 with a JSON error and leave its queue exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.acl.brokers import Setup, create_key, every_section, run_keys
from tests.acl.families import (
    COOKIE_FAMILIES,
    FAMILIES,
    PRELOADED,
    Client,
    Family,
    basic,
    bearer,
    consume,
    cookie,
    produce,
    session_of,
)
from tests.conftest import Backend
from tests.helpers.wait import async_wait_until

LOCAL, OTHER = "127.0.0.1", "127.0.0.2"
BASIC_REALM = 'Basic realm="restmq"'


def present(families: list[Family]) -> list[Family]:
    return [family for family in families if family.present]


# --- the route families exist ---------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_route_family_under_test_is_served(family: Family) -> None:
    assert family.present, f"{family.route[0]} {family.route[1]} is not in the route table"


# --- rule kinds -------------------------------------------------------------------------------


async def test_an_allow_list_lets_its_address_in_and_refuses_others_with_403_everywhere(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(every_section("hosts_allow = 127.0.0.1"))
    for family in present(FAMILIES):
        await setup.allowed(family, Client(LOCAL))
        await setup.refused(family, Client(OTHER), 403)


async def test_probes_static_pages_and_the_protocol_help_stay_public(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker("[DEFAULT]\nhosts_deny = all\n")
    async with session_of(Client(OTHER)) as session:
        for path in ["/livez", "/healthz", "/static/index.html", "/queue"]:
            async with session.get(setup.url + path) as response:
                assert response.status == 200, path
        async with session.get(setup.url + "/metrics") as response:
            assert response.status == 403


async def test_a_deny_list_refuses_its_address_with_403_everywhere_and_lets_others_in(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(every_section("hosts_deny = 127.0.0.2"))
    for family in present(FAMILIES):
        await setup.allowed(family, Client(LOCAL))
        answer = await setup.refused(family, Client(OTHER), 403)
        assert "127.0.0.2" in answer.body["error"]


async def test_basic_credentials_are_required_everywhere_and_missing_ones_get_a_challenge(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(every_section("username = alice\npassword = s3cret"))
    for family in present(FAMILIES):
        await setup.allowed(family, Client(headers=basic("alice", "s3cret")))
        missing = await setup.refused(family, Client(), 401)
        assert missing.headers["WWW-Authenticate"].startswith(BASIC_REALM), family.name
        wrong = await setup.refused(family, Client(headers=basic("alice", "nope")), 401)
        assert wrong.headers["WWW-Authenticate"].startswith(BASIC_REALM), family.name


async def test_websocket_and_sse_clients_may_authenticate_with_the_auth_cookie(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(every_section("username = alice\npassword = s3:cret"))
    for family in present(COOKIE_FAMILIES):
        await setup.allowed(family, Client(headers=cookie("auth=alice:s3:cret")))
        await setup.refused(family, Client(headers=cookie("auth=alice:wrong")), 401)


async def test_the_auth_cookie_is_not_accepted_on_routes_that_change_queues(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(every_section("username = alice\npassword = s3cret"))
    client = Client(headers=cookie("auth=alice:s3cret"))
    for family in present([f for f in FAMILIES if f not in COOKIE_FAMILIES]):
        await setup.refused(family, client, 401)


async def test_access_keys_are_required_everywhere_and_checked_for_their_rights(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("access_keys = required"))
    master = create_key(backend, "--read", "*", "--write", "*", "--create", "--admin")
    narrow = create_key(backend, "--read", "elsewhere", "--write", "elsewhere")
    for family in present(FAMILIES):
        await setup.allowed(family, Client(headers=bearer(master)))
        missing = await setup.refused(family, Client(), 401)
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="restmq"'
        unknown = await setup.refused(family, Client(headers=bearer("rmq_unknown")), 401)
        assert 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]
        await setup.refused(family, Client(headers=bearer(narrow)), 403)


async def test_websocket_and_sse_clients_may_send_their_access_key_as_a_cookie(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("access_keys = required"))
    token = create_key(backend, "--read", "*")
    for family in present(COOKIE_FAMILIES):
        await setup.allowed(family, Client(headers=cookie(f"access_key={token}")))
        await setup.refused(family, Client(headers=cookie("access_key=rmq_forged")), 401)


async def test_a_key_without_create_writes_only_to_queues_that_exist(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("access_keys = required"))
    token = create_key(backend, "--write", "fresh,made", "--read", "*")
    async with session_of(Client(headers=bearer(token))) as session:
        refused = await produce(session, setup.url, "fresh")
        assert refused.status == 403
        assert refused.body == {"error": "access key may not create queue 'fresh'"}
        assert "fresh" not in await setup.storage.store.queues()
        await setup.storage.store.add("made", ["first"])
        assert (await produce(session, setup.url, "made")).status == 200
    assert await setup.length("made") == 2


async def test_a_valid_key_stands_in_for_basic_credentials_and_a_weak_one_is_refused(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("username = alice\npassword = s3cret"))
    reader = create_key(backend, "--read", "*")
    rest_consumer, rest_producer = FAMILIES[1], FAMILIES[0]
    await setup.allowed(rest_consumer, Client(headers=bearer(reader)))
    await setup.refused(rest_producer, Client(headers=bearer(reader)), 403)


async def test_json_protocol_commands_are_checked_against_their_own_section(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker("[rest:producer]\nhosts_deny = all\n[rest:consumer]\n")
    queue = await setup.queue(FAMILIES[0])
    async with session_of(Client()) as session:
        for command, status in [({"cmd": "add", "queue": queue, "value": "x"}, 403),
                                ({"cmd": "nonsense", "queue": queue}, 403),
                                ({"cmd": "take", "queue": queue}, 200)]:
            async with session.post(f"{setup.url}/queue", json=command) as response:
                assert response.status == status, (command, await response.text())
    assert await setup.length(queue) == PRELOADED - 1


async def test_xmlrpc_methods_need_the_right_of_what_they_do(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("access_keys = required"))
    reader = create_key(backend, "--read", "*")
    queue = await setup.queue(FAMILIES[5])

    async def call(method: str, *args: str) -> int:
        body = xmlrpc.client.dumps(args, method)
        async with (
            session_of(Client(headers=bearer(reader))) as session,
            session.post(f"{setup.url}/xmlrpc", data=body) as response,
        ):
            return response.status

    assert await call("len", queue) == 200
    assert await call("set", queue, "v") == 403
    assert await call("system.multicall") == 403
    assert await setup.length(queue) == PRELOADED


# --- the original file, and editing it -------------------------------------------------------

ORIGINAL_SAMPLE = """\
# RestMQ ACL
#
# Access to RestMQ endpoints can be controlled by either
# IP addresses, username and password, or both.
#
# When there's no hosts_allow or hosts_deny, the default
# behavior is to allow all incoming connections.
#
# The websocket endpoint doesn't support HTTP Basic.
# In order to authenticate websockets requests, a cookie
# named "auth" must be set, like this:
# auth=username:password
#

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

ORIGINAL_IN_USE = (
    ORIGINAL_SAMPLE.replace("#hosts", "hosts").replace("#user", "user").replace("#pass", "pass")
)


async def test_the_original_sample_acl_file_works_unchanged_and_allows_everyone(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(ORIGINAL_SAMPLE)
    for family in present(FAMILIES):
        await setup.allowed(family, Client(OTHER))


async def test_the_original_example_rules_mean_what_they_meant(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(ORIGINAL_IN_USE)
    producer, consumer, comet, websocket = FAMILIES[:4]
    await setup.allowed(producer, Client(LOCAL, basic("lero", "lero")))
    await setup.refused(producer, Client(LOCAL), 401)
    await setup.refused(producer, Client(OTHER, basic("lero", "lero")), 403)
    await setup.allowed(consumer, Client(LOCAL, basic("zz", "bla")))
    await setup.refused(consumer, Client(LOCAL, basic("lero", "lero")), 401)
    await setup.allowed(comet, Client(LOCAL, basic("lero", "lero")))
    await setup.refused(comet, Client(OTHER, basic("lero", "lero")), 403)
    await setup.allowed(websocket, Client(OTHER, cookie("auth=lerr:lerr")))
    await setup.refused(websocket, Client(OTHER), 401)


async def test_editing_the_acl_file_takes_effect_without_a_restart(
    acl_broker: Callable[[str], Setup],
) -> None:
    setup = acl_broker(ORIGINAL_SAMPLE)
    producer = FAMILIES[0]
    await setup.allowed(producer, Client())

    async def producing_is(status: int) -> bool:
        async with session_of(Client()) as session:
            return (await produce(session, setup.url, "probe")).status == status

    setup.acl.write_text("[rest:producer]\nhosts_deny = all\n")
    await async_wait_until(lambda: producing_is(403), 10, "the new deny rule applies")
    await setup.refused(producer, Client(), 403)

    async def logged_and_still(status: int) -> bool:
        return await producing_is(status) and "not reloaded" in setup.broker.log()

    setup.acl.write_text("[rest:producer\nhosts_deny = \n")  # broken: the old rules stay
    await async_wait_until(lambda: logged_and_still(403), 10, "the broken file is logged")
    await setup.refused(producer, Client(), 403)

    setup.acl.write_text("[rest:producer]\nhosts_allow = 127.0.0.1\n")
    await async_wait_until(lambda: producing_is(200), 10, "the fixed file applies")
    await setup.refused(producer, Client(OTHER), 403)


# --- restmq keys -----------------------------------------------------------------------------


async def test_keys_cli_creates_lists_and_revokes_and_revocation_takes_effect_at_once(
    acl_broker: Callable[[str], Setup], backend: Backend
) -> None:
    setup = acl_broker(every_section("access_keys = required"))
    token = create_key(backend, "--read", "jobs,mail", "--write", "jobs", "--name", "worker")
    listed = run_keys(backend, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert row["name"] == "worker" and digest.startswith(row["hash"])
    assert (row["read"], row["write"], row["create"], row["admin"]) == (
        ["jobs", "mail"], ["jobs"], False, False)
    assert token not in listed.stdout + run_keys(backend, "list").stdout
    await setup.storage.store.add("jobs", ["one", "two"])

    async def consuming_is(status: int) -> bool:
        async with session_of(Client(headers=bearer(token))) as session:
            return (await consume(session, setup.url, "jobs")).status == status

    assert await consuming_is(200)
    revoked = run_keys(backend, "revoke", row["hash"][:8])
    assert revoked.returncode == 0, revoked.stderr
    await async_wait_until(lambda: consuming_is(401), 5, "the revoked key is refused")
    await setup.refused(FAMILIES[1], Client(headers=bearer(token)), 401)
    assert run_keys(backend, "list").stdout.strip() == ""


async def test_only_a_hash_of_each_token_is_stored(backend: Backend) -> None:
    token = create_key(backend, "--read", "q", "--name", "hashed")
    redis = Redis.from_url(backend.url, decode_responses=True)
    try:
        stored = [(key, await redis.hgetall(key))
                  async for key in redis.scan_iter(match=backend.prefix + "*")]
    finally:
        await redis.aclose()
    assert len(stored) == 1
    (_, fields), digest = stored[0], hashlib.sha256(token.encode()).hexdigest()
    assert list(fields) == [digest]
    assert token not in json.dumps(stored)


def test_keys_cli_reaches_a_running_brokers_valkey_through_its_data_dir(
    backend: Backend, valkey_url: str
) -> None:
    if backend.name != "valkey":
        pytest.skip("the data directory socket belongs to the embedded Valkey")
    data_dir = Path(valkey_url.removeprefix("unix://")).parent
    create_key(backend, "--data-dir", str(data_dir), "--read", "q", "--name", "via-socket")
    listed = run_keys(backend, "list", "--data-dir", str(data_dir))
    assert listed.stdout.startswith("via-socket\t"), listed.stderr


def test_keys_cli_explains_how_to_reach_storage_when_there_is_none(
    backend: Backend, tmp_path: Path
) -> None:
    done = run_keys(backend, "list", "--data-dir", str(tmp_path))
    assert done.returncode != 0
    assert "--redis-url" in done.stderr


def test_revoking_an_unknown_key_fails_with_a_clear_message(backend: Backend) -> None:
    done = run_keys(backend, "revoke", "nobody")
    assert done.returncode == 1 and "no access key" in done.stderr
