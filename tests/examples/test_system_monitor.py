"""examples/system-monitor: a producer process posting psutil readings every 0.3 s and two
consumer processes streaming them, one with a threshold set low enough to raise alarms."""

from __future__ import annotations

import json
import re
import urllib.request

from tests.examples.conftest import ONE_BACKEND, finish, start_example
from tests.helpers.broker import Broker
from tests.helpers.wait import wait_until

pytestmark = ONE_BACKEND
READINGS = 5
KEYS = [f"sysmon:{n}" for n in range(1, READINGS + 1)]
NEVER = ("--cpu", "1000", "--disk", "1000", "--load", "1000")


def consumers(broker: Broker, queue: str) -> int:
    with urllib.request.urlopen(f"{broker.url}/stats/{queue}", timeout=5) as response:
        return int(json.load(response)["consumers"])


def test_readings_flow_and_a_low_threshold_raises_an_alarm_for_each(broker: Broker) -> None:
    server = ("--server", broker.url, "--count", str(READINGS))
    alarmed = start_example("system-monitor/consumer.py", *server, *NEVER, "--memory", "0")
    calm = start_example("system-monitor/consumer.py", *server, *NEVER, "--memory", "1000",
                         "--via", "comet")
    # Broadcast reaches the consumers connected when a reading arrives: wait for both.
    wait_until(lambda: consumers(broker, "sysmon") == 2, 10, "two consumers")
    producer = start_example("system-monitor/producer.py", *server, "--interval", "0.3")
    sent = finish(producer).splitlines()
    assert [line.split(": ", 1)[0] for line in sent] == KEYS
    for consumer, alarms in ((alarmed, READINGS), (calm, 0)):
        lines = finish(consumer).splitlines()
        readings = [line for line in lines if re.match(r"sysmon:\d+ ", line)]
        assert [line.split()[0] for line in readings] == KEYS
        assert all("cpu" in line and "memory" in line and "load" in line for line in readings)
        found = [line for line in lines if line.startswith("ALARM")]
        assert len(found) == alarms, lines
        assert all("memory use %" in line for line in found)
