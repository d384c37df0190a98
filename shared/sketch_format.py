"""The stored form of the duration quantile sketches, defined once.

The aggregator writes, and the analysis reads, the bins of a DDSketch with a
:class:`ddsketch.mapping.LogarithmicMapping` at 1% relative accuracy in
``duration_sketch bytea`` columns, format 1 (little-endian, sparse)::

    b"DS" | u8 format=1 | f64 relative_accuracy | f64 zero_count | u32 n
          | n * i32 keys (ascending) | n * f64 counts

(key ``k`` stands for the values in ``(gamma^(k-1), gamma^k]``, gamma = 1.01/0.99).
Bump ``FORMAT`` on any change of this layout.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
from ddsketch.mapping import LogarithmicMapping

__all__ = ["FORMAT", "MAPPING", "RELATIVE_ACCURACY", "SketchFormatError", "decode", "encode"]

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
FORMAT = 1
_HEADER = struct.Struct("<2sBddI")
_MAGIC = b"DS"


class SketchFormatError(ValueError):
    """A stored sketch is not in the expected format (bad magic, version, accuracy or size)."""


def encode(keys: Sequence[int], counts: Sequence[float], zero_count: float) -> bytes:
    """Serialize bins given in ascending key order."""
    head = _HEADER.pack(_MAGIC, FORMAT, RELATIVE_ACCURACY, zero_count, len(keys))
    return (
        head + np.asarray(keys, dtype="<i4").tobytes() + np.asarray(counts, dtype="<f8").tobytes()
    )


def decode(blob: bytes | bytearray | memoryview) -> tuple[np.ndarray, np.ndarray, float]:
    """``(keys, counts, zero_count)`` of one stored sketch (read-only arrays)."""
    raw = bytes(blob)
    try:
        magic, fmt, accuracy, zero_count, n = _HEADER.unpack_from(raw)
    except struct.error as exc:
        raise SketchFormatError(f"truncated duration sketch: {exc}") from exc
    if magic != _MAGIC or fmt != FORMAT:
        raise SketchFormatError("not a duration sketch (bad magic or format)")
    if accuracy != RELATIVE_ACCURACY:
        raise SketchFormatError(f"sketch relative accuracy {accuracy} != {RELATIVE_ACCURACY}")
    if len(raw) != _HEADER.size + 12 * n:
        raise SketchFormatError("truncated duration sketch")
    keys = np.frombuffer(raw, dtype="<i4", count=n, offset=_HEADER.size)
    counts = np.frombuffer(raw, dtype="<f8", count=n, offset=_HEADER.size + 4 * n)
    return keys, counts, float(zero_count)
