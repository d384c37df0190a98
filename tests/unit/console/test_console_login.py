"""Logging in to the console with a key: the form, the cookie, the redirects, the proxy
that adds the key to the pages' API calls, logging out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.console.login import safe_next
from services.console.main import create_app
from services.console.session import SESSION_COOKIE, Session, SessionCodec
from services.console.settings import ConsoleSettings

pytestmark = pytest.mark.unit

KEYS = {"abf_admin": "admin", "abf_read": "read", "abf_client": "client"}


class FakeGateway:
    """Answers like the platform: 401 for unknown keys, 403 for a client key reading."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        auth = request.headers.get("authorization", "")
        scope = KEYS.get(auth.removeprefix("Bearer "))
        if scope is None:
            return httpx.Response(401, json={"error": "unauthorized", "message": "unknown API key"})
        if scope == "client" or (request.method == "POST" and scope != "admin"):
            return httpx.Response(403, json={"error": "forbidden", "message": "scope"})
        return httpx.Response(
            200,
            json={"path": request.url.path, "query": str(request.url.query, "ascii")},
            headers={"etag": '"7"'},
        )


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
async def http(gateway: FakeGateway) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ConsoleSettings(), upstream_transport=httpx.MockTransport(gateway))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as c:
        yield c


async def _login(http: httpx.AsyncClient, key: str, **extra: str) -> httpx.Response:
    return await http.post(
        "/console/login",
        data={"api_key": key, **extra},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


async def test_pages_redirect_to_the_login_form(http: httpx.AsyncClient) -> None:
    r = await http.get("/console/performance", params={"schema": "x"})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=%2Fconsole%2Fperformance")
    form = await http.get(r.headers["location"])
    assert form.status_code == 200 and 'name="api_key"' in form.text
    assert 'type="password"' in form.text


async def test_login_sets_an_httponly_strict_cookie_and_redirects(
    http: httpx.AsyncClient,
) -> None:
    r = await _login(http, "abf_read", name="Alice  Smith", next="/console/performance?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/console/performance?x=1"
    cookies = r.headers.get_list("set-cookie")
    key_cookie = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    assert "abf_read" not in key_cookie  # sealed: the key is not readable in the cookie
    lowered = key_cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/console" in lowered
    assert "max-age=43200" in lowered and "secure" not in lowered
    page = await http.get("/console/experiments")
    assert page.status_code == 200 and '"actor":"Alice Smith"' in page.text
    assert "Alice" not in " ".join(cookies)  # the name is sealed with the key


@pytest.mark.parametrize(
    ("key", "status", "text"),
    [
        ("", 400, "Paste an API key"),
        ("abf_unknown", 401, "not valid"),
        ("abf_client", 401, "cannot read"),
    ],
)
async def test_login_refuses_bad_keys(
    http: httpx.AsyncClient, key: str, status: int, text: str
) -> None:
    r = await _login(http, key)
    assert r.status_code == status and text in r.text
    assert not r.headers.get_list("set-cookie")
    assert (await http.get("/console/experiments")).status_code == 303


async def test_login_when_the_api_cannot_be_reached() -> None:
    def down(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    app = create_app(ConsoleSettings(), upstream_transport=httpx.MockTransport(down))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as c:
        r = await _login(c, "abf_read")
    assert r.status_code == 503 and "cannot be reached" in r.text


async def test_the_proxy_adds_the_key(http: httpx.AsyncClient, gateway: FakeGateway) -> None:
    assert (await http.get("/console/api/v1/versions/stats")).status_code == 401
    await _login(http, "abf_admin")
    r = await http.get(
        "/console/api/v1/experiments/statuses", params={"status": "running", "limit": 200}
    )
    assert r.status_code == 200 and r.headers["etag"] == '"7"'
    assert r.json() == {"path": "/api/v1/experiments/statuses", "query": "status=running&limit=200"}
    sent = gateway.seen[-1]
    assert sent.headers["authorization"] == "Bearer abf_admin"
    assert "cookie" not in sent.headers
    post = await http.post(
        "/console/api/v1/experiments/00000000-0000-4000-8000-000000000000/pause",
        headers={"X-Actor": "alice", "Origin": "http://console"},
    )
    assert post.status_code == 200 and gateway.seen[-1].headers["x-actor"] == "alice"


async def test_the_proxy_passes_the_api_errors_and_refuses_cross_site_writes(
    http: httpx.AsyncClient,
) -> None:
    await _login(http, "abf_read")
    denied = await http.post(
        "/console/api/v1/experiments/x/pause", headers={"Origin": "http://console"}
    )
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
    cross = await http.post(
        "/console/api/v1/experiments/x/pause", headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403 and "cross-site" in cross.json()["message"]
    for path in ("/console/api/v2/x", "/console/api/v1/../../admin", "/console/api/health"):
        assert (await http.get(path)).status_code == 404, path


async def test_logout_forgets_the_key(http: httpx.AsyncClient) -> None:
    await _login(http, "abf_read")
    assert (await http.get("/console/experiments")).status_code == 200
    r = await http.post("/console/logout")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert (await http.get("/console/experiments")).status_code == 303


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/console/performance?schema=1", "/console/performance?schema=1"),
        (None, "/console/experiments"),
        ("https://evil.example/", "/console/experiments"),
        ("//evil.example/console/", "/console/experiments"),
        ("/console/login?next=x", "/console/experiments"),
        ("/console\\..\\x", "/console/experiments"),
    ],
)
def test_next_is_always_a_console_path(value: Any, expected: str) -> None:
    assert safe_next(value) == expected


def test_a_session_opens_only_with_its_secret_untampered_and_unexpired() -> None:
    codec = SessionCodec("s" * 40)
    token = codec.seal("abf_admin", "Alice", ttl_s=60, now=1_000.0)
    assert "abf_admin" not in token and "Alice" not in token
    assert codec.open(token, now=1_059.0) == Session("abf_admin", "Alice", 1_060.0)
    assert SessionCodec("s" * 40).open(token, now=1_000.0) is not None  # another replica
    assert codec.open(token, now=1_060.0) is None  # expired (checked here, not only by the browser)
    assert SessionCodec("t" * 40).open(token, now=1_000.0) is None  # another secret
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    assert codec.open(flipped, now=1_000.0) is None  # tampered
    for junk in (None, "", "abf_admin", "!!!", "A" * 5000, token[:10]):
        assert codec.open(junk, now=1_000.0) is None
    # the same key sealed twice gives two different cookies (a random nonce each time)
    assert codec.seal("k", None, 60) != codec.seal("k", None, 60)


async def test_a_raw_key_cookie_is_not_a_login(http: httpx.AsyncClient) -> None:
    """The cookie of the console before sessions were sealed held the key itself."""
    http.cookies.set("abflow_console_key", "abf_admin")
    http.cookies.set(SESSION_COOKIE, "abf_admin")
    assert (await http.get("/console/experiments")).status_code == 303
    assert (await http.get("/console/api/v1/versions/stats")).status_code == 401
