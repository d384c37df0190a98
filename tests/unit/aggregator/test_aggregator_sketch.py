"""The duration sketch: identical to DDSketch, mergeable, serializable, within 1%."""

from __future__ import annotations

import math
import random

import pytest
from ddsketch import DDSketch

from services.aggregator.sketch import (
    RELATIVE_ACCURACY,
    DurationSketch,
    decode_sketch,
    encode_sketch,
    key_of,
    merge_sketches,
)

pytestmark = pytest.mark.unit

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def _values(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    out = [rng.lognormvariate(5, 1.2) for _ in range(n)]
    out += [0.0] * (n // 50) + [1e-3, 1e9]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_equal_ddsketch_on_the_same_values(seed: int) -> None:
    values = _values(seed, 5000)
    ours, ref = DurationSketch(), DDSketch(RELATIVE_ACCURACY)
    for v in values:
        ours.add(v)
        ref.add(v)
    assert ours.count == ref.count
    for q in QS:
        assert ours.quantile(q) == pytest.approx(ref.get_quantile_value(q), rel=1e-12)
    assert ours.quantiles(QS) == [ours.quantile(q) for q in QS]
    back = DurationSketch.from_ddsketch(ref)
    assert back == ours
    via = ours.to_ddsketch()
    for q in QS:
        assert via.get_quantile_value(q) == pytest.approx(ref.get_quantile_value(q), rel=1e-12)


def test_every_quantile_is_within_one_percent_of_the_value_of_its_rank() -> None:
    values = _values(9, 20_000)
    sk = DurationSketch()
    for v in values:
        sk.add(v)
    data = sorted(values)
    for q in [i / 200 for i in range(201)]:
        est = sk.quantile(q)
        assert est is not None
        x = data[math.floor(q * (len(data) - 1))]
        assert abs(est - x) <= RELATIVE_ACCURACY * x * (1 + 1e-9)


def test_merge_is_the_sketch_of_the_union_in_any_order() -> None:
    values = _values(4, 6000)
    whole = DurationSketch()
    for v in values:
        whole.add(v)
    parts = [DurationSketch() for _ in range(7)]
    for i, v in enumerate(values):
        parts[i % 7].add_key(key_of(v))
    merged = DurationSketch()
    for p in reversed(parts):
        merged.merge(p)
    assert merged == whole
    assert merge_sketches(encode_sketch(p) for p in parts) == whole


def test_serialization_round_trips_and_rejects_garbage() -> None:
    sk = DurationSketch()
    for v in _values(5, 3000):
        sk.add(v)
    blob = encode_sketch(sk)
    assert decode_sketch(blob) == sk
    assert decode_sketch(encode_sketch(DurationSketch())) == DurationSketch()
    assert decode_sketch(None).count == 0
    with pytest.raises(ValueError):
        decode_sketch(b"XX" + blob[2:])
    with pytest.raises(ValueError):
        decode_sketch(blob[:-3])


def test_empty_and_zero_only_sketches() -> None:
    sk = DurationSketch()
    assert sk.quantile(0.5) is None
    assert sk.quantiles((0.5, 0.9)) == [None, None]
    sk.add(0.0)
    sk.add(0.0)
    assert sk.quantile(0.99) == 0.0
    with pytest.raises(ValueError):
        sk.add(-1.0)


def test_key_of_is_the_mappings_key() -> None:
    from services.aggregator.sketch import _MIN_POSITIVE, key_of, sketch_key

    rng = random.Random(3)
    values = [0.0, 1e-300, _MIN_POSITIVE, 1.0, 1.01, 250.0, 1e10]
    values += [rng.lognormvariate(5, 3) for _ in range(20_000)]
    values += [rng.random() * 10.0 ** rng.randint(-9, 10) for _ in range(20_000)]
    for v in values:
        assert key_of(v) == (sketch_key(v) if v > _MIN_POSITIVE else None), v
