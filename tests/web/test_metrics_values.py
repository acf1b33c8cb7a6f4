"""The pure parts of ``restmq.metrics``: bounded labels and the queue depth families."""

from __future__ import annotations

import pytest

from restmq import metrics
from restmq.types import QueueStats


def test_queue_labels_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_QUEUE_LABELS", 2)
    monkeypatch.setattr(metrics, "_labelled", set())
    labels = [metrics.queue_label(q) for q in ("a", "b", "c", "a", "d", "b")]
    assert labels == ["a", "b", metrics.OTHER_QUEUE, "a", metrics.OTHER_QUEUE, "b"]


@pytest.mark.parametrize(
    ("method", "label"),
    [("GET", "GET"), ("DELETE", "DELETE"), ("FROB", "OTHER"), ("get", "OTHER")],
)
def test_unknown_methods_share_one_label(method: str, label: str) -> None:
    assert metrics.method_label(method) == label


def test_depth_families_without_storage_report_only_that_it_is_down() -> None:
    families = metrics.depth_families([], storage_up=False)
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [
        ("restmq_storage_up", [0])
    ]


def test_depth_families_give_every_state_of_every_queue() -> None:
    stats = QueueStats("q", len=3, status="started", policy="broadcast", leased=1, delayed=2,
                       dead=4, consumers=5)
    families = {f.name: f for f in metrics.depth_families([stats], storage_up=True)}
    depth = {s.labels["state"]: s.value for s in families["restmq_queue_messages"].samples}
    assert depth == {"waiting": 3, "leased": 1, "delayed": 2, "dead": 4}
    assert [s.value for s in families["restmq_queue_consumers"].samples] == [5]
    assert [s.value for s in families["restmq_queues"].samples] == [1]
