"""Test harness: real Kafka and PostgreSQL for integration tests.

Services come from ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set (``make
test`` starts the local ones and sets them); else from testcontainers when a Docker
engine answers a ping; else the test fails with a message naming the make target.
Each test session gets its own database; each test that asks for topics gets its own
topic prefix, so runs never see each other's data.

API keys: :data:`KEYS` holds one key per scope, ``ADMIN_API_KEY`` / ``READ_API_KEY`` /
``CLIENT_API_KEY`` from the environment when the stack provides them (``make test``
exports ``.stack/env``), else fresh random ones; ``API_KEYS`` is set to their hashes
before any app is built, so in-process apps and services started by the tests accept
the same keys as the running stack. Tests take ``KEYS.headers("admin")`` (or the
``api_keys`` fixture) instead of writing keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.auth import ApiKeyEntry, Scope, hash_key, new_key
from shared.db.migrate import apply_migrations
from shared.db.pool import create_pool
from shared.kafka import ensure_topics

HOW_TO = (
    "no Kafka/PostgreSQL for integration tests: run `make test` (it starts the local "
    "Kafka and PostgreSQL itself), or `make infra-up && source .stack/env`, or set "
    "KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL to existing servers"
)


@dataclass(frozen=True)
class ApiKeys:
    """One key per scope, with the principals ``make up`` gives them."""

    admin: str
    read: str
    client: str

    PRINCIPALS = {"admin": "local-admin", "read": "local-read", "client": "local-client"}  # noqa: RUF012

    def key(self, scope: str) -> str:
        return str(getattr(self, scope))

    def headers(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(scope)}"}

    def principal(self, scope: str = "admin") -> str:
        return self.PRINCIPALS[scope]

    def setting(self) -> str:
        """The ``API_KEYS`` value that accepts these keys."""
        return ",".join(
            ApiKeyEntry(self.PRINCIPALS[s.value], s, hash_key(self.key(s.value))).render()
            for s in Scope
        )


KEYS = ApiKeys(
    admin=os.environ.get("ADMIN_API_KEY") or new_key(),
    read=os.environ.get("READ_API_KEY") or new_key(),
    client=os.environ.get("CLIENT_API_KEY") or new_key(),
)
os.environ["API_KEYS"] = KEYS.setting()
os.environ.setdefault("ADMIN_API_KEY", KEYS.admin)
os.environ.setdefault("READ_API_KEY", KEYS.read)
os.environ.setdefault("CLIENT_API_KEY", KEYS.client)


@pytest.fixture(scope="session")
def api_keys() -> ApiKeys:
    """The test keys (see the module docstring)."""
    return KEYS


@dataclass
class Infra:
    kafka_bootstrap: str
    admin_database_url: str
    kafka_version: str
    origin: str


def _docker_engine_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Infra]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    db = os.environ.get("DATABASE_URL")
    if kafka and db:
        yield Infra(kafka, db, os.environ.get("ABFLOW_KAFKA_VERSION", "unknown"), "environment")
        return
    if not _docker_engine_available():
        pytest.fail(HOW_TO, pytrace=False)
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka_image = "apache/kafka:4.1.1"
    with (
        KafkaContainer(kafka_image).with_kraft() as kc,
        PostgresContainer("postgres:16", driver=None) as pc,
    ):
        yield Infra(
            kc.get_bootstrap_server(), pc.get_connection_url(), kafka_image, "testcontainers"
        )


@pytest.fixture(scope="session")
async def kafka_bootstrap(infra: Infra, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The broker; at the end, the topics this session created are deleted (a run creates
    hundreds under unique prefixes: kept, they would slow a long-lived local broker)."""
    before = await _topic_names(infra.kafka_bootstrap)
    yield infra.kafka_bootstrap
    await _delete_session_topics(infra.kafka_bootstrap, before, request)


async def _topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete_session_topics(
    bootstrap: str, before: set[str], request: pytest.FixtureRequest
) -> None:
    """Delete the topics that appeared during the session, except the platform's own
    unprefixed ones (``abflow.*``: the stack's) and Kafka's (``__*``)."""
    try:
        created = sorted(
            t for t in await _topic_names(bootstrap) - before if not t.startswith(("abflow.", "__"))
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
        await admin.start()
        try:
            for i in range(0, len(created), 100):
                await admin.delete_topics(created[i : i + 100])
        finally:
            await admin.close()
        _report(request, f"Kafka: {len(created)} topics created by the tests deleted")
    except Exception as exc:  # noqa: BLE001 - clean-up only: never fails the session
        _report(request, f"Kafka: could not delete the tests' topics ({exc!r})")


@pytest.fixture(scope="session")
async def database_url(infra: Infra, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh database for this test session, migrated; dropped at the end."""
    admin = infra.admin_database_url
    name = f"abflow_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin)
    try:
        server_version = await conn.fetchval("SHOW server_version")
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    _report(request, f"PostgreSQL server {server_version} ({infra.origin}); test database {name}")
    _report(
        request, f"Kafka broker {infra.kafka_version} at {infra.kafka_bootstrap} ({infra.origin})"
    )
    yield url
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix: the test's topics are its own."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def topics(kafka_bootstrap: str, topic_prefix: str) -> str:
    """Create every platform topic under a fresh prefix; return the prefix."""
    await ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    return topic_prefix


def _report(request: pytest.FixtureRequest, line: str) -> None:
    lines: list[str] = request.config.stash.setdefault(_VERSIONS, [])
    if line not in lines:
        lines.append(line)
    reporter: Any = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[infra] {line}")


_VERSIONS = pytest.StashKey[list[str]]()
_SECTIONS = pytest.StashKey[dict[str, list[str]]]()


def summary_lines(config: pytest.Config, section: str) -> list[str]:
    """The lines of ``section`` in the terminal summary (append to add one)."""
    return config.stash.setdefault(_SECTIONS, {}).setdefault(section, [])


def summarise(config: pytest.Config, section: str, line: str) -> None:
    """A measurement or fact a test reports: printed now (seen with ``-s``) and repeated
    in ``section`` of the terminal summary, so that a passing run shows it too."""
    print(f"[{section}] {line}")
    summary_lines(config, section).append(line)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    sections = {"infrastructure used": config.stash.get(_VERSIONS, [])}
    sections.update(config.stash.get(_SECTIONS, {}))
    for section, lines in sections.items():
        if lines:
            terminalreporter.section(section)
            for line in lines:
                terminalreporter.write_line(line)
