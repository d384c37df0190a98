"""PostgreSQL goes away mid-stream: the worker retries, says so on /health, loses nothing.

The shared PostgreSQL cannot be restarted here, so the outage is made on the test's own
database: it is closed to new connections (``ALLOW_CONNECTIONS false``) and the worker's
sessions are terminated, which the worker sees exactly as a server restart (its
connections die, reconnecting fails). The reliability suite restarts a real server.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared.topics import EXECUTIONS
from tests.conftest import Infra
from tests.integration.aggregator.generator import check_database, expected, make_stream
from tests.integration.aggregator.harness import (
    WorkerProcess,
    committed,
    wait_committed,
    worker_env,
)
from tests.integration.aggregator.test_aggregator_crash import _produce_slowly

pytestmark = pytest.mark.integration

APP = "abflow-aggregator-dbloss"


async def _close_database(admin: asyncpg.Connection, name: str, closed: bool) -> None:
    await admin.execute(
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if closed else "true"}'
    )
    if closed:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = $2",
            name,
            APP,
        )


async def test_database_outage_mid_stream_is_survived_exactly(
    kafka_bootstrap: str, database_url: str, topics: str, tmp_path: Path, infra: Infra
) -> None:
    seed = random.randrange(1 << 30)
    stream = make_stream(12_000, seed=seed, id_prefix=topics)
    topic = EXECUTIONS.full_name(topics)
    db_name = urlsplit(database_url).path.lstrip("/")
    worker_url = urlunsplit(urlsplit(database_url)._replace(query=f"application_name={APP}"))
    conn = await asyncpg.connect(database_url)
    admin = await asyncpg.connect(infra.admin_database_url)
    worker = WorkerProcess(
        "w-dbloss",
        worker_env(
            bootstrap=kafka_bootstrap,
            database_url=worker_url,
            prefix=topics,
            group=f"g-{uuid.uuid4().hex[:8]}",
            AGGREGATOR_FLUSH_MAX_EVENTS="2000",
        ),
        tmp_path,
    )
    statuses: list[tuple[str, str | None]] = []
    try:
        producing = asyncio.create_task(
            _produce_slowly(kafka_bootstrap, topics, stream, chunks=20, pause=0.5)
        )
        worker.start()
        await worker.wait_ready()
        for _ in range(300):  # something committed before the outage
            if await committed(conn, topic) > 0:
                break
            await asyncio.sleep(0.1)
        before = await committed(conn, topic)
        await _close_database(admin, db_name, closed=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                h = worker.health()
                if h is not None:
                    ex = h["components"]["executions"]
                    statuses.append((h["status"], ex.get("database")))
                    if h["status"] == "degraded" and ex.get("database") == "unreachable":
                        break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # a few failed retries
        finally:
            await _close_database(admin, db_name, closed=False)
        await producing
        await wait_committed(conn, topic, len(stream.records), 180, [worker])
        for _ in range(100):
            h = worker.health()
            if h is not None and h["status"] == "ok":
                break
            await asyncio.sleep(0.2)
        assert h is not None and h["status"] == "ok", h
        assert h["components"]["executions"]["database"] == "ok", h
        assert ("degraded", "unreachable") in statuses, statuses
        assert 0 < before < len(stream.records), "the outage came after the stream"
        exp = expected(stream)
        errors = await check_database(conn, stream, exp)
        assert not errors, "\n".join(errors)
        assert (
            await conn.fetchval(
                "SELECT sum(events_counted) FROM aggregator_offsets WHERE topic = $1", topic
            )
            == exp.distinct
        )
    finally:
        worker.stop()
        await admin.close()
        await conn.close()
