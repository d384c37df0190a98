"""Fixtures of the serving integration tests: ``report`` for the measurements they make
(latencies are reported, not asserted beyond sanity bounds: speed is measured by the
benchmarks), in a "serving timings" section of the terminal summary."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from tests.conftest import summarise


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    return partial(summarise, request.config, "serving timings")
