"""The stored sketch format: round trip and refusal of foreign bytes."""

from __future__ import annotations

import pytest

from shared.sketch_format import SketchFormatError, decode, encode

pytestmark = pytest.mark.unit


def test_round_trip() -> None:
    blob = encode([-3, 10, 250], [1.0, 2.0, 7.0], 4.0)
    keys, counts, zero = decode(blob)
    assert keys.tolist() == [-3, 10, 250] and counts.tolist() == [1.0, 2.0, 7.0] and zero == 4.0
    assert decode(encode([], [], 0.0))[0].tolist() == []


@pytest.mark.parametrize("blob", [b"", b"XX" + bytes(30), encode([1], [1.0], 0)[:-1]])
def test_foreign_or_truncated_bytes_are_refused(blob: bytes) -> None:
    with pytest.raises(SketchFormatError):
        decode(blob)
