"""The running stack the live monitoring test scrapes, a throwaway Prometheus, and the
traffic that makes every panel's series move."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEYS
from tests.ports import free_port

from .dashboards import ROOT

HOW_TO = (
    "start the stack with its demo data first: `make up && make demo`, then "
    "`source .stack/env` (it sets GATEWAY_URL, ASSIGNMENT_URL, ANALYSIS_URL, "
    "AGGREGATOR_URL, CONSOLE_URL and KAFKA_BOOTSTRAP_SERVERS)"
)
SERVICE_VARS = {
    "assignment": "ASSIGNMENT_URL",
    "analysis": "ANALYSIS_URL",
    "aggregator": "AGGREGATOR_URL",
    "console": "CONSOLE_URL",
}


@dataclass(frozen=True)
class Stack:
    gateway: str
    services: dict[str, str]  # job -> base URL
    kafka: str
    topic_prefix: str


def running_stack() -> Stack:
    """The stack named by the environment; the test FAILS (never skips) without it."""
    names = ["GATEWAY_URL", *SERVICE_VARS.values(), "KAFKA_BOOTSTRAP_SERVERS"]
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: {HOW_TO}", pytrace=False)
    stack = Stack(
        gateway=os.environ["GATEWAY_URL"].rstrip("/"),
        services={job: os.environ[var].rstrip("/") for job, var in SERVICE_VARS.items()},
        kafka=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        topic_prefix=os.environ.get("TOPIC_PREFIX", ""),
    )
    with httpx.Client(timeout=5) as http:
        for job, url in {"gateway": stack.gateway, **stack.services}.items():
            try:
                status = http.get(f"{url}/health").status_code
            except httpx.HTTPError as exc:
                pytest.fail(f"{job} at {url} does not answer ({exc}): {HOW_TO}", pytrace=False)
            if status != 200:
                pytest.fail(f"{job} at {url}/health answers {status}: {HOW_TO}", pytrace=False)
    return stack


def _render_local() -> Any:
    sys.path.insert(0, str(ROOT / "deploy" / "prometheus"))
    try:
        import render_local  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return render_local


@contextlib.contextmanager
def prometheus(stack: Stack, workdir: Path) -> Iterator[str]:
    """Debian's Prometheus with the project's local configuration (targets from the
    stack's URLs) on a free port and a temporary storage directory."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("prometheus not found: apt-get install prometheus", pytrace=False)
    port = free_port()
    render_local = _render_local()
    env = {var: stack.services[job] for job, var in SERVICE_VARS.items()}
    env["PROMETHEUS_LISTEN"] = f"127.0.0.1:{port}"
    config = workdir / "prometheus.yml"
    config.write_text(
        render_local.render(render_local.SOURCE.read_text(), render_local.target_overrides(env))
    )
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run(
            [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-800:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("prometheus not ready after 30 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def query(prom: str, expr: str) -> tuple[str, list[dict[str, Any]]]:
    """(error or "", result vector) of an instant query."""
    try:
        r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"request failed: {exc}", []
    if body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')}", []
    data = body["data"]
    if data["resultType"] == "scalar":
        return "", [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return "", result


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    out = []
    for series in result:
        with contextlib.suppress(KeyError, ValueError, TypeError):
            v = float(series["value"][1])
            if math.isfinite(v):
                out.append(v)
    return out


# ------------------------------------------------------------------------ traffic


def running_schema_key(stack: Stack) -> str:
    with httpx.Client(base_url=stack.gateway, timeout=10, headers=KEYS.headers("admin")) as http:
        rows = http.get("/api/v1/experiments/statuses", params={"status": "running"}).json()
        if not rows.get("items"):
            pytest.fail(f"no running experiment to send traffic to: {HOW_TO}", pytrace=False)
        schema_id = rows["items"][0]["schema_id"]
        key: str = http.get(f"/api/v1/schemas/{schema_id}").json()["key"]
        return key


def send_malformed_execution(stack: Stack) -> None:
    """One invalid record on the executions topic: the aggregator dead-letters it."""
    from aiokafka import AIOKafkaProducer

    from shared.topics import EXECUTIONS

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka)
        await producer.start()
        try:
            await producer.send_and_wait(
                EXECUTIONS.full_name(stack.topic_prefix),
                b'{"monitoring_test": "not an execution event"}',
                key=f"monitoring-test-{uuid.uuid4().hex[:8]}".encode(),
            )
        finally:
            await producer.stop()

    asyncio.run(send())


class Traffic:
    """Demo traffic while the test watches: the simulator (assignments, exposures,
    execution events) against a running experiment, and API and console reads through
    the gateway (2xx and 4xx), each bounded in time."""

    def __init__(self, stack: Stack, workdir: Path, seconds: float = 150.0) -> None:
        self.stack = stack
        self.seconds = seconds
        self.stop = threading.Event()
        self.log = workdir / "simulator.log"
        self.sim: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self._http_loop, daemon=True)
        self.requests = 0

    def __enter__(self) -> Traffic:
        schema = running_schema_key(self.stack)
        rate = 40
        with self.log.open("wb") as log:
            self.sim = subprocess.Popen(
                [
                    *(sys.executable, "-m", "services.simulator", "--schema", schema),
                    *("--executions", str(int(rate * self.seconds)), "--rate", str(rate)),
                    *("--concurrency", "8", "--units", "5000"),
                    *("--unit-prefix", f"monitoring-{uuid.uuid4().hex[:6]}"),
                    *("--assignment-url", self.stack.services["assignment"]),
                    *("--kafka-bootstrap", self.stack.kafka),
                    *("--topic-prefix", self.stack.topic_prefix, "--no-progress"),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.thread.start()
        send_malformed_execution(self.stack)
        return self

    def _http_loop(self) -> None:
        missing = uuid.uuid4()
        paths = [
            ("GET", "/console/experiments"),
            ("GET", "/console/performance"),
            ("GET", "/console/static/js/experiments.js"),
            ("GET", "/api/v1/experiments/statuses"),
            ("GET", "/api/v1/versions/stats"),
            ("GET", "/api/v1/performance/dashboard/summary"),
            ("GET", f"/api/v1/experiments/{missing}/status"),  # analysis 404
            ("POST", f"/api/v1/experiments/{missing}/pause"),  # assignment 404
        ]
        deadline = time.monotonic() + self.seconds
        with httpx.Client(
            base_url=self.stack.gateway, timeout=10, headers=KEYS.headers("admin")
        ) as http:
            while not self.stop.is_set() and time.monotonic() < deadline:
                for method, path in paths:
                    with contextlib.suppress(httpx.HTTPError):
                        http.request(method, path)
                        self.requests += 1
                # the console directly too, in case the gateway does not route it yet
                with contextlib.suppress(httpx.HTTPError):
                    http.get(f"{self.stack.services['console']}/console/experiments")
                self.stop.wait(0.5)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        if self.sim is not None and self.sim.poll() is None:
            self.sim.terminate()
            try:
                self.sim.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.sim.kill()
                self.sim.wait(timeout=5)
