"""Mergeable quantile sketch of execution durations (DDSketch, 1% relative accuracy).

:class:`DurationSketch` keeps the bins of a :class:`ddsketch.DDSketch` with the same
:class:`~ddsketch.mapping.LogarithmicMapping`, as a plain ``{key: count}`` dict: adding a
value is one key computation and one dict increment, and one key can feed several
sketches (an execution updates its version row and its experiment row). Quantiles are
computed exactly as ``DDSketch.get_quantile_value`` does, and :meth:`to_ddsketch` gives a
real ``DDSketch`` for any other use. Every quantile ``q`` returned satisfies the
DDSketch guarantee: ``|q - x| <= 0.01 * x`` for the value ``x`` of rank
``floor(q * (n - 1))`` among the values added.

Serialized form (``duration_sketch bytea``): :mod:`shared.sketch_format`.

Only non-negative values are supported (durations); zero and values below the mapping's
smallest positive value count in ``zero_count``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ddsketch import DDSketch
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import DenseStore

from shared import sketch_format

__all__ = [
    "RELATIVE_ACCURACY",
    "DurationSketch",
    "decode_sketch",
    "encode_sketch",
    "merge_sketches",
    "sketch_key",
]

RELATIVE_ACCURACY = sketch_format.RELATIVE_ACCURACY
_MAPPING = sketch_format.MAPPING
_MIN_POSITIVE: float = _MAPPING.min_possible

sketch_key = _MAPPING.key
"""The bin key of a positive value (``LogarithmicMapping.key`` of DDSketch at 1%)."""


class DurationSketch:
    """Bins of a DDSketch: ``bins[key] = count`` plus the count of zeros."""

    __slots__ = ("bins", "zero_count")

    def __init__(self, bins: dict[int, float] | None = None, zero_count: float = 0.0) -> None:
        self.bins: dict[int, float] = bins if bins is not None else {}
        self.zero_count = zero_count

    # ------------------------------------------------------------------ building
    def add(self, value: float) -> None:
        if value > _MIN_POSITIVE:
            key = sketch_key(value)
            bins = self.bins
            bins[key] = bins.get(key, 0.0) + 1.0
        elif value >= 0:
            self.zero_count += 1.0
        else:
            raise ValueError(f"negative duration {value!r}")

    def add_key(self, key: int | None) -> None:
        """Add a value whose key was computed by :func:`key_of` (``None`` = zero)."""
        if key is None:
            self.zero_count += 1.0
        else:
            bins = self.bins
            bins[key] = bins.get(key, 0.0) + 1.0

    def merge(self, other: DurationSketch) -> None:
        bins = self.bins
        for key, count in other.bins.items():
            bins[key] = bins.get(key, 0.0) + count
        self.zero_count += other.zero_count

    def copy(self) -> DurationSketch:
        return DurationSketch(dict(self.bins), self.zero_count)

    # ------------------------------------------------------------------ reading
    @property
    def count(self) -> float:
        return self.zero_count + sum(self.bins.values())

    def quantile(self, q: float) -> float | None:
        """``DDSketch.get_quantile_value(q)`` of the same values (None when empty)."""
        count = self.count
        if q < 0 or q > 1 or count == 0:
            return None
        rank = q * (count - 1)
        if rank < self.zero_count:
            return 0.0
        rank -= self.zero_count
        running = 0.0
        for key in sorted(self.bins):
            running += self.bins[key]
            if running > rank:
                return float(_MAPPING.value(key))
        return float(_MAPPING.value(max(self.bins)))  # pragma: no cover - rounding guard

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles with one sort of the bins."""
        wanted = list(qs)
        count = self.count
        if count == 0:
            return [None for _ in wanted]
        keys = sorted(self.bins)
        out: list[float | None] = []
        for q in wanted:
            if q < 0 or q > 1:
                out.append(None)
                continue
            rank = q * (count - 1)
            if rank < self.zero_count:
                out.append(0.0)
                continue
            rank -= self.zero_count
            running = 0.0
            value: float | None = None
            for key in keys:
                running += self.bins[key]
                if running > rank:
                    value = float(_MAPPING.value(key))
                    break
            out.append(value if value is not None else float(_MAPPING.value(keys[-1])))
        return out

    def to_ddsketch(self) -> BaseDDSketch:
        """A ``ddsketch`` sketch with these bins (count and quantiles; not sum/min/max)."""
        store = DenseStore()
        for key, count in self.bins.items():
            store.add(key, count)
        return BaseDDSketch(
            mapping=LogarithmicMapping(RELATIVE_ACCURACY),
            store=store,
            negative_store=DenseStore(),
            zero_count=self.zero_count,
        )

    @classmethod
    def from_ddsketch(cls, sketch: DDSketch | BaseDDSketch) -> DurationSketch:
        """Bins of a ``ddsketch`` sketch built with 1% relative accuracy."""
        probe: Any = sketch
        mapping = probe._mapping
        if mapping.gamma != _MAPPING.gamma or type(mapping) is not LogarithmicMapping:
            raise ValueError("only LogarithmicMapping sketches at 1% relative accuracy merge here")
        if probe._negative_store.count:
            raise ValueError("negative values are not durations")
        store = probe._store
        bins = {
            store.offset + i: float(c)
            for i, c in enumerate(store.bins)
            if c  # dense store layout
        }
        return cls(bins, float(probe._zero_count))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DurationSketch):
            return NotImplemented
        return self.zero_count == other.zero_count and {
            k: v for k, v in self.bins.items() if v
        } == {k: v for k, v in other.bins.items() if v}

    def __repr__(self) -> str:
        return f"DurationSketch(count={self.count}, bins={len(self.bins)})"


_log = math.log
_ceil = math.ceil
_KEY_MULTIPLIER: float = _MAPPING._multiplier
_KEY_OFFSET: float = _MAPPING._offset
assert type(_MAPPING) is LogarithmicMapping  # the expression below is its ``key()``


def key_of(value: float) -> int | None:
    """The bin key of a non-negative duration (``None`` for the zero bin).

    ``LogarithmicMapping.key`` written out (same operations, same result: a unit test
    compares them): it runs for every execution."""
    if value > _MIN_POSITIVE:
        return int(_ceil(_log(value, 2) * _KEY_MULTIPLIER) + _KEY_OFFSET)
    return None


def encode_sketch(sketch: DurationSketch) -> bytes:
    keys = sorted(k for k, v in sketch.bins.items() if v)
    return sketch_format.encode(keys, [sketch.bins[k] for k in keys], sketch.zero_count)


def decode_sketch(data: bytes | bytearray | memoryview | None) -> DurationSketch:
    """The sketch stored in ``duration_sketch`` (an empty one for NULL)."""
    if data is None:
        return DurationSketch()
    keys, counts, zero_count = sketch_format.decode(data)
    return DurationSketch(dict(zip(keys.tolist(), counts.tolist(), strict=True)), zero_count)


def merge_sketches(blobs: Iterable[bytes | None]) -> DurationSketch:
    """Merge stored sketches (e.g. every hour and partition of a range)."""
    out = DurationSketch()
    for blob in blobs:
        if blob is not None:
            out.merge(decode_sketch(blob))
    return out
