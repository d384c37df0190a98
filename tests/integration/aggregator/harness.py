"""Run ``python -m services.aggregator.main`` as a subprocess, as the stack does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


class WorkerProcess:
    """One aggregator worker; ``kill()`` is SIGKILL, ``stop()`` is SIGTERM."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {
            **os.environ,
            **env,
            "AGGREGATOR_WEB_PORT": str(self.port),
            "AGGREGATOR_WORKER_ID": name,
            "PYTHONPATH": str(ROOT),
        }
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.port = free_port()
        self.env["AGGREGATOR_WEB_PORT"] = str(self.port)
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        log.write(f"\n===== start #{self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.aggregator.main"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = self.get("/health")
        except OSError:
            return None
        data: dict[str, Any] = json.loads(body)
        data["http_status"] = status
        return data

    async def owned_partitions(self, timeout: float = 30.0) -> list[int]:
        """The executions partitions its health report lists. Asked again while the
        worker does not answer within ``get``'s 2 s (its loop busy, e.g. catching up)."""
        deadline = time.monotonic() + timeout
        while (h := self.health()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no health report in {timeout}s\n{self.tail()}")
            await asyncio.sleep(0.2)
        return list(h["components"]["executions"]["partitions"])

    async def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited; log:\n{self.tail()}")
            h = self.health()
            if h is not None and h.get("ready"):
                return h
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready in {timeout}s; log:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def worker_env(
    *, bootstrap: str, database_url: str, prefix: str, group: str, **extra: str
) -> dict[str, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": prefix,
        "AGGREGATOR_GROUP_ID": group,
        "AGGREGATOR_SESSION_TIMEOUT_S": "6",
        "AGGREGATOR_MAX_EVENT_BYTES": "65536",
        "AGGREGATOR_VARIANT_METRICS_INTERVAL_S": "1",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


async def committed(conn: asyncpg.Connection, topic: str) -> int:
    """Records of ``topic`` covered by the offsets committed in PostgreSQL."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM aggregator_offsets WHERE topic = $1", topic
        )
    )


async def wait_committed(
    conn: asyncpg.Connection,
    topic: str,
    total: int,
    timeout: float,
    workers: list[WorkerProcess] | None = None,
) -> float:
    started = time.monotonic()
    while True:
        done = await committed(conn, topic)
        if done >= total:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            logs = "\n".join(f"--- {w.name}\n{w.tail()}" for w in workers or [])
            raise AssertionError(f"only {done}/{total} records committed after {timeout}s\n{logs}")
        await asyncio.sleep(0.2)
