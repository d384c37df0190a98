"""The demo's experiment, created through the public control API: a schema (base
version 1), a ``control`` variant identical to the base, a ``treatment`` variant with
overrides, and a 50/50 experiment between them, started.

Every run creates its own schema and experiment under a fresh suffix, so running the
demo twice never collides with (or pollutes the numbers of) an earlier run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["BASE_DEFINITION", "DemoScenario", "ScenarioError", "create_scenario", "new_suffix"]

BASE_DEFINITION: dict[str, Any] = {
    "workflow_steps": [
        {"name": "fetch_inputs", "type": "io"},
        {"name": "risk_assessment", "type": "model"},
        {"name": "generate", "type": "model"},
        {"name": "review", "type": "human_in_the_loop"},
    ],
    "risk_config": {"auto_approve_threshold": 0.3, "require_hitl_threshold": 0.7},
    "config": {"model": "standard", "max_retries": 2, "parallel_fetch": False},
}
TREATMENT_OVERRIDES: dict[str, Any] = {
    # a JSON Merge Patch on the whole definition {"workflow_steps", "risk_config", "config"}
    "config_overrides": {"config": {"parallel_fetch": True, "max_retries": 3}},
    "risk_config_override": {"auto_approve_threshold": 0.2},
}
DELIVERABLE_TYPE = "demo_report"


class ScenarioError(Exception):
    """The control API refused a step; the message says which and why."""


@dataclass(frozen=True)
class DemoScenario:
    suffix: str
    schema_key: str
    schema_id: str
    schema_version: int
    control_variant_id: str
    treatment_variant_id: str
    experiment_id: str
    experiment_key: str


def new_suffix() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _id(body: Any, *names: str) -> str:
    if isinstance(body, dict):
        for name in (*names, "id"):
            if body.get(name) is not None:
                return str(body[name])
        for nested in ("data", "schema", "variant", "experiment"):
            if isinstance(body.get(nested), dict):
                return _id(body[nested], *names)
    raise ScenarioError(f"no id ({', '.join(names)}) in the answer: {str(body)[:300]}")


async def _post(http: httpx.AsyncClient, what: str, path: str, payload: dict[str, Any]) -> Any:
    try:
        resp = await http.post(path, json=payload)
    except httpx.HTTPError as exc:
        raise ScenarioError(f"{what}: POST {path} failed: {exc!r}") from exc
    if resp.status_code >= 400:
        raise ScenarioError(f"{what}: POST {path} -> HTTP {resp.status_code}: {resp.text[:500]}")
    try:
        return resp.json()
    except ValueError:
        return {}


async def create_scenario(http: httpx.AsyncClient, suffix: str | None = None) -> DemoScenario:
    """Create and start the demo experiment through ``http`` (base URL = gateway or the
    assignment service)."""
    suffix = suffix or new_suffix()
    schema_key = f"demo-report-flow-{suffix}"
    schema = await _post(
        http,
        "create the schema",
        "/api/v1/schemas",
        {
            "key": schema_key,
            "name": f"Demo report workflow ({suffix})",
            "deliverable_type": DELIVERABLE_TYPE,
            "definition": BASE_DEFINITION,
        },
    )
    schema_id = _id(schema, "schema_id")
    # "current_version" is the schema version; "version" is the row's concurrency token
    version = schema.get("current_version") or 1
    variant_ids: dict[str, str] = {}
    for key, name, extra in (
        ("control", "Control: the base version as is", {}),
        ("treatment", "Treatment: parallel fetch, stricter auto-approve", TREATMENT_OVERRIDES),
    ):
        body = await _post(
            http,
            f"create the {key} variant",
            "/api/v1/versions/variants",
            {
                "schema_id": schema_id,
                "base_version": int(version),
                "variant_key": key,
                "variant_name": name,
                "config_overrides": {},
                "traffic_allocation": 0,  # experiment arms only: no rollout beside it
                **extra,
            },
        )
        variant_ids[key] = _id(body, "variant_id")
    experiment_key = f"demo-{suffix}"
    exp = await _post(
        http,
        "create the experiment",
        "/api/v1/experiments",
        {
            "experiment_key": experiment_key,
            "experiment_name": f"Demo: parallel fetch and stricter auto-approve ({suffix})",
            "hypothesis": (
                "Fetching inputs in parallel with one more retry and a stricter "
                "auto-approve threshold raises the success rate and shortens executions."
            ),
            "schema_id": schema_id,
            "deliverable_type": DELIVERABLE_TYPE,
            "primary_metric": "success_rate",
            "secondary_metrics": ["execution_time", "risk_score"],
            "min_sample_size": 100,
            "confidence_level": 0.95,
            "coverage": 1.0,
            "variants": [
                {
                    "variant_id": variant_ids["control"],
                    "is_control": True,
                    "traffic_percentage": 50,
                },
                {
                    "variant_id": variant_ids["treatment"],
                    "is_control": False,
                    "traffic_percentage": 50,
                },
            ],
        },
    )
    experiment_id = _id(exp, "experiment_id")
    await _post(http, "start the experiment", f"/api/v1/experiments/{experiment_id}/start", {})
    return DemoScenario(
        suffix=suffix,
        schema_key=schema_key,
        schema_id=schema_id,
        schema_version=int(version),
        control_variant_id=variant_ids["control"],
        treatment_variant_id=variant_ids["treatment"],
        experiment_id=experiment_id,
        experiment_key=experiment_key,
    )
