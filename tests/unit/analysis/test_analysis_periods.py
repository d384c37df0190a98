"""Hour-aligned windows, trend buckets and the variant filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from services.analysis.periods import (
    BASE,
    Granularity,
    bucket_starts,
    explicit_window,
    parse_variant,
    resolve_window,
    trailing_window,
)
from shared.errors import ValidationFailed

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 5, 14, 37, 12, tzinfo=UTC)  # a Wednesday
HOUR = timedelta(hours=1)


def test_trailing_window_ends_with_the_current_hour() -> None:
    w = trailing_window(7, NOW)
    assert w.end == datetime(2025, 3, 5, 15, tzinfo=UTC)
    assert w.start == w.end - timedelta(days=7) and w.days == 7
    assert w.previous().end == w.start and w.previous().days == 7


def test_explicit_window_widened_to_hours_and_naive_is_utc() -> None:
    naive = (datetime(2025, 3, 1, 10, 30), datetime(2025, 3, 2, 10, 0, 1))  # noqa: DTZ001
    w = explicit_window(*naive, 366)
    assert w.start == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert w.end == datetime(2025, 3, 2, 11, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    w2 = explicit_window(
        datetime(2025, 3, 1, 12, tzinfo=plus2), datetime(2025, 3, 1, 14, tzinfo=plus2), 366
    )
    assert w2.start == datetime(2025, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
        (datetime(2020, 3, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
        # in UTC before year 1 / after year 9999: refused (it was an OverflowError, a 500)
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2025, 3, 1, tzinfo=UTC)),
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=timezone(-HOUR))),
    ],
)
def test_bad_explicit_windows(start: datetime, end: datetime) -> None:
    with pytest.raises(ValidationFailed):
        explicit_window(start, end, 366)


def test_resolve_needs_both_bounds_and_caps_days() -> None:
    with pytest.raises(ValidationFailed):
        resolve_window(7, NOW, None, 366)
    with pytest.raises(ValidationFailed):
        resolve_window(400, None, None, 366)
    assert resolve_window(7, None, None, 366, NOW) == trailing_window(7, NOW)


def test_buckets_are_utc_days_and_iso_weeks() -> None:
    days = bucket_starts(Granularity.DAY, 3, NOW)
    assert days == [datetime(2025, 3, d, tzinfo=UTC) for d in (3, 4, 5)]
    weeks = bucket_starts(Granularity.WEEK, 2, NOW)
    assert weeks == [datetime(2025, 2, 24, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)]


def test_parse_variant() -> None:
    assert parse_variant(None) is None and parse_variant("all") is None
    assert parse_variant("base") is BASE
    u = "6f1c1d1e-0000-4000-8000-000000000001"
    assert parse_variant(u) == UUID(u)
    with pytest.raises(ValidationFailed):
        parse_variant("v1")
