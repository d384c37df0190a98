"""The OpenAPI document describes every control endpoint with a summary, request and
response models, examples, and the error model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from services.assignment.control.models import experiments, schemas, variants
from services.assignment.control.routes import routers
from shared.http import create_service_app

pytestmark = pytest.mark.unit

EXPECTED = {
    ("post", "/api/v1/schemas"),
    ("get", "/api/v1/schemas"),
    ("get", "/api/v1/schemas/{schema_id}"),
    ("patch", "/api/v1/schemas/{schema_id}"),
    ("delete", "/api/v1/schemas/{schema_id}"),
    ("post", "/api/v1/schemas/{schema_id}/versions"),
    ("get", "/api/v1/schemas/{schema_id}/versions"),
    ("get", "/api/v1/schemas/{schema_id}/versions/{version_number}"),
    ("get", "/api/v1/schemas/{schema_id}/diff"),
    ("get", "/api/v1/schemas/{schema_id}/history"),
    ("get", "/api/v1/versions/stats"),
    ("post", "/api/v1/versions/variants"),
    ("get", "/api/v1/versions/variants"),
    ("get", "/api/v1/versions/variants/{variant_id}"),
    ("patch", "/api/v1/versions/variants/{variant_id}"),
    ("delete", "/api/v1/versions/variants/{variant_id}"),
    ("post", "/api/v1/versions/variants/{variant_id}/activate"),
    ("post", "/api/v1/versions/variants/{variant_id}/pause"),
    ("post", "/api/v1/versions/schemas/{schema_id}/traffic-allocation"),
    ("post", "/api/v1/experiments"),
    ("get", "/api/v1/experiments"),
    ("get", "/api/v1/experiments/{experiment_id}"),
    ("patch", "/api/v1/experiments/{experiment_id}"),
    *{
        ("post", f"/api/v1/experiments/{{experiment_id}}/{a}")
        for a in ("start", "pause", "resume", "complete", "cancel")
    },
    ("post", "/api/v1/experiments/{experiment_id}/variants"),
    ("delete", "/api/v1/experiments/{experiment_id}/variants/{variant_id}"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_service_app(title="t", description="d", service="assignment", routers=routers)
    return app.openapi()


def _component(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    assert ref.startswith("#/components/schemas/"), ref
    component: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return component


def test_every_endpoint_has_models_examples_and_errors(document: dict[str, Any]) -> None:
    found = {
        (method, path)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    }
    assert found == EXPECTED
    # the analysis service serves these; they must not be declared here
    assert "/api/v1/experiments/statuses" not in document["paths"]
    for method, path in sorted(found):
        op = document["paths"][path][method]
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        ok = [c for c in op["responses"] if c.startswith("2")]
        assert len(ok) == 1, where
        body = _component(document, op["responses"][ok[0]]["content"]["application/json"]["schema"])
        assert body.get("examples"), f"{where}: response model without examples"
        assert body.get("properties"), where
        if "requestBody" in op:
            request = _component(
                document, op["requestBody"]["content"]["application/json"]["schema"]
            )
            assert request.get("examples"), f"{where}: request model without examples"
        errors = [c for c in op["responses"] if c[0] in "45"]
        assert errors, where
        for code in errors:
            if code == "422" and "application/json" not in op["responses"][code].get("content", {}):
                continue
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorBody"), (where, code)
        for param in op.get("parameters", []):
            assert "schema" in param, (where, param)
    assert document["components"]["schemas"]["ErrorBody"]["examples"]


@pytest.mark.parametrize(
    "model",
    [
        schemas.SchemaCreate,
        schemas.SchemaUpdate,
        schemas.VersionCreate,
        schemas.SchemaOut,
        schemas.VersionOut,
        schemas.SchemaDiff,
        schemas.HistoryPage,
        variants.VariantCreate,
        variants.VariantUpdate,
        variants.VariantOut,
        variants.TrafficAllocationRequest,
        variants.TrafficAllocationOut,
        variants.VersionStats,
        experiments.ExperimentCreate,
        experiments.ExperimentUpdate,
        experiments.ArmIn,
        experiments.ExperimentOut,
    ],
)
def test_examples_are_valid_instances(model: type[BaseModel]) -> None:
    examples = (model.model_config.get("json_schema_extra") or {})["examples"]  # type: ignore[index]
    assert examples
    for example in examples:
        model.model_validate(example)
