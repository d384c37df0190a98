"""Fault injection on a private stack (``tests/reliability/faults``).

One session-scoped :class:`~tests.reliability.faults.stack.PrivateStack` (Kafka,
PostgreSQL and the assignment, analysis, aggregator and console services, on ports
20000-31999, state under the temporary directory) is started for these tests and stopped at
the end, even when they fail. The shared stack (19092 / 15432) is never touched.
``RELIABILITY_LONG=1`` runs the long variants.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.faults.stack import PrivateStack


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: fault injection (broker and database restarts, SIGTERM) on a private stack",
    )


@pytest.fixture(scope="session")
def private_stack(request: pytest.FixtureRequest) -> Iterator[PrivateStack]:
    stack = PrivateStack.create()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        ports = ", ".join(f"{k.lower()} {v}" for k, v in stack.ports.items())
        reporter.write_line(f"[faults] private stack in {stack.directory} ({ports})")
    try:
        stack.up()
        yield stack
    finally:
        try:
            stack.down()
        finally:
            if not request.session.testsfailed:
                stack.remove()
            elif reporter is not None:
                reporter.write_line(f"[faults] logs kept in {stack.directory}/logs")
