"""Every route of SPEC §3.1-3.3 and §3.5 over real HTTP, against a real broker process.

The success answers are compared byte for byte (body and Content-Type): RestMQ 1.x clients
and scripts parse them. Any 5xx seen by a test's client fails the test.
"""

from __future__ import annotations

import subprocess
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import Backend
from tests.helpers.broker import Broker
from tests.http_support import (
    HTML_CT,
    JS_CT,
    JSON_CT,
    Answer,
    assert_json,
    assert_jsonp,
    assert_key,
    call,
    queue_len,
    raw_http,
    stats_entry,
)

# ---------------------------------------------------------------- producing (§3.1)


async def test_post_root_with_queue_and_value_answers_the_key_as_text(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    first = await call(http, broker, "POST", "/", data={"queue": "test", "value": "foobar"})
    second = await call(http, broker, "POST", "/", data={"queue": "test", "msg": "m"})

    assert_key(first, "test:1")
    assert_key(second, "test:2")


async def test_post_root_prefers_msg_over_value(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/", data={"queue": "both", "value": "v", "msg": "m"})

    got = await call(http, broker, "GET", "/q/both")

    assert_json(got, {"key": "both:1", "value": "m", "count": 0})


async def test_post_root_takes_its_fields_from_the_query_string_too(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answer = await call(http, broker, "POST", "/?queue=qs&value=from%20query")

    assert_key(answer, "qs:1")
    assert_json(
        await call(http, broker, "GET", "/q/qs"),
        {"key": "qs:1", "value": "from query", "count": 0},
    )


async def test_post_root_accepts_a_json_body(http: aiohttp.ClientSession, broker: Broker) -> None:
    answer = await call(http, broker, "POST", "/", json={"queue": "js", "value": "v"})

    assert_key(answer, "js:1")


async def test_post_q_accepts_value_msg_raw_and_json_bodies(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    sent = [
        await call(http, broker, "POST", "/q/prod", data={"value": "by value"}),
        await call(http, broker, "POST", "/q/prod", data={"msg": "by msg"}),
        await call(http, broker, "POST", "/q/prod", data={"value": "v", "msg": "msg wins"}),
        await call(
            http,
            broker,
            "POST",
            "/q/prod",
            data=b"raw body",
            headers={"Content-Type": "text/plain"},
        ),
        await call(http, broker, "POST", "/q/prod", json={"value": "json value"}),
        await call(
            http,
            broker,
            "POST",
            "/q/prod",
            data=b'{"a": [1, 2]}',
            headers={"Content-Type": "application/octet-stream"},
        ),
        await call(http, broker, "POST", "/q/prod", data={"value": "with ttl", "ttl": "60"}),
    ]

    for n, answer in enumerate(sent, start=1):
        assert_key(answer, f"prod:{n}")
    values = [(await call(http, broker, "GET", "/q/prod")).json()["value"] for _ in sent]
    assert values == [
        "by value",
        "by msg",
        "msg wins",
        "raw body",
        "json value",
        '{"a": [1, 2]}',
        "with ttl",
    ]


async def test_post_q_accepts_a_multipart_form(http: aiohttp.ClientSession, broker: Broker) -> None:
    form = aiohttp.FormData()
    form.add_field("value", "multi")
    form.add_field("ignored", b"file", filename="f.bin")

    answer = await call(http, broker, "POST", "/q/mp", data=form)

    assert_key(answer, "mp:1")
    assert (await call(http, broker, "GET", "/q/mp")).json()["value"] == "multi"


async def test_a_queue_name_may_hold_any_unicode_and_punctuation(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    name = "ünï cödé:x*?[a]%&+=#;,"
    path = "/q/" + quote(name, safe="")

    answer = await call(http, broker, "POST", path, data={"value": "v"})

    assert_key(answer, f"{name}:1")
    assert_json(
        await call(http, broker, "GET", path), {"key": f"{name}:1", "value": "v", "count": 0}
    )


# ---------------------------------------------------------------- consuming (§3.2)


async def test_get_q_takes_the_oldest_message(http: aiohttp.ClientSession, broker: Broker) -> None:
    await call(http, broker, "POST", "/", data={"queue": "test", "value": "foobar"})
    await call(http, broker, "POST", "/", data={"queue": "test", "value": "second"})

    first = await call(http, broker, "GET", "/q/test")
    second = await call(http, broker, "GET", "/q/test")

    assert (first.status, first.content_type) == (200, JSON_CT)
    assert first.body == b'{"key": "test:1", "value": "foobar", "count": 0}\r\n'
    assert second.body == b'{"key": "test:2", "value": "second", "count": 0}\r\n'


async def test_get_q_on_an_empty_queue_answers_204_with_no_body(broker: Broker) -> None:
    for path in ["/q/never-used", "/q/never-used?callback=cb"]:
        raw = await raw_http(
            broker, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )

        head, sep, body = raw.partition(b"\r\n\r\n")
        assert sep and body == b"", raw
        assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
        lowered = head.lower()
        assert b"content-type:" not in lowered
        assert b"transfer-encoding:" not in lowered
        assert b"content-length: 0" in lowered or b"content-length:" not in lowered


async def test_get_q_answers_204_once_the_queue_is_drained(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/q/drain", data={"value": "only"})
    await call(http, broker, "GET", "/q/drain")

    answer = await call(http, broker, "GET", "/q/drain")

    assert (answer.status, answer.body) == (204, b"")
    assert "Content-Type" not in answer.headers


async def test_get_root_with_a_queue_takes_and_answers_404_when_empty(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/q/root", data={"value": "r"})

    taken = await call(http, broker, "GET", "/?queue=root")
    empty = await call(http, broker, "GET", "/?queue=root")

    assert_json(taken, {"key": "root:1", "value": "r", "count": 0})
    assert_json(empty, {"error": "empty queue"}, status=404)


async def test_get_root_without_a_queue_redirects_to_the_dashboard(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answer = await call(http, broker, "GET", "/")

    assert answer.status == 302
    assert answer.headers["Location"].endswith("/static/index.html")


async def test_q_slash_lists_the_queues_as_json_when_asked(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for name in ["b", "a"]:
        await call(http, broker, "POST", f"/q/{name}", data={"value": "v"})

    for path in ["/q/", "/q"]:
        answer = await call(http, broker, "GET", path, headers={"Accept": "application/json"})
        assert_json(answer, {"queues": ["a", "b"], "count": 2})


async def test_q_slash_lists_the_queues_as_html_for_browsers(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/q/%3Cb%3Ebold", data={"value": "v"})
    await call(http, broker, "POST", "/q/plain", data={"value": "v"})

    answer = await call(
        http, broker, "GET", "/q/", headers={"Accept": "text/html,application/xhtml+xml"}
    )

    assert (answer.status, answer.content_type) == (200, HTML_CT)
    page = answer.body.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert "plain" in page and "&lt;b&gt;bold" in page and "<b>bold" not in page


async def test_delete_q_purges_the_queue_and_reports_the_count(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for value in ["a", "b", "c"]:
        await call(http, broker, "POST", "/q/purge", data={"value": value})
    await call(http, broker, "POST", "/p/purge", data={"policy": "roundrobin"})

    first = await call(http, broker, "DELETE", "/q/purge")
    second = await call(http, broker, "DELETE", "/q/purge")

    assert first.body == b'{"queue": "purge", "status": 1, "purged": 3}\r\n'
    assert first.content_type == JSON_CT
    assert_json(second, {"queue": "purge", "status": 0, "purged": 0})
    assert (await call(http, broker, "GET", "/q/purge")).status == 204
    assert_json(
        await call(http, broker, "GET", "/q/", headers={"Accept": "application/json"}),
        {"queues": [], "count": 0},
    )
    # Keys keep counting after a purge (SPEC §3.2): a late del of purge:1 hits nothing new.
    assert_key(await call(http, broker, "POST", "/q/purge", data={"value": "x"}), "purge:4")


# ---------------------------------------------------------------- JSON protocol (§3.3)


async def test_post_queue_runs_add_get_take_and_del(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    async def command(cmd: dict[str, Any]) -> Answer:
        return await call(http, broker, "POST", "/queue", json=cmd)

    added = await command({"cmd": "add", "queue": "q", "value": "v"})
    gets = [await command({"cmd": "get", "queue": "q"}) for _ in range(3)]
    taken = await command({"cmd": "take", "queue": "q"})
    await command({"cmd": "add", "queue": "q", "value": "w", "ttl": 60})
    deleted = await command({"cmd": "del", "queue": "q", "key": "q:2"})
    again = await command({"cmd": "del", "queue": "q", "key": "q:2"})

    assert added.body == b'{"queue": "q", "value": "v", "key": "q:1"}\r\n'
    assert added.content_type == JSON_CT
    assert [g.body for g in gets] == [
        f'{{"queue": "q", "value": "v", "key": "q:1", "count": {n}}}\r\n'.encode()
        for n in (1, 2, 3)
    ]
    assert_json(taken, {"queue": "q", "value": "v", "key": "q:1"})
    assert_json(deleted, {"queue": "q", "deleted": True, "key": "q:2"})
    assert_json(again, {"queue": "q", "deleted": False, "key": "q:2"})


async def test_post_queue_answers_empty_queue_and_unknown_command_with_200(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    empty_get = await call(http, broker, "POST", "/queue", json={"cmd": "get", "queue": "e"})
    empty_take = await call(http, broker, "POST", "/queue", json={"cmd": "take", "queue": "e"})
    unknown = await call(http, broker, "POST", "/queue", json={"cmd": "frobnicate"})

    assert_json(empty_get, {"error": "empty queue"})
    assert_json(empty_take, {"error": "empty queue"})
    assert_json(unknown, {"error": "null resultset"})


async def test_post_queue_takes_the_command_from_body_msg_or_a_raw_body(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    add = '{"cmd": "add", "queue": "forms", "value": "%s"}'

    by_body = await call(http, broker, "POST", "/queue", data={"body": add % "b"})
    by_msg = await call(http, broker, "POST", "/queue", data={"msg": add % "m"})
    by_json = await call(
        http,
        broker,
        "POST",
        "/queue",
        data=(add % "j").encode(),
        headers={"Content-Type": "application/json"},
    )
    by_text = await call(
        http,
        broker,
        "POST",
        "/queue",
        data=(add % "t").encode(),
        headers={"Content-Type": "text/plain"},
    )

    for n, (answer, value) in enumerate(
        [(by_body, "b"), (by_msg, "m"), (by_json, "j"), (by_text, "t")], start=1
    ):
        assert_json(answer, {"queue": "forms", "value": value, "key": f"forms:{n}"})


async def test_get_queue_shows_the_protocol_help_with_a_form(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answer = await call(http, broker, "GET", "/queue")

    assert (answer.status, answer.content_type) == (200, HTML_CT)
    page = answer.body.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert '<form method=post action="/queue">' in page
    assert "<textarea name=body" in page
    for cmd in ["add", "get", "take", "del"]:
        assert f'"cmd": "{cmd}"' in page


# ---------------------------------------------------------------- policy, control, stats (§3.5)


async def test_policy_defaults_to_broadcast_and_can_be_set(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    default = await call(http, broker, "GET", "/p/pol")
    set_rr = await call(http, broker, "POST", "/p/pol", data={"policy": "roundrobin"})
    now = await call(http, broker, "GET", "/p/pol")
    set_back = await call(http, broker, "POST", "/p/pol", json={"policy": "broadcast"})

    assert default.body == b'{"queue": "pol", "value": "broadcast"}\r\n'
    assert default.content_type == JSON_CT
    assert_json(set_rr, {"queue": "pol", "value": "roundrobin"})
    assert_json(now, {"queue": "pol", "value": "roundrobin"})
    assert_json(set_back, {"queue": "pol", "value": "broadcast"})


async def test_control_shows_and_sets_a_queues_status(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    started = await call(http, broker, "GET", "/control/ctl")
    stop = await call(http, broker, "POST", "/control/ctl", data={"status": "stop"})
    stopped = await call(http, broker, "GET", "/control/ctl")
    start = await call(http, broker, "POST", "/control/ctl", data={"status": "start"})

    assert_json(
        started, {"redis": backend.url, "queue": "ctl", "status": {"queue": "ctl", "status": 1}}
    )
    assert stop.body == b'{"stat": {"queue": "ctl", "status": 0}}\r\n'
    assert_json(
        stopped, {"redis": backend.url, "queue": "ctl", "status": {"queue": "ctl", "status": 0}}
    )
    assert_json(start, {"stat": {"queue": "ctl", "status": 1}})


async def test_control_slash_lists_every_queues_status(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    await call(http, broker, "POST", "/q/running", data={"value": "v"})
    await call(http, broker, "POST", "/control/paused", data={"status": "stop"})

    for path in ["/control/", "/control"]:
        answer = await call(http, broker, "GET", path)
        queues = {"paused": {"queue": "paused", "status": 0},
                  "running": {"queue": "running", "status": 1}}
        assert_json(answer, {"redis": backend.url, "queues": queues, "count": 2})


async def test_stats_describe_every_queue_and_one_queue(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    for value in ["a", "b"]:
        await call(http, broker, "POST", "/q/s1", data={"value": value})
    await call(http, broker, "POST", "/p/s2", data={"policy": "roundrobin"})
    await call(http, broker, "POST", "/control/s2", data={"status": "stop"})
    s1 = stats_entry("s1", 2)
    s2 = stats_entry("s2", 0, status="stopped", policy="roundrobin")

    for path in ["/stats", "/stats/"]:
        answer = await call(http, broker, "GET", path)
        assert_json(answer, {"queues": {"s1": s1, "s2": s2}, "redis": backend.url, "count": 2})
    one = await call(http, broker, "GET", "/stats/s1")
    assert_json(one, {"redis": backend.url, "queue": "s1", **s1})
    unknown = await call(http, broker, "GET", "/stats/unknown")
    assert_json(unknown, {"redis": backend.url, "queue": "unknown", **stats_entry("unknown", 0)})


async def test_stats_with_no_queue_count_zero(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    assert_json(
        await call(http, broker, "GET", "/stats/"),
        {"queues": {}, "redis": backend.url, "count": 0},
    )


async def test_job_page_shows_the_last_10_waiting_and_the_counts(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    for n in range(1, 13):
        await call(http, broker, "POST", "/q/jobs", data={"value": f"job-{n:02d}"})
    await call(http, broker, "POST", "/q/jobs", data={"value": "<script>x</script>"})

    answer = await call(http, broker, "GET", "/j/jobs")

    assert (answer.status, answer.content_type) == (200, HTML_CT)
    page = answer.body.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert "waiting: 13" in page
    assert [f"job-{n:02d}" in page for n in range(1, 13)] == [False] * 3 + [True] * 9
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page
    assert await queue_len(http, broker, "jobs") == 13


async def test_job_page_of_an_empty_queue_says_so(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    answer = await call(http, broker, "GET", "/j/nothing")

    assert (answer.status, answer.content_type) == (200, HTML_CT)
    assert "No message waiting." in answer.body.decode()


async def test_livez_and_healthz_answer_ok(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    livez = await call(http, broker, "GET", "/livez")
    healthz = await call(http, broker, "GET", "/healthz")

    assert_json(livez, {"status": "ok"})
    assert (healthz.status, healthz.content_type) == (200, JSON_CT)
    health = healthz.json()
    assert (health["status"], health["redis"]) == ("ok", backend.url)


# ---------------------------------------------------------------- JSONP


async def test_jsonp_wraps_a_taken_message_and_a_key(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/q/test", data={"value": "one"})

    key = await call(http, broker, "POST", "/q/test?callback=foo", data={"value": "two"})
    key_in_form = await call(
        http, broker, "POST", "/", data={"queue": "test", "value": "3", "callback": "foo"}
    )
    taken = await call(http, broker, "GET", "/q/test?callback=cb")

    assert (key.status, key.content_type) == (200, JS_CT)
    assert key.body == b'foo("test:2");\r\n'
    assert key_in_form.body == b'foo("test:3");\r\n'
    assert taken.content_type == JS_CT
    assert taken.body == b'cb({"key": "test:1", "value": "one", "count": 0});\r\n'


@pytest.mark.parametrize("callback", ["cb", "$", "_x", "jQuery1124_99", "a.b.c", "x" * 64])
async def test_jsonp_accepts_every_valid_callback_name(
    http: aiohttp.ClientSession, broker: Broker, callback: str
) -> None:
    answer = await call(http, broker, "GET", f"/p/q?callback={callback}")

    assert_jsonp(answer, callback, {"queue": "q", "value": "broadcast"})


async def test_jsonp_works_on_every_json_route(
    http: aiohttp.ClientSession, broker: Broker, backend: Backend
) -> None:
    await call(http, broker, "POST", "/q/jp", data={"value": "v"})
    cases: list[tuple[str, str, dict[str, Any], Any]] = [
        ("GET", "/p/jp", {}, {"queue": "jp", "value": "broadcast"}),
        ("POST", "/p/jp", {"data": {"policy": "broadcast"}}, {"queue": "jp", "value": "broadcast"}),
        (
            "POST",
            "/control/jp",
            {"data": {"status": "start"}},
            {"stat": {"queue": "jp", "status": 1}},
        ),
        (
            "GET",
            "/control/jp",
            {},
            {"redis": backend.url, "queue": "jp", "status": {"queue": "jp", "status": 1}},
        ),
        ("GET", "/control/", {},
         {"redis": backend.url, "queues": {"jp": {"queue": "jp", "status": 1}}, "count": 1}),
        ("GET", "/stats/jp", {}, {"redis": backend.url, "queue": "jp", **stats_entry("jp", 1)}),
        (
            "GET",
            "/stats",
            {},
            {"queues": {"jp": stats_entry("jp", 1)}, "redis": backend.url, "count": 1},
        ),
        ("GET", "/q/", {}, {"queues": ["jp"], "count": 1}),
        ("GET", "/livez", {}, {"status": "ok"}),
        (
            "POST",
            "/queue",
            {"data": {"body": '{"cmd": "get", "queue": "jp"}'}},
            {"queue": "jp", "value": "v", "key": "jp:1", "count": 1},
        ),
        (
            "POST",
            "/queue",
            {"json": {"cmd": "take", "queue": "jp"}},
            {"queue": "jp", "value": "v", "key": "jp:1"},
        ),
        ("POST", "/queue", {"json": {"cmd": "take", "queue": "jp"}}, {"error": "empty queue"}),
        ("DELETE", "/q/jp", {}, {"queue": "jp", "status": 1, "purged": 0}),
    ]

    for method, path, kw, expected in cases:
        answer = await call(http, broker, method, f"{path}?callback=cb", **kw)
        assert_jsonp(answer, "cb", expected)


async def test_an_empty_callback_is_no_callback(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    assert_json(
        await call(http, broker, "GET", "/p/q?callback="), {"queue": "q", "value": "broadcast"}
    )


# ---------------------------------------------------------------- the 1.x README, with curl


def curl(*args: str) -> bytes:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, check=True
    )
    return done.stdout


def test_the_curl_lines_of_the_1x_readme_still_work(broker: Broker) -> None:
    base = broker.url

    assert curl("-d", "value=my element", f"{base}/q/queue_name") == b"queue_name:1\r\n"
    assert curl(f"{base}/q/queue_name") == (
        b'{"key": "queue_name:1", "value": "my element", "count": 0}\r\n'
    )
    assert curl("-d", "value=my element", f"{base}/q/queue_name") == b"queue_name:2\r\n"
    assert curl(f"{base}/p/queue_name") == b'{"queue": "queue_name", "value": "broadcast"}\r\n'
    assert curl("-d", "policy=roundrobin", f"{base}/p/queue_name") == (
        b'{"queue": "queue_name", "value": "roundrobin"}\r\n'
    )
    assert curl("-X", "DELETE", f"{base}/q/queue_name") == (
        b'{"queue": "queue_name", "status": 1, "purged": 1}\r\n'
    )
    # examples/test_rest.sh
    assert curl("-X", "POST", "-d", "queue=test&value=foobar", f"{base}/") == b"test:1\r\n"
    assert curl(f"{base}/q/test") == b'{"key": "test:1", "value": "foobar", "count": 0}\r\n'
    assert curl("-w", "%{http_code}", f"{base}/q/test") == b"204"


# ---------------------------------------------------------------- found while testing


async def test_a_head_request_does_not_take_a_message(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    await call(http, broker, "POST", "/q/head", data={"value": "keep me"})

    await call(http, broker, "HEAD", "/q/head")
    await call(http, broker, "HEAD", "/?queue=head")

    assert await queue_len(http, broker, "head") == 1


async def test_a_queue_name_with_braces_is_reachable_on_every_route(
    http: aiohttp.ClientSession, broker: Broker
) -> None:
    added = await call(http, broker, "POST", "/", data={"queue": "a{b}", "value": "v"})
    path = "a%7Bb%7D"

    assert_key(added, "a{b}:1")
    assert (await call(http, broker, "GET", f"/p/{path}")).json()["queue"] == "a{b}"
    assert (await call(http, broker, "GET", f"/control/{path}")).json()["queue"] == "a{b}"
    assert await queue_len(http, broker, "a{b}") == 1
    assert (await call(http, broker, "GET", f"/j/{path}")).status == 200
    assert_json(
        await call(http, broker, "GET", f"/q/{path}"), {"key": "a{b}:1", "value": "v", "count": 0}
    )
    assert_key(await call(http, broker, "POST", f"/q/{path}", data={"value": "w"}), "a{b}:2")
    assert_json(
        await call(http, broker, "DELETE", f"/q/{path}"),
        {"queue": "a{b}", "status": 1, "purged": 1},
    )
