"""Time windows over the hourly metric rows.

Every window is a half-open interval of whole UTC hours ``[start, end)``, because the
aggregates are hourly. A trailing window of ``d`` days ends at the end of the current
hour (so it includes the hour in progress) and starts ``d`` days earlier. Explicit
``start``/``end`` are widened to whole hours (start floored, end ceiled); naive
datetimes are taken as UTC. Trend buckets are UTC days or ISO weeks (Monday 00:00 UTC),
the same as ``abflow_period_start`` in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from shared.errors import ValidationFailed
from shared.results import ResultModel

__all__ = [
    "BASE",
    "Granularity",
    "PeriodModel",
    "VariantFilter",
    "Window",
    "bucket_starts",
    "explicit_window",
    "hour_floor",
    "parse_variant",
    "resolve_window",
    "trailing_window",
]

HOUR = timedelta(hours=1)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"

    @property
    def step(self) -> timedelta:
        return timedelta(days=1) if self is Granularity.DAY else timedelta(days=7)


class PeriodModel(ResultModel):
    """A window as returned by the API: ``[start, end)``, whole UTC hours."""

    start: datetime
    end: datetime
    days: float


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0

    def model(self) -> PeriodModel:
        return PeriodModel(start=self.start, end=self.end, days=self.days)

    def previous(self) -> Window:
        """The window of the same length just before this one."""
        return Window(self.start - (self.end - self.start), self.start)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def hour_floor(dt: datetime) -> datetime:
    return _utc(dt).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(dt: datetime) -> datetime:
    floor = hour_floor(dt)
    return floor if floor == _utc(dt) else floor + HOUR


def trailing_window(days: int, now: datetime | None = None) -> Window:
    end = hour_floor(now or datetime.now(UTC)) + HOUR
    return Window(end - timedelta(days=days), end)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def explicit_window(start: datetime, end: datetime, max_days: int) -> Window:
    try:  # (a time at the edge of year 1 or 9999 whose offset crosses it: OverflowError)
        in_range = EARLIEST <= _utc(start) < LATEST and EARLIEST < _utc(end) <= LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValidationFailed(
            "start and end must lie between 1970 and 9000", code="invalid_period", field="start"
        )
    s, e = hour_floor(start), _hour_ceil(end)
    if _utc(end) <= _utc(start):
        raise ValidationFailed("end must be after start", code="invalid_period", field="end")
    if e - s > timedelta(days=max_days):
        raise ValidationFailed(
            f"the period may span at most {max_days} days", code="invalid_period", field="start"
        )
    return Window(s, e)


def resolve_window(
    period_days: int,
    start: datetime | None,
    end: datetime | None,
    max_days: int,
    now: datetime | None = None,
) -> Window:
    """``start``+``end`` when given (both or neither), else the trailing ``period_days``."""
    if (start is None) != (end is None):
        raise ValidationFailed(
            "give both start and end, or neither (then period_days applies)",
            code="invalid_period",
            field="start" if start is None else "end",
        )
    if start is not None and end is not None:
        return explicit_window(start, end, max_days)
    if period_days > max_days:
        raise ValidationFailed(
            f"period_days may be at most {max_days}", code="invalid_period", field="period_days"
        )
    return trailing_window(period_days, now)


def bucket_floor(granularity: Granularity, dt: datetime) -> datetime:
    day = _utc(dt).replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.WEEK:
        day -= timedelta(days=day.weekday())
    return day


def bucket_starts(
    granularity: Granularity, count: int, now: datetime | None = None
) -> list[datetime]:
    """The last ``count`` buckets, oldest first, the current (partial) one included."""
    last = bucket_floor(granularity, now or datetime.now(UTC))
    return [last - granularity.step * i for i in range(count - 1, -1, -1)]


class _Base:
    """Marker: rows of the base version (``variant_id IS NULL``)."""

    def __repr__(self) -> str:
        return "BASE"


BASE = _Base()
VariantFilter = UUID | _Base | None
"""None = every variant and the base version; BASE = the base version only; a UUID = one variant."""


def parse_variant(value: str | None) -> VariantFilter:
    """``None``/``"all"`` → all, ``"base"`` → base version rows, else a variant UUID (422)."""
    if value is None or value == "all":
        return None
    if value == "base":
        return BASE
    try:
        return UUID(value)
    except ValueError:
        raise ValidationFailed(
            "variant must be 'all', 'base' or a variant id (UUID)",
            code="invalid_variant",
            field="variant",
        ) from None
