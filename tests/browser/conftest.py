"""Browser tests: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright against
the running stack with its demo data.

Base URLs come from the environment, as ``make up`` writes them to ``.stack/env``:
``GATEWAY_URL`` (the pages are opened through the gateway, so they call the APIs on the
same origin) and ``CONSOLE_URL`` (the console itself). Without them the tests FAIL with
the commands that start the stack; they never skip. Screenshots go to
``tests/browser/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEYS

HOW_TO = (
    "start the stack with its demo data first: `make up && make demo`, then "
    "`source .stack/env` (it sets GATEWAY_URL and CONSOLE_URL)"
)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}  # a laptop
DEFINITION: dict[str, Any] = {
    "workflow_steps": [{"name": "collect", "type": "task"}, {"name": "review", "type": "hitl"}],
    "risk_config": {"auto_approve_threshold": 0.3, "require_hitl_threshold": 0.8},
    "config": {},
}


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip().rstrip("/")
    if not value:
        pytest.fail(f"{name} is not set: {HOW_TO}", pytrace=False)
    return value


# the console's login cookie (services/console/session.py): the pages need it
CONSOLE_COOKIE = "abflow_console_session"


def console_session(base_url: str, key: str) -> str:
    """A sealed session cookie, from the console's own login form (the browser only ever
    holds this, never the key)."""
    try:
        r = httpx.post(
            f"{base_url}/console/login", data={"api_key": key}, timeout=10, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        pytest.fail(f"{base_url}/console/login does not answer ({exc}): {HOW_TO}", pytrace=False)
    token = r.cookies.get(CONSOLE_COOKIE)
    if r.status_code != 303 or not token:
        pytest.fail(
            f"logging in to {base_url}/console failed (HTTP {r.status_code})", pytrace=False
        )
    return token


def _get(url: str, cookies: dict[str, str] | None = None) -> httpx.Response:
    try:
        return httpx.get(url, timeout=10, cookies=cookies)
    except httpx.HTTPError as exc:
        pytest.fail(f"{url} does not answer ({exc}): {HOW_TO}", pytrace=False)


@pytest.fixture(scope="session")
def console_url() -> str:
    url = _env("CONSOLE_URL")
    r = _get(f"{url}/health")
    if r.status_code != 200:
        pytest.fail(
            f"the console at {url} is not healthy ({r.status_code}): {HOW_TO}", pytrace=False
        )
    return url


@pytest.fixture(scope="session")
def gateway_url(console_url: str) -> str:
    url = _env("GATEWAY_URL")
    if _get(f"{url}/health").status_code != 200:
        pytest.fail(f"the gateway at {url} is not healthy: {HOW_TO}", pytrace=False)
    page = _get(
        f"{url}/console/experiments", cookies={CONSOLE_COOKIE: console_session(url, KEYS.admin)}
    )
    if page.status_code != 200 or "console-config" not in page.text:
        pytest.fail(
            f"the gateway at {url} does not serve the console under /console/ "
            f"(HTTP {page.status_code}): route /console/ to the console service "
            "(docs/console.md, 'Gateway routes')",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def api(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=gateway_url,
        timeout=30,
        headers={"X-Actor": "browser-tests", **KEYS.headers("admin")},
    ) as c:
        yield c


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Module scope, not session: while the sync
    Playwright driver is open it owns this thread's event loop, which the async tests of
    other packages (pytest-asyncio) need once the module is done."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright not installed: pip install playwright (no browser download)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, gateway_url: str) -> Iterator[Any]:
    """A fresh page on the gateway's origin; fails the test on any JavaScript error."""
    context = browser.new_context(viewport=VIEWPORT, base_url=gateway_url)
    context.set_default_timeout(20_000)
    # logged in with the admin key, as the login form would leave it
    context.add_cookies(
        [
            {
                "name": CONSOLE_COOKIE,
                "value": console_session(gateway_url, KEYS.admin),
                "url": f"{gateway_url}/console/",
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def create_experiment(api: httpx.Client, *, start: bool = False) -> dict[str, Any]:
    """A fresh schema with two variants and a 50/50 experiment (draft, or started),
    created through the public control API; the demo's data stays untouched."""
    sfx = uuid.uuid4().hex[:8]

    def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = api.post(path, json=body)
        assert r.status_code in (200, 201), f"POST {path}: {r.status_code} {r.text}"
        data: dict[str, Any] = r.json()
        return data

    schema = post(
        "/api/v1/schemas",
        {"key": f"browser-{sfx}", "name": f"Browser test workflow {sfx}", "definition": DEFINITION},
    )
    arms = []
    for i, key in enumerate(("control", "treatment")):
        v = post(
            "/api/v1/versions/variants",
            {"schema_id": schema["id"], "variant_key": key, "traffic_allocation": 50},
        )
        arms.append({"variant_id": v["id"], "is_control": i == 0, "traffic_percentage": 50})
    exp = post(
        "/api/v1/experiments",
        {
            "experiment_key": f"browser-{sfx}",
            "experiment_name": f"Browser lifecycle test {sfx}",
            "schema_id": schema["id"],
            "variants": arms,
        },
    )
    if start:
        exp = post(f"/api/v1/experiments/{exp['id']}/start")
    return exp


def retire(api: httpx.Client, exp: dict[str, Any]) -> None:
    """Cancel the test's experiment if it can be, and archive its schema."""
    api.post(f"/api/v1/experiments/{exp['id']}/cancel")
    api.delete(f"/api/v1/schemas/{exp['schema_id']}")
