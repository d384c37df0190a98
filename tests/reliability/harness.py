"""Processes and databases of the reliability suite: each test runs its own instances.

- :class:`ServiceProcess`: one service as a subprocess (uvicorn, or the aggregator's
  Faust worker) on a free port, with its log in a file; ``stop()`` is SIGTERM;
- :func:`own_database`: a fresh migrated database, dropped at the end (the suite writes
  junk on purpose, so it never shares the session database of the other tests);
- :func:`read_topic`: every record of a topic, for the dead-letter checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.db.migrate import apply_migrations
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("RELIABILITY_LONG", "") not in ("", "0", "false", "no")
"""``RELIABILITY_LONG=1``: the long version (more examples, more poison records)."""


def unique_prefix(tag: str) -> str:
    return f"rel{tag}{uuid.uuid4().hex[:8]}."


class ServiceProcess:
    """A service subprocess with its log in ``log_dir/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        port: int,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def uvicorn(
        cls, name: str, app: str, env: Mapping[str, str], log_dir: Path, *, factory: bool = False
    ) -> ServiceProcess:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5"]
        if factory:
            argv.append("--factory")
        return cls(name, argv, env, log_dir, port=port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_http(self, path: str = "/health/ready", timeout: float = 60.0) -> None:
        """Until ``GET path`` answers 200 (the process must stay alive)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise AssertionError(f"{self.name} exited; log:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(path)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name}: {path} not 200 after {timeout}s; log:\n{self.tail()}")


@contextlib.asynccontextmanager
async def own_database(admin_url: str, tag: str) -> AsyncIterator[str]:
    """A fresh migrated database for one test module; dropped afterwards."""
    name = f"abflow_rel_{tag}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    try:
        yield url
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def read_topic(
    bootstrap: str, topic: str, *, min_records: int = 0, timeout: float = 30.0
) -> list[Any]:
    """Every record of ``topic`` (all partitions, from the beginning), waiting up to
    ``timeout`` until there are at least ``min_records``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        for _ in range(50):
            if partitions:
                break
            await asyncio.sleep(0.1)
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            ends = await consumer.end_offsets(tps)
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    out.extend(records)
            if len(out) >= min_records or time.monotonic() > deadline:
                return out
            await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
