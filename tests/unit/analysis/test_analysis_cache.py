"""TTL + LRU cache of comparison results."""

from __future__ import annotations

import pytest

from services.analysis.cache import TTLCache

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_hit_then_expiry() -> None:
    clock = Clock()
    c: TTLCache[str] = TTLCache(10.0, 4, clock)
    assert c.get("k") is None
    c.put("k", "v")
    assert c.get("k") == "v"
    clock.t = 9.9
    assert c.get("k") == "v"
    clock.t = 10.0
    assert c.get("k") is None and len(c) == 0
    assert (c.hits, c.misses) == (2, 2)


def test_least_recently_used_is_evicted() -> None:
    c: TTLCache[int] = TTLCache(100.0, 2, Clock())
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3


def test_zero_ttl_disables() -> None:
    c: TTLCache[int] = TTLCache(0.0, 2, Clock())
    c.put("a", 1)
    assert not c.enabled and c.get("a") is None and len(c) == 0
