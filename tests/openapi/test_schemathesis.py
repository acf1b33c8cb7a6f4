"""Schemathesis against a real broker: no 500, and no answer the document does not describe.

The broker runs with ``--collectd`` on each storage backend; schemathesis reads its
``/openapi.json`` and calls every operation with generated requests (the documented examples,
boundary and negative values, then random ones), checking that no answer is a server error
and that each answer's status, content type, headers and body are the documented ones, and
that a method a path does not list answers 405 with ``Allow``.

Bounded for CI: a few random examples per operation, a fixed seed (a failure reproduces),
long polls shortened to ``WAIT`` seconds, and no streams (``RESTMQ_FUZZ_EXAMPLES=200
RESTMQ_FUZZ_SEED=<n>`` searches deeper by hand): the comet, SSE and WebSocket routes
and the dashboard feed never end by themselves (their opening is tested in tests/e2e and
tests/web). HEAD twins are left out too: they run the GET handlers, which are fuzzed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from restmq.protocol import fields as checks
from tests.helpers.broker import Broker

pytestmark = pytest.mark.timeout(300)  # one test per backend runs every operation
MAX_EXAMPLES = int(os.environ.get("RESTMQ_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("RESTMQ_FUZZ_SEED", "2009"))  # any fixed number: a run reproduces
WAIT = 0.05
STREAMS = r"^/(c|sse|ws)/|^/events/stats$"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]


def _config(base_url: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "base-url": base_url,
        "request-timeout": 10,
        "generation": {"max-examples": MAX_EXAMPLES},
        "phases": {"stateful": {"enabled": False}},
    })


@pytest.fixture
def broker_schema(broker_factory: Callable[..., Broker]) -> Any:
    """The document served by a fresh ``--collectd`` broker."""
    broker = broker_factory("--collectd")
    return schemathesis.openapi.from_url(broker.url + "/openapi.json", config=_config(broker.url))


def _seconds(value: object) -> float | None:
    """A ``wait`` as sent: a JSON number in a body, or text in a query string (schemathesis's
    coverage phase hands query values over already serialised, ``"299.0"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _shorten_long_polls(case: schemathesis.Case) -> None:
    """A documented ``wait`` may be 300 s; a fuzzed request waits at most ``WAIT``. A wait
    out of range is left alone: the broker refuses it at once (400)."""
    for fields in (case.query, case.body):
        if not isinstance(fields, dict):
            continue
        wait = _seconds(fields.get("wait"))
        if wait is not None and WAIT < wait <= checks.MAX_WAIT:
            fields["wait"] = WAIT


schema = (
    schemathesis.pytest.from_fixture("broker_schema")
    .exclude(path_regex=STREAMS)
    .exclude(method="HEAD")
)


@schema.parametrize()
def test_the_broker_answers_as_its_openapi_document_says(case: schemathesis.Case) -> None:
    _shorten_long_polls(case)
    case.call_and_validate(checks=CHECKS)
