"""A real collectd 5 daemon feeding a real broker (SPEC §5, issue 5).

collectd (Debian's ``collectd-core``) runs in the foreground with a config written by the test:
the ``load`` plugin every second and ``write_http`` to ``/collectd/data``, once with
``Format "Command"`` and once with ``Format "JSON"``. Events go the way the original README's
``event.sh`` sends them (``curl -X POST -d "$EVENT"``): once fed by hand with the README's
example notification, once run by collectd itself (``exec`` plugin, ``NotificationExec``)
on a notification from its ``threshold`` plugin.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.adapters.samples import NOTIFICATION, NOTIFICATION_RECORDS
from tests.helpers.broker import Broker
from tests.helpers.wait import async_wait_until

COLLECTD = Path("/usr/sbin/collectd")
PLUGIN_DIR = Path("/usr/lib/collectd")
TYPES_DB = Path("/usr/share/collectd/types.db")
CURL = Path("/usr/bin/curl")
ARRIVAL_TIMEOUT = 20.0

# The original README.collectd's event.sh, word for word but for the server's address.
EVENT_SH = """#!/bin/bash

EVENT=`cat`
/usr/bin/curl -X POST -d "$EVENT" http://{server}/collectd/event
"""

BASE_CONFIG = """\
FQDNLookup false
Hostname "restmq-test"
Interval 1
PluginDir "{plugin_dir}"
TypesDB "{types_db}"
LoadPlugin load
"""

# write_http buffers 4 KiB of values before a POST; FlushInterval makes it send every second.
WRITE_HTTP_CONFIG = """\
<LoadPlugin write_http>
  FlushInterval 1
</LoadPlugin>
<Plugin write_http>
  <Node "restmq">
    URL "{url}/collectd/data"
    Format "{format}"
  </Node>
</Plugin>
"""

# A load below a huge minimum is a WARNING on every reading, however idle the machine. The exec
# plugin refuses to run programs as root, so as root the script runs as nobody.
EXEC_CONFIG = """\
LoadPlugin exec
LoadPlugin threshold
<Plugin exec>
  NotificationExec "{user}" "{script}"
</Plugin>
<Plugin threshold>
  <Plugin "load">
    <Type "load">
      DataSource "shortterm"
      WarningMin 1000000
      Persist true
    </Type>
  </Plugin>
</Plugin>
"""


def require(*paths: Path) -> None:
    """Skip when a program is missing (fail under CI=true: .ci/packages.txt installs it)."""
    missing = [str(path) for path in paths if not path.exists()]
    if not missing:
        return
    reason = f"not installed: {', '.join(missing)} (Debian collectd-core, libyajl2, libcurl4, curl)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def collectd_broker(broker_factory: Callable[..., Broker]) -> Broker:
    return broker_factory("--collectd")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user of collectd's exec plugin can read."""
    folder = Path(tempfile.mkdtemp(prefix="rmq-collectd-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def base_config() -> str:
    return BASE_CONFIG.format(plugin_dir=PLUGIN_DIR, types_db=TYPES_DB)


@contextmanager
def running_collectd(config: str, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``collectd -f -C <conf>`` in the foreground; stopped (or killed) on exit."""
    conf = folder / "collectd.conf"
    conf.write_text(config)
    with (folder / "collectd.log").open("ab") as log:
        proc = subprocess.Popen([str(COLLECTD), "-f", "-C", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def take_until(
    http: aiohttp.ClientSession, broker: Broker, queue: str, proc: subprocess.Popen[bytes],
    log: Path,
) -> list[Any]:
    """Consume ``queue`` with ``GET /q`` until at least two messages came (collectd alive)."""
    taken: list[Any] = []

    async def two_taken() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"collectd exited {proc.returncode}: {log.read_text()}")
        async with http.get(f"{broker.url}/q/{queue}") as response:
            if response.status == 200:
                taken.append(await response.json())
        return len(taken) >= 2

    await async_wait_until(two_taken, ARRIVAL_TIMEOUT, f"collectd messages in {queue}")
    return taken


LOAD_VALUE = re.compile(r"[0-9]+(\.[0-9]+)?(:[-+0-9.e]+){3}")


def check_command_values(records: list[dict[str, Any]]) -> None:
    for record in records:
        assert list(record) == ["host", "plugin_instance", "type_instance", "interval", "value"]
        assert record["host"] == "restmq-test"
        assert (record["plugin_instance"], record["type_instance"]) == ("load", "load")
        assert record["interval"] == 1.0
        assert LOAD_VALUE.fullmatch(record["value"]), record["value"]


def check_json_values(items: list[dict[str, Any]]) -> None:
    for item in items:
        assert (item["host"], item["plugin"], item["type"]) == ("restmq-test", "load", "load")
        assert item["dsnames"] == ["shortterm", "midterm", "longterm"]
        assert len(item["values"]) == 3
        assert all(isinstance(value, int | float) for value in item["values"])


@pytest.mark.parametrize(
    ("fmt", "check"), [("Command", check_command_values), ("JSON", check_json_values)]
)
async def test_collectd_write_http_values_arrive_in_collectd_data_and_can_be_consumed(
    http: aiohttp.ClientSession,
    collectd_broker: Broker,
    shared_dir: Path,
    fmt: str,
    check: Callable[[list[dict[str, Any]]], None],
) -> None:
    require(COLLECTD, PLUGIN_DIR / "write_http.so", PLUGIN_DIR / "load.so", TYPES_DB)
    config = base_config() + WRITE_HTTP_CONFIG.format(url=collectd_broker.url, format=fmt)
    with running_collectd(config, shared_dir) as proc:
        taken = await take_until(http, collectd_broker, "collectd_data", proc,
                                 shared_dir / "collectd.log")
    assert [message["key"] for message in taken] == ["collectd_data:1", "collectd_data:2"]
    for message in taken:
        values = json.loads(message["value"])
        assert isinstance(values, list) and values
        check(values)


def write_event_sh(folder: Path, broker: Broker) -> Path:
    script = folder / "event.sh"
    script.write_text(EVENT_SH.format(server=f"127.0.0.1:{broker.port}"))
    script.chmod(0o755)
    return script


async def test_the_readme_event_script_puts_a_notification_into_collectd_event(
    http: aiohttp.ClientSession, collectd_broker: Broker, shared_dir: Path
) -> None:
    require(CURL)
    script = write_event_sh(shared_dir, collectd_broker)
    done = subprocess.run(["/bin/bash", str(script)], input=NOTIFICATION.encode(),
                          capture_output=True, timeout=20, check=True)
    assert done.stdout == b"collectd_event:1\r\n", done.stderr
    async with http.get(f"{collectd_broker.url}/q/collectd_event") as response:
        taken = await response.json()
    assert json.loads(taken["value"]) == NOTIFICATION_RECORDS


async def test_collectd_notifications_sent_through_the_readme_event_script_arrive(
    http: aiohttp.ClientSession, collectd_broker: Broker, shared_dir: Path
) -> None:
    require(COLLECTD, PLUGIN_DIR / "exec.so", PLUGIN_DIR / "threshold.so", CURL)
    script = write_event_sh(shared_dir, collectd_broker)
    user = "nobody:nogroup" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    config = base_config() + EXEC_CONFIG.format(user=user, script=script)
    with running_collectd(config, shared_dir) as proc:
        taken = await take_until(http, collectd_broker, "collectd_event", proc,
                                 shared_dir / "collectd.log")
    for message in taken:
        records = json.loads(message["value"])
        assert records[0] == {"severity": "WARNING"}
        assert {"host": "restmq-test"} in records and {"plugin": "load"} in records
        assert list(records[-1]) == ["event_text"]
        assert "restmq-test" in records[-1]["event_text"]
