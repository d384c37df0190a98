"""The overall status of a service's component reports."""

from __future__ import annotations

import pytest

from shared.health import overall_status

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "ok"),
        (["ok", "ok"], "ok"),
        (["ok", "degraded"], "degraded"),
        (["degraded", "down", "ok"], "down"),
        ([None], "ok"),  # a report without a status counts as ok
    ],
)
def test_the_worst_status_wins(statuses: list[str | None], expected: str) -> None:
    reports = [{} if s is None else {"status": s} for s in statuses]
    assert overall_status(reports) == expected
