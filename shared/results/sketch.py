"""Reader of the duration sketches stored in ``duration_sketch`` (merge + quantiles).

The aggregator (``services/aggregator/sketch.py``) writes the bins of a DDSketch in the
format of :mod:`shared.sketch_format`; this module merges many of them with numpy.
Merging adds the bin counts of every hour and partition of a period (exact: DDSketch
bins are additive), and quantiles are computed exactly as
``DDSketch.get_quantile_value``: the value of the first bin whose cumulative count
exceeds ``q·(count − 1)``, so each returned quantile is within 1% of the value of that
rank among the executions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from shared.sketch_format import MAPPING, RELATIVE_ACCURACY, SketchFormatError, decode

__all__ = ["RELATIVE_ACCURACY", "MergedSketch", "SketchFormatError", "decode", "merge"]

_MAPPING = MAPPING


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
