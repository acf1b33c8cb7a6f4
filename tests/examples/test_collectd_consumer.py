"""examples/collectd-consumer: a consumer process follows both collectd queues of a real
broker fed with bodies shaped as collectd 5.12's write_http sends them, and prints them."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from tests.adapters.samples import COLLECTD_JSON, NOTIFICATION, PUTVAL
from tests.examples.conftest import ONE_BACKEND, finish, start_example
from tests.helpers.broker import Broker

pytestmark = ONE_BACKEND


def post(broker: Broker, path: str, body: str, content_type: str) -> None:
    request = urllib.request.Request(
        broker.url + path, data=body.encode(), headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_the_consumer_prints_command_and_json_values_and_events(
    broker_factory: Callable[..., Broker],
) -> None:
    broker = broker_factory("--collectd")
    post(broker, "/collectd/data", PUTVAL, "text/plain")
    post(broker, "/collectd/data", COLLECTD_JSON, "application/json")
    post(broker, "/collectd/event", NOTIFICATION, "text/plain")
    consumer = start_example("collectd-consumer/consumer.py", "--server", broker.url,
                             "--count", "3", "--via", "comet")
    lines = sorted(finish(consumer).splitlines())
    assert lines == sorted([
        "[collectd_data] restmq-test load/load = 3.42, 2.19, 1.10 at 1795840549.195 "
        "(every 1.0 s)",
        "[collectd_data] restmq-test cpu-0/cpu-idle = 42 at 1795840550.169 (every 1.0 s)",
        "[collectd_data] restmq-test load/load shortterm=3.54736328125, "
        "midterm=2.2451171875, longterm=1.125 at 1795840553.203",
        "[collectd_event] EVENT WARNING collectd_restmq_server: "
        + NOTIFICATION.split("\n\n", 1)[1],
    ])
