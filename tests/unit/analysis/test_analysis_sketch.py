"""The reader of stored duration sketches agrees with the aggregator's writer and DDSketch."""

from __future__ import annotations

import random
import struct

import pytest
from ddsketch import DDSketch

from services.aggregator.sketch import DurationSketch, encode_sketch
from shared.results.sketch import SketchFormatError, decode, merge

pytestmark = pytest.mark.unit

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def values(rng: random.Random, n: int) -> list[float]:
    return [0.0 if rng.random() < 0.02 else rng.lognormvariate(5.0, 1.2) for _ in range(n)]


def sketch_of(xs: list[float]) -> DurationSketch:
    s = DurationSketch()
    for x in xs:
        s.add(x)
    return s


def test_decode_reads_what_the_aggregator_writes() -> None:
    xs = values(random.Random(1), 5000)
    s = sketch_of(xs)
    keys, counts, zero = decode(encode_sketch(s))
    assert zero == s.zero_count
    assert dict(zip(keys.tolist(), counts.tolist(), strict=True)) == s.bins


def test_merged_quantiles_equal_ddsketch_over_all_values() -> None:
    rng = random.Random(2)
    hours = [values(rng, rng.randrange(0, 400)) for _ in range(60)]
    merged = merge([encode_sketch(sketch_of(h)) for h in hours] + [None])
    reference = DDSketch(0.01)
    for h in hours:
        for x in h:
            reference.add(x)
    assert merged.count == reference.count
    for q, got in zip(QS, merged.quantiles(QS), strict=True):
        assert got == pytest.approx(reference.get_quantile_value(q), rel=1e-12), q


def test_quantiles_within_one_percent_of_the_exact_rank() -> None:
    xs = sorted(values(random.Random(3), 20000))
    merged = merge([encode_sketch(sketch_of(xs[i::7])) for i in range(7)])
    for q, got in zip(QS, merged.quantiles(QS), strict=True):
        exact = xs[int(q * (len(xs) - 1))]
        assert got is not None and abs(got - exact) <= 0.01 * exact


def test_empty_and_all_zero_sketches() -> None:
    assert merge([]).quantiles([0.5]) == [None]
    assert merge([None, encode_sketch(DurationSketch())]).quantiles([0.5, 2.0]) == [None, None]
    zeros = merge([encode_sketch(sketch_of([0.0, 0.0]))])
    assert zeros.quantiles([0.5, 0.99]) == [0.0, 0.0]


@pytest.mark.parametrize(
    "blob",
    [
        b"garbage",
        b"XX\x01" + bytes(30),
        b"DS\x02" + bytes(30),
        b"DS",
        struct.pack("<2sBddI", b"DS", 1, 0.02, 0.0, 0),
        struct.pack("<2sBddI", b"DS", 1, 0.01, 0.0, 3) + bytes(12),
    ],
)
def test_unreadable_blobs_raise_format_error(blob: bytes) -> None:
    with pytest.raises(SketchFormatError):
        merge([blob])


def test_the_integration_tests_write_the_aggregator_format() -> None:
    from services.aggregator.sketch import decode_sketch
    from tests.integration.analysis.builders import encode_sketch as test_encoder

    xs = values(random.Random(4), 3000)
    assert decode_sketch(test_encoder(xs)) == sketch_of(xs)
