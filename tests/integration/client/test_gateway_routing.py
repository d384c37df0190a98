"""The nginx gateway with real nginx: every path reaches the service that owns it.

Two tiny HTTP servers stand in for the assignment and analysis services; each echoes
who it is and what it received. nginx is started exactly as the local stack starts it
(``deploy/gateway/main.py run``), on free loopback ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
GATEWAY = ROOT / "deploy" / "gateway" / "main.py"

SWAGGER = (
    "<!DOCTYPE html><html><body><div id='swagger-ui'></div><script>"
    "const ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui'})"
    "</script></body></html>"
)


def _fake_service(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if self.path == "/docs":
                data, ctype = SWAGGER.encode(), "text/html; charset=utf-8"
            elif self.path == "/openapi.json":
                data, ctype = json.dumps({"info": {"title": name}}).encode(), "application/json"
            else:
                payload = {
                    "service": name,
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "host": self.headers.get("host"),
                    "forwarded_for": self.headers.get("x-forwarded-for"),
                    "request_id": self.headers.get("x-request-id"),
                    "authorization": self.headers.get("authorization"),
                }
                data, ctype = json.dumps(payload).encode(), "application/json"
            status = 503 if self.path.startswith("/api/v1/performance/busy") else 200
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")):
        pytest.fail("nginx not found: install Debian's package (apt-get install nginx)")
    assignment, analysis = _fake_service("assignment"), _fake_service("analysis")
    console = _fake_service("console")
    stack = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = {
        **os.environ,
        "ABFLOW_GATEWAY_PORT": str(port),
        "ABFLOW_ASSIGNMENT_PORT": str(assignment.server_address[1]),
        "ABFLOW_ANALYSIS_PORT": str(analysis.server_address[1]),
        "ABFLOW_CONSOLE_PORT": str(console.server_address[1]),
    }
    proc = subprocess.Popen(
        [sys.executable, str(GATEWAY), "run", "--stack-dir", str(stack)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(url + "/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = stack / "logs" / "gateway.error.log"
                pytest.fail(
                    f"gateway did not start: {out} {log.read_text() if log.exists() else ''}"
                )
            time.sleep(0.1)
        assert (stack / "pids" / "gateway-nginx.pid").read_text().strip() == str(proc.pid)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assignment.shutdown()
        analysis.shutdown()
        console.shutdown()
    assert (stack / "logs" / "gateway.access.log").stat().st_size > 0


@pytest.mark.parametrize(
    ("method", "path", "owner"),
    [
        ("POST", "/api/v1/assign", "assignment"),
        ("POST", "/api/v1/assign/batch", "assignment"),
        ("GET", "/api/v1/sdk/payload", "assignment"),
        ("POST", "/api/v1/schemas", "assignment"),
        ("GET", "/api/v1/schemas/abc?include=versions", "assignment"),
        ("GET", "/api/v1/versions/stats", "assignment"),
        ("POST", "/api/v1/versions/variants", "assignment"),
        ("PATCH", "/api/v1/versions/variants/v1", "assignment"),
        ("POST", "/api/v1/versions/schemas/s1/traffic-allocation", "assignment"),
        ("GET", "/api/v1/experiments", "assignment"),
        ("GET", "/api/v1/experiments?status=running", "assignment"),
        ("POST", "/api/v1/experiments/", "assignment"),
        ("GET", "/api/v1/experiments/e1", "assignment"),
        ("POST", "/api/v1/experiments/e1/start", "assignment"),
        ("POST", "/api/v1/experiments/e1/complete", "assignment"),
        ("DELETE", "/api/v1/experiments/e1/variants/v2", "assignment"),
        ("GET", "/api/v1/experiments/statuses", "analysis"),
        ("GET", "/api/v1/experiments/statuses?status=running", "analysis"),
        ("GET", "/api/v1/experiments/e1/status", "analysis"),
        ("GET", "/api/v1/experiments/e1/results", "analysis"),
        ("GET", "/api/v1/experiments/e1/winner", "analysis"),
        ("GET", "/api/v1/performance/dashboard/summary", "analysis"),
        ("GET", "/api/v1/performance/schemas/s1/trends?period=weekly", "analysis"),
        ("POST", "/api/v1/performance/compare", "analysis"),
        ("GET", "/console/experiments?status=running", "console"),
        ("GET", "/console/static/js/app.mjs", "console"),
        ("GET", "/console/config.json", "console"),
    ],
)
def test_api_paths_reach_their_owner_unchanged(
    gateway: str, method: str, path: str, owner: str
) -> None:
    body = json.dumps({"x": 1}) if method in ("POST", "PATCH") else None
    auth = {"Authorization": "Bearer abf_not-checked-by-the-gateway"}
    resp = httpx.request(
        method, gateway + path, content=body, headers={"content-type": "application/json", **auth}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-abflow-service"] == owner
    got = resp.json()
    assert got["service"] == owner and got["method"] == method and got["path"] == path
    assert got["body"] == (body or "")
    assert got["host"] == gateway.removeprefix("http://")
    assert got["forwarded_for"] == "127.0.0.1" and len(got["request_id"]) == 32
    assert got["authorization"] == auth["Authorization"]  # the API key passes through


def test_large_request_bodies_pass(gateway: str) -> None:
    units = [f"unit-{i:06d}" for i in range(50_000)]  # ~0.7 MB
    body = json.dumps({"schema": "s", "unit_ids": units})
    resp = httpx.post(gateway + "/api/v1/assign/batch", content=body)
    assert resp.status_code == 200 and resp.json()["body"] == body
    too_large = httpx.post(gateway + "/api/v1/assign/batch", content=b"x" * (5 << 20))
    assert too_large.status_code == 413 and too_large.json()["error"] == "payload_too_large"


def test_docs_are_served_per_service_with_their_openapi(gateway: str) -> None:
    index = httpx.get(gateway + "/docs")
    assert index.status_code == 200 and 'href="/docs/assignment"' in index.text
    assert 'href="/docs/analysis"' in index.text
    for name in ("assignment", "analysis"):
        page = httpx.get(f"{gateway}/docs/{name}")
        assert page.status_code == 200
        assert f"url: '/docs/{name}/openapi.json'" in page.text
        spec = httpx.get(f"{gateway}/docs/{name}/openapi.json")
        assert spec.json() == {"info": {"title": name}}
    for path in ("/", "/console"):
        resp = httpx.get(gateway + path)
        assert resp.status_code == 302 and resp.headers["location"] == "/console/experiments"


def test_service_health_and_metrics_paths(gateway: str) -> None:
    assert httpx.get(gateway + "/health").json() == {"status": "ok", "service": "gateway"}
    assert httpx.get(gateway + "/health/analysis").json()["path"] == "/health"
    assert httpx.get(gateway + "/metrics/assignment").json()["path"] == "/metrics"
    assert httpx.get(gateway + "/health/console").json()["service"] == "console"
    assert httpx.get(gateway + "/metrics/console").json()["path"] == "/metrics"


def test_unknown_paths_are_a_json_404(gateway: str) -> None:
    for path in ("/api/v2/assign", "/api/v1/unknown", "/console-typo"):
        resp = httpx.get(gateway + path)
        assert resp.status_code == 404 and resp.json()["error"] == "not_found"


def test_a_service_error_passes_through_unchanged(gateway: str) -> None:
    resp = httpx.get(gateway + "/api/v1/performance/busy")
    assert resp.status_code == 503 and resp.json()["service"] == "analysis"


def test_a_service_that_is_down_gives_a_json_502(tmp_path: Path) -> None:
    port = free_port()
    dead = str(free_port())
    env = {
        **os.environ,
        "ABFLOW_GATEWAY_PORT": str(port),
        "ABFLOW_ASSIGNMENT_PORT": dead,
        "ABFLOW_ANALYSIS_PORT": dead,
        "ABFLOW_CONSOLE_PORT": dead,
    }
    proc = subprocess.Popen(
        [sys.executable, str(GATEWAY), "run", "--stack-dir", str(tmp_path)], env=env
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                resp = httpx.post(f"http://127.0.0.1:{port}/api/v1/assign", json={})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert resp.status_code == 502
        assert resp.json()["error"] == "upstream_unavailable"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
