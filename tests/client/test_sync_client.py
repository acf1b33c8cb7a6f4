"""The blocking Client against a real broker: every method, and the errors it raises."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from restmq.client import Client, Lease, LeaseFailure, Message, QueuePolicy, Via
from restmq.errors import (
    BadRequest,
    ClientError,
    Forbidden,
    IdempotencyConflict,
    InvalidQueueName,
    MessageGone,
    MessageTooLarge,
    NotFound,
    NotLeased,
    StaleReceipt,
    Unauthorized,
)
from tests.helpers.broker import Broker, free_port
from tests.helpers.wait import wait_until

TRANSPORTS: list[Via] = ["sse", "comet", "ws"]
AWKWARD = ["007", "", "é ✓", 'quote " and \\ backslash', "line\nbreak", "sep\u2028\x85x"]


def test_add_returns_keys_and_take_returns_the_values_in_order(client: Client, queue: str) -> None:
    first = client.add(queue, "one")
    keys = client.add(queue, AWKWARD)
    assert first == f"{queue}:1"
    assert keys == [f"{queue}:{n}" for n in range(2, 2 + len(AWKWARD))]
    assert client.take(queue) == Message(queue, first, "one", 0)
    taken = client.take(queue, count=100)
    assert [(m.key, m.value) for m in taken] == list(zip(keys, AWKWARD, strict=True))
    assert client.take(queue) is None
    assert client.take(queue, count=5) == []


def test_get_leaves_the_message_and_counts_each_get(client: Client, queue: str) -> None:
    assert client.get(queue) is None
    key = client.add(queue, "v")
    assert client.get(queue) == Message(queue, key, "v", 1)
    assert client.get(queue) == Message(queue, key, "v", 2)
    assert client.stats(queue).len == 1


def test_take_with_wait_returns_a_message_added_meanwhile(client: Client, queue: str) -> None:
    timer = threading.Timer(0.3, client.add, (queue, "late"))
    timer.start()
    message = client.take(queue, wait=10)
    timer.join()
    assert message is not None and message.value == "late"
    assert client.take(queue, count=3, wait=0.2) == []


def test_a_delayed_message_shows_up_later_and_a_ttl_message_expires(
    client: Client, queue: str
) -> None:
    client.add(queue, "later", delay=1)
    assert client.take(queue) is None
    assert client.stats(queue).delayed == 1
    message = client.take(queue, wait=10)
    assert message is not None and message.value == "later"
    client.add(queue, "short-lived", ttl=1)
    wait_until(lambda: client.get(queue) is None, 15, "the ttl message expired")


def test_delete_removes_a_message_by_key(client: Client, queue: str) -> None:
    key = client.add(queue, "v")
    assert client.delete(queue, key) is True
    assert client.delete(queue, key) is False
    assert client.take(queue) is None


def test_reserve_ack_nack_and_extend_manage_leases(client: Client, queue: str) -> None:
    client.add(queue, ["a", "b", "c"])
    lease = client.reserve(queue, timeout=30)
    assert lease is not None
    assert (lease.key, lease.value, lease.deliveries) == (f"{queue}:1", "a", 1)
    assert client.extend(lease, 60) == 60.0
    assert client.nack(lease) == "requeued"
    again = client.reserve(queue)
    assert again is not None and (again.key, again.deliveries) == (lease.key, 2)
    with pytest.raises(StaleReceipt):
        client.ack(lease)  # the first lease's receipt is stale now
    client.ack(again)
    with pytest.raises(MessageGone):
        client.ack(again)
    leases = client.reserve(queue, count=5)
    assert [r.value for r in leases] == ["b", "c"]
    assert client.nack(leases[0], delay=30) == "delayed"
    client.ack(Lease(queue, leases[1].key, leases[1].receipt))
    assert client.reserve(queue) is None
    assert client.reserve(queue, count=2, wait=0.2) == []
    assert client.stats(queue).delayed == 1


def test_an_add_sent_again_with_its_key_is_stored_once(client: Client, queue: str) -> None:
    key = client.add(queue, "pay 17", idempotency_key="order-17")
    assert client.add(queue, "pay 17", idempotency_key="order-17") == key
    assert client.add(queue, ["a", "b"], idempotency_key="batch-1") == [f"{queue}:2", f"{queue}:3"]
    assert client.add(queue, ["a", "b"], idempotency_key="batch-1") == [f"{queue}:2", f"{queue}:3"]
    with pytest.raises(IdempotencyConflict):
        client.add(queue, "pay 18", idempotency_key="order-17")
    assert client.stats(queue).len == 3


def test_settling_a_message_that_was_never_leased_raises_not_leased(
    client: Client, queue: str
) -> None:
    (key,) = client.add(queue, ["waiting"])
    never = Lease(queue, key, "no-lease")
    for settle in (client.ack, client.nack, client.extend):
        with pytest.raises(NotLeased, match=f"message {key} is not leased"):
            settle(never)
    lease = client.reserve(queue)
    assert lease is not None
    client.nack(lease)
    with pytest.raises(StaleReceipt, match="wrong or expired receipt") as stale:
        client.ack(lease)
    assert not isinstance(stale.value, NotLeased)


def test_ack_many_and_nack_many_settle_batches_and_report_each_failure(
    client: Client, queue: str
) -> None:
    other = f"{queue}-other"
    client.add(queue, ["a", "b", "c", "d"])
    client.add(other, "e")
    first = client.reserve(queue, count=3)
    elsewhere = client.reserve(other)
    assert elsewhere is not None
    gone = Lease(queue, f"{queue}:9", "r")
    never = Lease(queue, f"{queue}:4", "r")

    acked = client.ack_many([first[0], gone, elsewhere, never, first[1]])

    assert acked.acked == [first[0].key, first[1].key, elsewhere.key]
    assert acked.failed == [
        LeaseFailure(queue, gone.key, f"no such message: {gone.key}"),
        LeaseFailure(queue, never.key, f"message {never.key} is not leased"),
    ]
    nacked = client.nack_many([first[2], first[0]], delay=30)
    assert nacked.nacked == {first[2].key: "delayed"}
    assert [f.key for f in nacked.failed] == [first[0].key]
    assert client.ack_many([]).acked == []
    stats = client.stats(queue)
    assert (stats.len, stats.leased, stats.delayed) == (1, 0, 1)


def test_policy_max_deliveries_sends_a_message_to_the_dead_letters(
    client: Client, queue: str
) -> None:
    assert client.policy(queue) == QueuePolicy(queue, "broadcast", None)
    assert client.set_policy(queue, "roundrobin", max_deliveries=1) == QueuePolicy(
        queue, "roundrobin", 1
    )
    client.add(queue, "poison")
    lease = client.reserve(queue)
    assert lease is not None
    assert client.nack(lease) == "dead"
    assert client.take(f"{queue}:dead") is not None
    assert client.set_policy(queue, max_deliveries=0) == QueuePolicy(queue, "roundrobin", None)
    assert client.set_policy(queue, "broadcast").policy == "broadcast"


def test_pause_resume_stats_queues_and_purge(client: Client, queue: str) -> None:
    client.add(queue, ["a", "b"])
    client.pause(queue)
    stats = client.stats(queue)
    assert (stats.name, stats.len, stats.status, stats.policy) == (queue, 2, "stopped", "broadcast")
    client.resume(queue)
    assert client.stats()[queue].status == "started"
    assert queue in client.queues()
    assert client.purge(queue) == 2
    assert queue not in client.queues()
    assert client.purge(queue) == 0


def test_bad_input_raises_the_package_errors(client: Client, queue: str) -> None:
    with pytest.raises(InvalidQueueName):
        client.add("a/b", "v")  # refused before anything is sent
    with pytest.raises(InvalidQueueName):
        client.take("")
    with pytest.raises(BadRequest, match="count"):
        client.take(queue, count=0)
    with pytest.raises(BadRequest):
        client.set_policy(queue)
    with pytest.raises(BadRequest, match="non-empty"):
        client.delete(queue, "")


def test_a_message_over_the_size_limit_raises_message_too_large(
    broker_factory: Callable[..., Broker], queue: str
) -> None:
    with Client(broker_factory("--max-message-size", "100").url) as client:
        with pytest.raises(MessageTooLarge):
            client.add(queue, "x" * 101)
        assert client.add(queue, "x" * 100) == f"{queue}:1"


def test_an_unreachable_broker_raises_client_error(queue: str) -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", timeout=2, retry=None)
    with client, pytest.raises(ClientError) as caught:
        client.add(queue, "v")
    assert caught.value.url.endswith(f"/q/{queue}")


def test_a_wrong_base_url_raises_not_found(shared_broker: Broker, queue: str) -> None:
    with Client(shared_broker.url + "/nowhere") as client, pytest.raises(NotFound):
        client.stats(queue)


def test_credentials_are_sent_and_refusals_raise_unauthorized_and_forbidden(
    broker_factory: Callable[..., Broker], tmp_path: Path, queue: str
) -> None:
    acl = tmp_path / "acl.ini"
    acl.write_text("[DEFAULT]\nusername = alice\npassword = s3cret\n\n"
                   "[admin]\nhosts_allow = 10.9.9.9\n")
    url = broker_factory("--acl", str(acl)).url
    with Client(url) as anonymous:
        with pytest.raises(Unauthorized):
            anonymous.add(queue, "v")
        for via in TRANSPORTS:  # refused at once, not retried
            with pytest.raises(Unauthorized):
                next(anonymous.stream(queue, via))
    with Client(url, auth=("alice", "s3cret")) as alice:
        assert alice.add(queue, "v") == f"{queue}:1"
        assert alice.take(queue) is not None
        for via in TRANSPORTS:  # the credentials go to every streaming route
            key = alice.add(f"{queue}-{via}", "waiting")  # the first consumer gets it
            assert next(alice.stream(f"{queue}-{via}", via)).key == key
        with pytest.raises(Forbidden):
            alice.stats()
