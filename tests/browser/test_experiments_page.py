"""The Experiments page shows the live numbers of the analysis API."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import HOW_TO, screenshot
from .numbers import duration_tolerance, milliseconds, number, percent

pytestmark = pytest.mark.e2e


def _statuses(api: httpx.Client, status: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 200}
    if status:
        params["status"] = status
    r = api.get("/api/v1/experiments/statuses", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _demo_row(api: httpx.Client) -> dict[str, Any]:
    """The running experiment with the most executions (the demo's)."""
    rows = [r for r in _statuses(api, "running") if r["total_executions"] > 0]
    if not rows:
        pytest.fail(f"no running experiment with executions: {HOW_TO}", pytrace=False)
    return max(rows, key=lambda r: r["total_executions"])


def _check_card(page: Page, row: dict[str, Any]) -> None:
    card = page.locator(f'article[data-experiment-key="{row["experiment_key"]}"]')
    expect(card).to_have_attribute("data-status", row["status"])
    expect(card.locator("h2")).to_have_text(row["experiment_name"])
    expect(card.locator(".meta")).to_contain_text(f"{row['total_executions']:,} executions")
    expect(card.locator(".meta")).to_contain_text(f"{row['exposed_units']:,} units exposed")
    # progress toward the required sample size
    bar = card.locator('[role="progressbar"]')
    shown = float(bar.get_attribute("aria-valuenow") or "nan")
    assert math.isclose(shown, min(100.0, row["progress_percent"] or 0.0), abs_tol=0.051)
    assert (
        f"of {row['required_n_per_arm']:,} per arm" in card.locator(".progress-label").inner_text()
    )
    # the primary metric per variant
    metric = row["primary_metric"]
    for v in row["variants"]:
        item = card.locator(f'.variant-bar[data-variant-key="{v["variant_key"]}"]')
        text = item.locator(".variant-value").inner_text()
        if v["primary_value"] is None:
            assert text == "—"
        elif metric == "success_rate":
            assert math.isclose(percent(text), v["primary_value"], abs_tol=0.00051), text
        elif metric == "execution_time":
            ms = milliseconds(text)
            assert math.isclose(ms, v["primary_value"], abs_tol=duration_tolerance(ms)), text
        assert f"n = {v['sample_size']:,}" in item.locator(".variant-n").inner_text()
        assert ("winner" in (item.get_attribute("class") or "")) == v["is_winner"]
    # significance after correction, recommendation, SRM, winner
    head = row["headline"]
    if head and head["p_value_adjusted"] is not None and not head["error_code"]:
        p_text = card.locator(".headline .p-adjusted").inner_text()
        if head["p_value_adjusted"] < 0.001:
            assert p_text.endswith("< 0.001"), p_text
        else:
            assert math.isclose(
                number(p_text.split("=")[-1]), head["p_value_adjusted"], abs_tol=0.00051
            )
        sig = card.locator(".headline .sig")
        expect(sig).to_have_attribute("data-significant", str(head["is_significant"]).lower())
    expect(card.locator("[data-recommendation]")).to_have_attribute(
        "data-recommendation", row["recommendation"]
    )
    expect(card.locator(".srm-warning")).to_have_count(1 if row["srm_mismatch"] else 0)
    expect(card.locator(".badge.winner")).to_have_count(1 if row["winner_variant_id"] else 0)


def _live(page: Page, api: httpx.Client, check: Any, attempts: int = 3) -> None:
    """Compare the page with the API; while demo traffic moves the numbers, reload and
    compare again (the page and the API must agree on one reading)."""
    for attempt in range(attempts):
        page.reload()
        page.locator("article.experiment-card").first.wait_for()
        try:
            check()
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


def test_cards_show_every_experiment_with_its_live_numbers(page: Page, api: httpx.Client) -> None:
    demo = _demo_row(api)
    page.goto("/console/experiments")
    page.locator("article.experiment-card").first.wait_for()

    def check() -> None:
        rows = _statuses(api)
        keys = set(
            page.locator("article.experiment-card").evaluate_all(
                "els => els.map(e => e.dataset.experimentKey)"
            )
        )
        assert {r["experiment_key"] for r in rows} <= keys
        fresh = next(r for r in rows if r["experiment_id"] == demo["experiment_id"])
        _check_card(page, fresh)
        for r in rows[:8]:
            card = page.locator(f'article[data-experiment-key="{r["experiment_key"]}"]')
            expect(card).to_have_attribute("data-status", r["status"])

    _live(page, api, check)
    screenshot(page, "experiments")


def test_status_filter_shows_only_that_status(page: Page, api: httpx.Client) -> None:
    page.goto("/console/experiments")
    page.locator("article.experiment-card").first.wait_for()
    for status in ("running", "draft", "paused", "completed", "all"):
        page.locator(f'button.filter[data-filter="{status}"]').click()
        expect(page.locator(f'button.filter[data-filter="{status}"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        rows = _statuses(api, None if status == "all" else status)
        cards = page.locator("article.experiment-card")
        if rows:
            expect(cards).to_have_count(len(rows))
        else:
            expect(page.locator("#experiment-list .empty")).to_be_visible()
        if status != "all":
            for s in cards.evaluate_all("els => els.map(e => e.dataset.status)"):
                assert s == status
    assert "status=" not in page.url


def test_variant_details_show_corrected_significance_and_the_forest_plot(
    page: Page, api: httpx.Client
) -> None:
    demo = _demo_row(api)
    page.goto(f"/console/experiments?status=running#experiment-{demo['experiment_id']}")
    card = page.locator(f'article[data-experiment-key="{demo["experiment_key"]}"]')
    card.locator(".details-toggle").click()
    expect(card.locator(".details-toggle")).to_have_attribute("aria-expanded", "true")
    expect(card.locator("table.comparison-table")).to_be_visible()

    def check() -> None:
        if card.locator(".details-toggle").get_attribute("aria-expanded") != "true":
            card.locator(".details-toggle").click()
        expect(card.locator("table.comparison-table")).to_be_visible()
        result = api.get(f"/api/v1/experiments/{demo['experiment_id']}/status").json()
        n_rows = 0
        for v in result["variants"]:
            row = card.locator(f'table.variants-table tr[data-variant-key="{v["variant_key"]}"]')
            assert f"{v['sample_size']:,}" in row.inner_text()
            sr = v["summary"]["success_rate"]["mean"]
            if sr is not None:
                shown = percent(row.locator('td[data-metric="success_rate"]').inner_text())
                assert math.isclose(shown, sr, abs_tol=0.00051)
            for metric, cmp in v["metrics"].items():
                n_rows += 1
                tr = card.locator(
                    f'table.comparison-table tr[data-variant-key="{v["variant_key"]}"][data-metric="{metric}"]'
                )
                p_adj = tr.locator("td.p-adjusted").inner_text()
                if cmp["p_value_adjusted"] is None:
                    assert p_adj == "—"
                elif cmp["p_value_adjusted"] < 0.001:
                    assert p_adj == "< 0.001"
                else:
                    assert math.isclose(float(p_adj), cmp["p_value_adjusted"], abs_tol=0.00051)
                assert (
                    f'data-significant="{str(cmp["is_significant"]).lower()}"' in tr.inner_html()
                    or cmp["error_code"]
                )
        forest = card.locator("svg.forest-plot g.forest-row")
        expect(forest).to_have_count(n_rows)
        assert n_rows >= 1
        assert result["multiple_comparison_correction"] == "holm"
        expect(card.locator(".table-wrap h3").nth(1)).to_contain_text("adjusted by Holm")

    _live(page, api, check)
    card.scroll_into_view_if_needed()
    screenshot(page, "experiments-details")
