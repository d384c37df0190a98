"""Reader of the duration sketches stored in ``duration_sketch`` (merge + quantiles).

The aggregator (``services/aggregator/sketch.py``) writes the bins of a DDSketch with a
:class:`ddsketch.mapping.LogarithmicMapping` at 1% relative accuracy in its own compact
format 1 (little-endian, sparse, uncompressed)::

    b"DS" | u8 format=1 | f64 relative_accuracy | f64 zero_count | u32 n
          | n * i32 keys (ascending) | n * f64 counts

This module only reads that format (the shared package must not import a service);
``tests/unit/analysis/test_analysis_sketch.py`` checks it against the aggregator's encoder.
Merging adds the bin counts of every hour and partition of a period (exact: DDSketch
bins are additive), and quantiles are computed exactly as
``DDSketch.get_quantile_value``: the value of the first bin whose cumulative count
exceeds ``q·(count − 1)``, so each returned quantile is within 1% of the value of that
rank among the executions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np
from ddsketch.mapping import LogarithmicMapping

__all__ = ["RELATIVE_ACCURACY", "MergedSketch", "SketchFormatError", "decode", "merge"]

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_HEADER = struct.Struct("<2sBddI")
_MAGIC = b"DS"
_FORMAT = 1


class SketchFormatError(ValueError):
    """A stored sketch is not in the expected format (bad magic, version or accuracy)."""


class MergedSketch:
    """Dense bin counts ``counts[i]`` of keys ``lo + i`` plus the zero bin."""

    __slots__ = ("counts", "lo", "zero_count")

    def __init__(
        self, lo: int = 0, counts: np.ndarray | None = None, zero_count: float = 0.0
    ) -> None:
        self.lo = lo
        self.counts: np.ndarray = counts if counts is not None else np.zeros(0)
        self.zero_count = zero_count

    @property
    def count(self) -> float:
        return float(self.zero_count + self.counts.sum())

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """``DDSketch.get_quantile_value(q)`` for each q (None when empty or q ∉ [0, 1])."""
        total = self.count
        if total <= 0:
            return [None for _ in qs]
        cum = np.cumsum(self.counts)
        out: list[float | None] = []
        for q in qs:
            if not 0.0 <= q <= 1.0:
                out.append(None)
                continue
            rank = q * (total - 1.0)
            if rank < self.zero_count:
                out.append(0.0)
                continue
            idx = int(np.searchsorted(cum, rank - self.zero_count, side="right"))
            idx = min(idx, len(cum) - 1)
            out.append(float(_MAPPING.value(self.lo + idx)))
        return out


def decode(blob: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """(keys, counts, zero_count) of one stored sketch."""
    try:
        magic, fmt, accuracy, zero_count, n = _HEADER.unpack_from(blob)
    except struct.error as exc:
        raise SketchFormatError(f"unreadable duration sketch: {exc}") from exc
    if magic != _MAGIC or fmt != _FORMAT:
        raise SketchFormatError("not a duration sketch (bad magic or format)")
    if accuracy != RELATIVE_ACCURACY:
        raise SketchFormatError(f"sketch relative accuracy {accuracy} != {RELATIVE_ACCURACY}")
    if len(blob) != _HEADER.size + 12 * n:
        raise SketchFormatError("truncated duration sketch")
    keys = np.frombuffer(blob, dtype="<i4", count=n, offset=_HEADER.size)
    counts = np.frombuffer(blob, dtype="<f8", count=n, offset=_HEADER.size + 4 * n)
    return keys, counts, float(zero_count)


def merge(blobs: Iterable[bytes | None]) -> MergedSketch:
    """Merge stored sketches (NULLs skipped). Unreadable blobs raise SketchFormatError."""
    decoded = [decode(b) for b in blobs if b is not None]
    zero = sum(z for _, _, z in decoded)
    parts = [(k, c) for k, c, _ in decoded if len(k)]
    if not parts:
        return MergedSketch(zero_count=zero)
    lo = min(int(k.min()) for k, _ in parts)
    hi = max(int(k.max()) for k, _ in parts)
    dense = np.zeros(hi - lo + 1)
    for keys, counts in parts:
        np.add.at(dense, keys.astype(np.int64) - lo, counts)  # duplicate-safe
    return MergedSketch(lo, dense, zero)
