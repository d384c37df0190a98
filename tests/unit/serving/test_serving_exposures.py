"""The exposure buffer: bounded, never blocking, dedupe, encoding and partitioning."""

from __future__ import annotations

import inspect
import random
from typing import Any

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from prometheus_client import CollectorRegistry

from services.assignment.serving.exposures import ExposureSink, encode_exposure, murmur2
from services.assignment.serving.metrics import ServingMetrics
from services.assignment.serving.settings import ServingSettings
from shared.events import ExposureEvent

pytestmark = pytest.mark.unit

PREFIX = (
    b'{"event_version":1,"experiment_id":"972a8469-1641-4f82-8b9d-2434e465e150",'
    b'"experiment_key":"e","variant_id":"bd9c66b3-ad3c-4d6d-9a3d-1fa7bc8960a9",'
    b'"variant_key":"v","schema_id":"17fc695a-07a0-4a6e-8822-e8f36c031199",'
    b'"replica":"r","unit_id":'
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sink(**settings: object) -> tuple[ExposureSink, CollectorRegistry, Clock]:
    registry = CollectorRegistry()
    clock = Clock()
    s = ExposureSink(ServingSettings(**settings), ServingMetrics(registry), clock=clock)  # type: ignore[arg-type]
    return s, registry, clock


class LenAndAppendOnly:
    """Stands in for the sink's deque with only its O(1) ``len()`` and ``append``:
    an offer that iterates, indexes or copies the buffer (work growing with it) fails."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __len__(self) -> int:
        return len(self.items)

    def append(self, item: Any) -> None:
        self.items.append(item)


def test_full_buffer_drops_and_counts_without_growing() -> None:
    s, registry, _ = sink(exposure_buffer_size=100, exposure_dedupe_window_s=0)
    buffer = LenAndAppendOnly()
    s.buffer = buffer  # type: ignore[assignment]
    for i in range(10_100):
        s.offer(PREFIX, f"u{i}", 0.5)
    # constant time per offer, full or not: a plain call (it cannot await anything) that
    # only asks the buffer's length and appends, and remembers nothing when dedupe is off
    assert not inspect.iscoroutinefunction(ExposureSink.offer)
    assert [item[1] for item in buffer.items] == [f"u{i}" for i in range(100)]
    assert not s._seen
    assert s.dropped == 10_000
    assert (
        registry.get_sample_value("assignment_exposures_dropped_total", {"reason": "buffer_full"})
        == 10_000
    )


def test_dedupe_skips_recent_repeats_and_forgets_after_the_window() -> None:
    s, registry, clock = sink(exposure_dedupe_window_s=60, exposure_dedupe_max_entries=1000)
    for _ in range(3):
        s.offer(PREFIX, "u1", 0.5)
    assert len(s.buffer) == 1
    assert registry.get_sample_value("assignment_exposures_deduplicated_total") == 2
    other = PREFIX.replace(b'"variant_key":"v"', b'"variant_key":"w"')
    s.offer(other, "u1", 0.5)  # another variant (after a change of weights): exposed
    assert len(s.buffer) == 2
    clock.now += 61
    s.offer(PREFIX, "u1", 0.5)
    assert len(s.buffer) == 3


def test_dedupe_memory_is_bounded() -> None:
    s, _, _ = sink(exposure_dedupe_window_s=60, exposure_dedupe_max_entries=50)
    for i in range(500):
        s.offer(PREFIX, f"u{i}", 0.5)
    assert len(s._seen) == 50
    s.offer(PREFIX, "u0", 0.5)  # forgotten: exposed again
    assert len(s.buffer) == 501


def test_a_dropped_exposure_is_not_remembered() -> None:
    s, _, _ = sink(exposure_buffer_size=1, exposure_dedupe_window_s=60)
    s.offer(PREFIX, "u1", 0.5)
    s.offer(PREFIX, "u2", 0.5)  # dropped
    s.buffer.clear()
    s.offer(PREFIX, "u2", 0.5)
    assert [item[1] for item in s.buffer] == ["u2"]


def test_disabled_sink_takes_nothing() -> None:
    s, _, _ = sink(exposures_enabled=False)
    s.offer(PREFIX, "u1", 0.5)
    assert not s.buffer
    assert s.health() == {"status": "ok", "enabled": False}


def test_encoded_exposure_is_an_exposure_event() -> None:
    for unit in ("u-1", 'quote"and\\slash', "ünï-用户", "😀", "x" * 200):
        event = ExposureEvent.model_validate_json(encode_exposure(PREFIX, unit, 0.0001, 1.7e9))
        assert event.unit_id == unit and event.bucket == 0.0001
        assert event.replica == "r" and event.variant_key == "v"
        assert event.exposed_at.tzinfo is not None


def test_murmur2_is_the_java_clients() -> None:
    rnd = random.Random(5)
    keys = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in range(0, 70) for _ in range(30)]
    keys += [f"user-{i}".encode() for i in range(2000)] + ["ünï-用户".encode()]
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key), key
