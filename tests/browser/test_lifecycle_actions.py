"""Lifecycle actions on the Experiments page call the control API: a legal action
changes the experiment's state on screen and in the API; an illegal one shows the API's
own message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import create_experiment, retire, screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def draft(api: httpx.Client) -> Iterator[dict[str, Any]]:
    exp = create_experiment(api)
    yield exp
    retire(api, exp)


@pytest.fixture
def running(api: httpx.Client) -> Iterator[dict[str, Any]]:
    exp = create_experiment(api, start=True)
    yield exp
    retire(api, exp)


def _api_status(api: httpx.Client, exp: dict[str, Any]) -> str:
    status: str = api.get(f"/api/v1/experiments/{exp['id']}").json()["status"]
    return status


def test_start_then_pause_changes_the_state_on_screen_and_in_the_api(
    page: Page, api: httpx.Client, draft: dict[str, Any]
) -> None:
    page.goto(f"/console/experiments#experiment-{draft['id']}")
    card = page.locator(f'article[data-experiment-key="{draft["experiment_key"]}"]')
    expect(card).to_have_attribute("data-status", "draft")
    expect(card.locator("button.action")).to_have_text(["Start", "Cancel"])

    card.locator('button[data-action="start"]').click()
    expect(card).to_have_attribute("data-status", "running")
    expect(card.locator(".badge.status")).to_have_text("Running")
    expect(card.locator(".action-notice")).to_contain_text("started")
    expect(card.locator("button.action")).to_have_text(["Pause", "Complete", "Cancel"])
    assert _api_status(api, draft) == "running"

    card.locator('button[data-action="pause"]').click()
    expect(card).to_have_attribute("data-status", "paused")
    expect(card.locator(".badge.status")).to_have_text("Paused")
    expect(card.locator("button.action")).to_have_text(["Resume", "Complete", "Cancel"])
    assert _api_status(api, draft) == "paused"
    expect(card.locator(".action-error")).to_have_count(0)
    card.scroll_into_view_if_needed()
    screenshot(page, "lifecycle-paused", full_page=False)


def test_an_illegal_action_shows_the_api_message(
    page: Page, api: httpx.Client, running: dict[str, Any]
) -> None:
    page.goto(f"/console/experiments#experiment-{running['id']}")
    card = page.locator(f'article[data-experiment-key="{running["experiment_key"]}"]')
    expect(card).to_have_attribute("data-status", "running")
    pause = card.locator('button[data-action="pause"]')
    expect(pause).to_be_visible()

    # someone else completes the experiment while this page still offers "Pause"
    assert api.post(f"/api/v1/experiments/{running['id']}/complete").status_code == 200
    pause.click()

    error = card.locator(".action-error")
    expect(error).to_be_visible()
    expected = api.post(f"/api/v1/experiments/{running['id']}/pause")
    assert expected.status_code == 409
    body = expected.json()
    expect(error.locator(".api-message")).to_have_text(body["message"])
    expect(error.locator(".api-code")).to_have_text(f"{body['error']} · HTTP 409")
    expect(error).to_contain_text("Could not pause:")
    # the page reloads the truth: the card now shows the completed experiment
    expect(card).to_have_attribute("data-status", "completed")
    expect(card.locator("button.action")).to_have_count(0)
    assert _api_status(api, running) == "completed"
    card.scroll_into_view_if_needed()
    screenshot(page, "illegal-action", full_page=False)
