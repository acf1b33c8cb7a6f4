"""The paged listings as the OpenAPI document describes them (SPEC §7, docs/api.md#listings).

The document names ``limit`` and ``after`` on every listing, with the bounds the handlers
check, and its closed schemas accept what a real broker answers on a first page (with
``next``) and on a last page (without it). Schemathesis may or may not pick a ``limit`` small
enough to get a ``next``; these tests always do.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from restmq.http.listing import DEFAULT_LIMIT, MAX_LIMIT
from restmq.http.openapi import document
from tests.helpers.broker import Broker

LISTINGS = ["/q", "/q/", "/control", "/control/", "/stats", "/stats/", "/events/stats"]
JSON_LISTINGS = [("/q/", "Queues"), ("/control/", "ControlList"), ("/stats/", "AllStats")]
JSON_ACCEPT = {"Accept": "application/json"}


def _parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = document()["components"]["parameters"]
    return [parameters[p["$ref"].rsplit("/", 1)[1]] for p in operation.get("parameters", [])]


def _validator(name: str) -> Draft202012Validator:
    """A validator of one component schema (its ``$ref``s resolved within the document)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
    return Draft202012Validator(schema)


@pytest.mark.parametrize("path", LISTINGS)
def test_every_listing_documents_limit_and_after_with_the_handlers_bounds(path: str) -> None:
    for method in ("get", "head"):
        operation = document()["paths"][path].get(method)
        assert operation is not None, (method, path)
        found = {p["name"]: p for p in _parameters(operation)}
        assert {"limit", "after"} <= set(found), (method, path)
        limit = found["limit"]["schema"]
        assert (limit["minimum"], limit["maximum"]) == (1, MAX_LIMIT)
        assert limit["default"] == DEFAULT_LIMIT
        assert "limit" in operation["responses"]["400"]["description"]


def test_only_the_listings_take_limit_and_after() -> None:
    for path, item in document(True)["paths"].items():
        for method, operation in item.items():
            paging = {"limit", "after"} & {p["name"] for p in _parameters(operation)}
            assert paging == ({"limit", "after"} if path in LISTINGS else set()), (method, path)


def test_the_purge_says_the_id_counter_is_kept() -> None:
    description = document()["paths"]["/q/{queue}"]["delete"]["description"]
    assert "counter is kept" in description
    assert "keys keep counting" in description


def test_a_first_and_a_last_page_match_their_closed_schemas(broker: Broker) -> None:
    with httpx.Client(base_url=broker.url, headers=JSON_ACCEPT, timeout=10) as http:
        for name in ("a", "b", "c"):
            assert http.post(f"/q/{name}", data={"value": "v"}).status_code == 200
        for path, schema in JSON_LISTINGS:
            first = http.get(path, params={"limit": 2}).json()
            last = http.get(path, params={"limit": 2, "after": first["next"]}).json()
            _validator(schema).validate(first)
            _validator(schema).validate(last)
            assert (first["count"], first["next"], list(first["queues"])) == (3, "b", ["a", "b"])
            assert (last["count"], list(last["queues"])) == (3, ["c"])
            assert "next" not in last


def test_a_bad_limit_is_the_documented_400(broker: Broker) -> None:
    with httpx.Client(base_url=broker.url, headers=JSON_ACCEPT, timeout=10) as http:
        for limit in ["0", str(MAX_LIMIT + 1), "ten", "1.5", "-1"]:
            for path, _ in JSON_LISTINGS:
                answer = http.get(path, params={"limit": limit})
                assert answer.status_code == 400, (path, limit, answer.text)
                _validator("Error").validate(answer.json())
                assert "limit" in answer.json()["error"]
