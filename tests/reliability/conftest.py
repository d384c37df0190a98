"""Reliability suite: fuzzing of every HTTP API, poison messages on every consumed topic.

Runs on its own (``pytest tests/reliability``) against the Kafka broker and the
PostgreSQL server of ``tests/conftest.py`` (``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``);
every test starts its own service instances on free ports, with its own topic prefix
and its own database. ``RELIABILITY_LONG=1`` runs the long version.
"""

from __future__ import annotations

import pytest

from tests.conftest import Infra, summary_lines


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability: fuzzing and poison messages against own service instances "
        "(real Kafka and PostgreSQL; RELIABILITY_LONG=1 for the long version)",
    )


@pytest.fixture(scope="session")
def admin_database_url(infra: Infra) -> str:
    return infra.admin_database_url


@pytest.fixture(scope="session")
def reliability_summary(request: pytest.FixtureRequest) -> list[str]:
    """Lines printed in the ``reliability`` section of the terminal summary."""
    return summary_lines(request.config, "reliability")
