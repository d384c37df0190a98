"""Logging in to the console with a key in a real browser: the pages send a visitor
without a login to the form; a wrong key is refused there; the read key from
``.stack/env`` opens the pages (cookie not readable by JavaScript); logging out ends it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import KEYS

from .conftest import VIEWPORT, screenshot

pytestmark = pytest.mark.e2e

LOGIN = re.compile(r".*/console/login.*")


@pytest.fixture
def anonymous(browser: Any, gateway_url: str) -> Iterator[Page]:
    """A page without the login cookie."""
    if httpx.get(f"{gateway_url}/console/login", timeout=10).status_code == 404:
        pytest.fail(
            "the running console predates the login: restart the stack (make down && make up)"
        )
    context = browser.new_context(viewport=VIEWPORT, base_url=gateway_url)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_login_with_a_key_then_logout(anonymous: Page) -> None:
    page = anonymous
    page.goto("/console/performance")
    expect(page).to_have_url(LOGIN)
    page.fill("#api-key", "abf_not-a-key")
    page.click("#login-button")
    expect(page.locator(".error-box")).to_contain_text("not valid")

    page.fill("#api-key", KEYS.read)
    page.fill("#user-name", "browser tester")
    screenshot(page, "login", full_page=False)
    page.click("#login-button")
    expect(page).to_have_url(re.compile(r".*/console/performance$"))
    expect(page.locator("main")).not_to_contain_text("Loading")
    # the key is sealed in an HttpOnly cookie: the page's scripts cannot read the cookie,
    # and the cookie itself does not contain the key
    assert KEYS.read not in page.evaluate("document.cookie")
    session = [c for c in page.context.cookies() if c["name"] == "abflow_console_session"]
    assert session and session[0]["httpOnly"] and KEYS.read not in session[0]["value"]

    page.click("#logout-button")
    expect(page).to_have_url(LOGIN)
    page.goto("/console/experiments")
    expect(page).to_have_url(LOGIN)
