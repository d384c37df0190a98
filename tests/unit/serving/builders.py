"""Assignment configs and an in-process app for the serving tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.assignment.serving.component import ServingComponent
from services.assignment.serving.routes import router
from services.assignment.serving.settings import ServingSettings
from shared.events import (
    AssignmentConfig,
    ExperimentArm,
    ExperimentConfig,
    SchemaDefinition,
    VariantConfig,
)
from shared.http import create_service_app
from tests.conftest import KEYS

BASE = SchemaDefinition(
    workflow_steps=[{"name": "fetch"}, {"name": "score"}, {"name": "decide"}],
    risk_config={"threshold": 0.7, "limits": {"daily": 100}},
    config={"timeout_s": 30, "retries": 2},
)


def uid(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"serving-tests:{name}")


def variant(
    key: str, traffic_allocation: float = 0.0, *, timeout_s: int = 10, status: str = "active"
) -> VariantConfig:
    return VariantConfig(
        variant_id=uid(f"variant:{key}"),
        variant_key=key,
        variant_name=f"Variant {key}",
        base_version=2,
        traffic_allocation=traffic_allocation,
        status=status,
        effective_definition=BASE.model_copy(
            update={"config": {"timeout_s": timeout_s, "retries": 2, "variant": key}}
        ),
    )


def experiment(
    keys: Sequence[str],
    weights: Sequence[float],
    coverage: float = 1.0,
    *,
    key: str = "exp",
    seed: str = "",
) -> ExperimentConfig:
    return ExperimentConfig(
        experiment_id=uid(f"experiment:{key}"),
        experiment_key=key,
        seed=seed,
        coverage=coverage,
        arms=[
            ExperimentArm(
                variant_id=uid(f"variant:{k}"), variant_key=k, weight=w, is_control=i == 0
            )
            for i, (k, w) in enumerate(zip(keys, weights, strict=True))
        ],
    )


def config(
    schema_key: str = "checkout",
    *,
    revision: int = 1,
    variants: Sequence[VariantConfig] = (),
    exp: ExperimentConfig | None = None,
    base: SchemaDefinition = BASE,
    **overrides: Any,
) -> AssignmentConfig:
    return AssignmentConfig(
        schema_id=overrides.pop("schema_id", uid(f"schema:{schema_key}")),
        schema_key=schema_key,
        revision=revision,
        base_version=overrides.pop("base_version", 1),
        base_definition=base,
        variants=list(variants),
        experiment=exp,
        **overrides,
    )


def three_arm(
    coverage: float = 1.0, *, revision: int = 1, schema_key: str = "checkout"
) -> AssignmentConfig:
    """A schema with a running 50/30/20 experiment over control/fast/slow."""
    keys = ("control", "fast", "slow")
    return config(
        schema_key,
        revision=revision,
        variants=[variant(k, timeout_s=t) for k, t in zip(keys, (30, 10, 60), strict=True)],
        exp=experiment(keys, (0.5, 0.3, 0.2), coverage, key=f"{schema_key}-exp"),
    )


def serving_app(settings: ServingSettings) -> FastAPI:
    """A service app with the serving component and routes (as the composition root
    builds it, without the control plane)."""
    registry = CollectorRegistry()

    def components(app: FastAPI) -> list[ServingComponent]:
        app.state.serving = ServingComponent(settings, registry)
        return [app.state.serving]

    return create_service_app(
        title="serving test",
        description="serving test",
        components=components,
        routers=[router],
        registry=registry,
        service="assignment",
    )


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(
        transport=transport, base_url="http://serving", headers=KEYS.headers("client")
    )
