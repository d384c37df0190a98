"""The console service: page shells, embedded configuration, static assets, settings."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from pydantic import ValidationError

from services.console.main import create_app
from services.console.pages import browser_config, render_page
from services.console.session import SESSION_COOKIE
from services.console.settings import ConsoleSettings

pytestmark = pytest.mark.unit


def _settings(**kw: object) -> ConsoleSettings:
    return ConsoleSettings(**kw)  # type: ignore[arg-type]


async def _client(settings: ConsoleSettings, *, logged_in: bool = True) -> httpx.AsyncClient:
    app = create_app(settings)
    token = app.state.sessions.seal("abf_test", None, 3600)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://console",
        cookies={SESSION_COOKIE: token} if logged_in else None,
    )


def _embedded_config(html: str) -> dict[str, object]:
    m = re.search(r'<script type="application/json" id="console-config">(.*?)</script>', html, re.S)
    assert m, "the page embeds its configuration"
    data: dict[str, object] = json.loads(m.group(1))
    return data


async def test_health_and_metrics() -> None:
    async with await _client(_settings()) as c:
        health = await c.get("/health")
        assert health.status_code == 200
        assert health.json()["service"] == "console"
        await c.get("/console/experiments")
        metrics = (await c.get("/metrics")).text
        assert (
            'http_requests_total{method="GET",route="/console/experiments",service="console",status="200"}'
            in metrics
        )


@pytest.mark.parametrize(
    ("page", "title"), [("experiments", "Experiments"), ("performance", "Performance dashboard")]
)
async def test_pages_are_shells_with_config_and_module(page: str, title: str) -> None:
    settings = _settings(
        console_upstream_url="http://gw.example:18080/",
        console_grafana_url="http://grafana.example:3000",
        console_refresh_seconds=12,
    )
    async with await _client(settings) as c:
        r = await c.get(f"/console/{page}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert f"<title>{title} · abflow console</title>" in html
    assert f'<script type="module" src="/console/static/js/{page}.js"></script>' in html
    assert f'href="/console/{page}" aria-current="page"' in html
    cfg = _embedded_config(html)
    assert cfg["apiBaseUrl"] == "/console"  # the console's proxy: the browser never holds the key
    assert cfg["loginUrl"] == "/console/login"
    assert cfg["refreshSeconds"] == 12
    assert cfg["actor"] == "console"
    assert cfg["links"] == {
        "grafana": "http://grafana.example:3000",
        "prometheus": "",
        "docs": "/docs",
    }


async def test_redirects_to_the_experiments_page() -> None:
    async with await _client(_settings()) as c:
        for path in ("/", "/console", "/console/"):
            r = await c.get(path)
            assert r.status_code == 302, path
            assert r.headers["location"] == "/console/experiments"


async def test_config_json_matches_the_embedded_config() -> None:
    settings = _settings(console_prometheus_url="http://127.0.0.1:19090")
    async with await _client(settings) as c:
        r = await c.get("/console/config.json")
    assert r.json() == browser_config(settings)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/console/static/js/experiments.js", "javascript"),
        ("/console/static/js/performance.js", "javascript"),
        ("/console/static/js/plots.js", "javascript"),
        ("/console/static/css/console.css", "text/css"),
    ],
)
async def test_static_assets_are_served(path: str, kind: str) -> None:
    async with await _client(_settings()) as c:
        r = await c.get(path)
    assert r.status_code == 200
    assert kind in r.headers["content-type"]


async def test_unknown_static_file_is_404() -> None:
    async with await _client(_settings()) as c:
        assert (await c.get("/console/static/js/nope.js")).status_code == 404


def test_embedded_json_cannot_close_the_script_element() -> None:
    html = render_page("experiments", _settings(console_actor="</script><b>x"))
    cfg = _embedded_config(html)
    assert cfg["actor"] == "</script><b>x"
    assert "</script><b>" not in html


@pytest.mark.parametrize(
    "bad",
    ["gateway:18080", "ftp://gw:21", "http://", "http://gw:1/?x=1", "javascript:alert(1)"],
)
def test_upstream_url_must_be_an_http_url(bad: str) -> None:
    with pytest.raises(ValidationError, match="CONSOLE_UPSTREAM_URL"):
        _settings(console_upstream_url=bad)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_UPSTREAM_URL", "https://abflow.example.com")
    monkeypatch.setenv("CONSOLE_REFRESH_SECONDS", "0")
    s = ConsoleSettings()
    assert s.console_upstream_url == "https://abflow.example.com"
    assert s.console_cookie_secure is False and s.console_session_hours == 12
    assert s.console_refresh_seconds == 0
    assert s.console_docs_url == "/docs"


def test_docs_url_may_be_a_path_or_an_url() -> None:
    assert _settings(console_docs_url="/docs").console_docs_url == "/docs"
    assert (
        _settings(console_docs_url="http://gw:18080/docs/").console_docs_url
        == "http://gw:18080/docs"
    )
    with pytest.raises(ValidationError):
        _settings(console_docs_url="//evil.example/docs")
