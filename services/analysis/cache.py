"""A small in-process LRU cache with a time to live, for comparison results.

Keys must capture everything the value depends on. The comparison cache uses
(normalised request, hour-aligned period, every summed input of both arms, their number
of rows and latest hour): the result is a function of exactly these, so any change of the
underlying data changes the key and a hit is never stale; the TTL only bounds memory and
the life of entries whose period has moved on. One cache per process (each replica has
its own).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

V = TypeVar("V")


class TTLCache(Generic[V]):
    """LRU with expiry; ``ttl_s == 0`` disables it (get always misses, put is a no-op)."""

    def __init__(
        self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> V | None:
        if not self.enabled:
            self.misses += 1
            return None
        item = self._data.get(key)
        if item is None or item[0] <= self._clock():
            if item is not None:
                del self._data[key]
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return item[1]

    def put(self, key: Hashable, value: V) -> None:
        if not self.enabled:
            return
        self._data[key] = (self._clock() + self.ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()
