"""Client SDK benchmark: CPU the client spends per ``assign`` over HTTP.

Run: ``.venv/bin/python bench/client_http.py [--requests N] [--concurrency 4 32]``.
Needs nothing running. A child process serves ``POST /api/v1/assign`` with a constant
assignment (aiohttp, so the server is cheap and the client's cost is what is measured).
In this process, :class:`shared.client.AbflowClient` assigns N distinct units at each
concurrency, alternately through its network path (aiohttp, the default) and through
httpx (``transport=httpx.AsyncHTTPTransport()``, the path used before and still taken
when a transport is given), for ``--rounds`` rounds; the medians of client CPU per
request (``time.process_time``) and of requests/s are reported with the ratio httpx /
aiohttp. Prints readable lines, then one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.client import AbflowClient  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.unit.client.client_fakes import MemorySink, answer  # noqa: E402

SERVER = """
import json, sys
from aiohttp import web
body = json.dumps(json.loads(sys.argv[2])).encode()
async def assign(request):
    await request.read()
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_post("/api/v1/assign", assign)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def _round(url: str, path: str, requests: int, concurrency: int) -> tuple[float, float]:
    transport = httpx.AsyncHTTPTransport() if path == "httpx" else None
    # a long attempt timeout: this measures CPU, and a loaded machine must not fall back
    client = AbflowClient(url, sink=MemorySink(), api_key="k", transport=transport, timeout=30)
    async with client as c:
        await c.assign("checkout", "warm-up")
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while sent < requests:
                sent += 1
                await c.assign("checkout", f"u-{path}-{sent}")

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert c.stats.fallbacks == 0, "the server did not answer every request"
    return cpu / requests * 1e6, requests / wall


async def _wait_up(url: str) -> None:
    for _ in range(100):
        try:
            async with httpx.AsyncClient() as h:
                await h.post(f"{url}/api/v1/assign", content=b"{}")
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise RuntimeError("benchmark server did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[4, 32])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), json.dumps(answer("control", "u"))]
    )
    results: dict[str, Any] = {"requests": args.requests, "rounds": args.rounds}
    try:
        asyncio.run(_wait_up(url))
        for conc in args.concurrency:
            runs: dict[str, list[tuple[float, float]]] = {"aiohttp": [], "httpx": []}
            for _ in range(args.rounds):
                for path in ("aiohttp", "httpx"):  # alternated: machine noise hits both
                    runs[path].append(asyncio.run(_round(url, path, args.requests, conc)))
            row: dict[str, float] = {}
            for path, rs in runs.items():
                row[f"{path}_cpu_us_per_request"] = round(statistics.median(r[0] for r in rs), 1)
                row[f"{path}_requests_per_s"] = round(statistics.median(r[1] for r in rs), 1)
            row["cpu_ratio_httpx_over_aiohttp"] = round(
                row["httpx_cpu_us_per_request"] / row["aiohttp_cpu_us_per_request"], 2
            )
            results[f"concurrency_{conc}"] = row
            print(
                f"concurrency {conc}: client CPU per assign aiohttp "
                f"{row['aiohttp_cpu_us_per_request']:.0f} us ({row['aiohttp_requests_per_s']:.0f}/s), "
                f"httpx {row['httpx_cpu_us_per_request']:.0f} us ({row['httpx_requests_per_s']:.0f}/s): "
                f"{row['cpu_ratio_httpx_over_aiohttp']:.1f}x",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
