"""The OpenAPI document stays true to the route table (SPEC §7).

The application is built exactly as a daemon builds it (``build_app``), around a storage
connection that is never opened: only ``app.router`` is read, and ``/openapi.json`` is the
one request served, which touches no Redis. Every registered route and method must be in the
document and the document must describe nothing else; the document must validate as OpenAPI
3.1; the queue-name schema must accept exactly the names the broker accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import OpenAPIV31SpecValidator

from restmq.config import Settings
from restmq.delivery.hub import Hub
from restmq.engine.connection import open_storage
from restmq.errors import InvalidQueueName
from restmq.http.access import ACCESS
from restmq.http.app import build_app
from restmq.http.context import Context
from restmq.http.openapi import document
from restmq.http.routing import template_of
from restmq.protocol.names import check_queue

METHODS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}
UNUSED_REDIS = "redis://127.0.0.1:1/0"  # never connected: no request here reaches Redis


def app_of(collectd: bool) -> web.Application:
    """The daemon's application, with the routes ``--collectd`` adds when asked."""
    settings = Settings(collectd=collectd)
    storage = open_storage(UNUSED_REDIS, settings.prefix, 1)
    # The hub serves streaming consumers only; none is opened here.
    return build_app(Context(settings, storage.store, "unused", cast(Hub, None)))


def registered(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method, template_of(route.resource.canonical))
            for route in app.router.routes() if route.resource is not None}


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items()
            for method in item if method in METHODS}


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


@pytest.mark.parametrize("collectd", [False, True])
def test_every_registered_route_is_documented_with_its_methods(collectd: bool) -> None:
    assert registered(app_of(collectd)) == documented(document(collectd))


@pytest.mark.parametrize("collectd", [False, True])
def test_the_document_validates_as_openapi_3_1(collectd: bool) -> None:
    doc = json.loads(json.dumps(document(collectd)))  # as a client reads it
    OpenAPIV31SpecValidator(doc).validate()


def test_the_collectd_routes_are_documented_only_when_enabled() -> None:
    assert "/collectd/data" not in document(False)["paths"]
    assert {"/collectd/data", "/collectd/event"} <= set(document(True)["paths"])


def test_protected_routes_document_401_and_403_and_public_ones_do_not() -> None:
    for method, path, operation in operations(document(True)):
        route = ("GET" if method == "HEAD" else method, path)
        public = route in ACCESS and ACCESS[route] is None
        codes = set(operation["responses"])
        assert public != ({"401", "403"} <= codes), (method, path)
        assert public == ("401" not in codes), (method, path)
        assert public == ("security" not in operation), (method, path)


def test_every_operation_documents_bad_input_and_no_server_error() -> None:
    for method, path, operation in operations(document(True)):
        codes = set(operation["responses"])
        assert "400" in codes, (method, path)
        assert not {c for c in codes if c.startswith("5")} - {"503", "504"}, (method, path)


QUEUE_NAMES = [
    "q", "a" * 256, "a" * 257, "", "a/b", "tab\there", "nul\x00", "del\x7f", "c1\x85",
    "ünïcødé", "a{b}c", "spaces are fine", "dots.are.fine", "emoji 🐇", "%41",
]


@pytest.mark.parametrize("name", QUEUE_NAMES)
def test_the_queue_name_schema_accepts_exactly_the_names_the_broker_accepts(name: str) -> None:
    schema = document()["components"]["schemas"]["QueueName"]
    matches = (
        schema["minLength"] <= len(name) <= schema["maxLength"]
        and re.fullmatch(schema["pattern"].strip("^$"), name) is not None
    )
    try:
        accepted = check_queue(name) == name
    except InvalidQueueName:
        accepted = False
    assert matches == accepted


async def test_the_daemon_serves_the_document_and_its_jsonp_variant() -> None:
    async with TestClient(TestServer(app_of(collectd=True))) as client:
        answer = await client.get("/openapi.json")
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert json.loads(await answer.text()) == json.loads(json.dumps(document(True)))
        jsonp = await client.get("/openapi.json", params={"callback": "show"})
        assert jsonp.content_type == "application/javascript"
        assert (await jsonp.text()).startswith('show({"openapi": "3.1.0"')
