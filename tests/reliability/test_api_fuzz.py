"""Property-based fuzzing of every HTTP API from its OpenAPI document (schemathesis).

Own instances of the assignment service (control plane + serving), the analysis service
and the console run as uvicorn subprocesses on a fresh database and topic prefix, seeded
with a schema (2 versions), two variants, a running experiment, hourly aggregates and a
stored comparison. For every operation of every OpenAPI document, schemathesis generates
requests, valid ones (positive) and invalid ones (negative), with random path ids and
with the ids of the seeded resources, and every response is checked:

- ``not_a_server_error``: no 5xx (the services answer 503 only when a dependency is
  down, and here none is);
- ``status_code_conformance``: the status code is documented for the operation;
- ``content_type_conformance`` and ``response_schema_conformance``: the body is the
  documented media type and validates against the documented schema of that status;
- ``response_headers_conformance``: documented headers are present and valid;
- ``negative_data_rejection``: a request that violates the document is refused (4xx).

Examples per operation: ``RELIABILITY_FUZZ_EXAMPLES`` (default 25; 250 with
``RELIABILITY_LONG=1``), split between positive and negative generation. The short run
draws the same cases each time; the long run (or ``RELIABILITY_SEED``) explores.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.kafka import ensure_topics
from tests.conftest import KEYS
from tests.integration.analysis import builders
from tests.reliability.harness import LONG, ServiceProcess, own_database, unique_prefix

pytestmark = pytest.mark.reliability

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "250" if LONG else "25"))
# The short run (the CI gate) is derandomised: the same cases for the same code and
# documents, so a failure there is reproducible and a new one comes with a change. The
# long run explores new cases each time (or those of RELIABILITY_SEED).
SEED = os.environ.get("RELIABILITY_SEED")
EXPLORE = LONG or SEED is not None
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
METRICS = ("success_rate", "execution_time", "risk_score")


def _assignment_app() -> Any:
    from services.assignment.main import create_app

    return create_app()


def _analysis_app() -> Any:
    from services.analysis.main import create_app

    return create_app()


def _console_app() -> Any:
    from services.console.main import create_app

    return create_app()


SERVICES: dict[str, tuple[str, Callable[[], Any]]] = {
    "assignment": ("services.assignment.main:app", _assignment_app),
    "analysis": ("services.analysis.main:app", _analysis_app),
    "console": ("services.console.main:app", _console_app),
}


def _operations() -> list[tuple[str, str]]:
    """(service, "METHOD /path") of every operation in every OpenAPI document, at
    collection time (the documents are built from the app objects, no server needed)."""
    out: list[tuple[str, str]] = []
    for service, (_, factory) in SERVICES.items():
        paths = factory().openapi()["paths"]
        for path, methods in paths.items():
            for method in methods:
                if method in ("get", "put", "post", "patch", "delete"):
                    out.append((service, f"{method.upper()} {path}"))
    return out


OPERATIONS = _operations()


@dataclass
class FuzzWorld:
    urls: dict[str, str]
    known: dict[str, list[Any]]
    processes: list[ServiceProcess]
    schemas: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    cases: int = 0


async def _json(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.request.url, resp.status_code, resp.text)
    body: dict[str, Any] = resp.json()
    return body


async def _seed(assignment: str, analysis: str, database_url: str) -> dict[str, list[Any]]:
    """A schema with two versions, two active variants and a running 50/50 experiment
    (through the control API), a draft experiment, hourly aggregates for every arm, and
    one stored comparison. Returns the ids for the path parameters."""
    definition = {
        "workflow_steps": [{"name": "collect"}, {"name": "review"}],
        "risk_config": {"threshold": 0.7},
        "config": {"timeout_s": 30},
    }
    async with httpx.AsyncClient(
        base_url=assignment, timeout=30, headers=KEYS.headers("admin")
    ) as c:
        schema = await _json(
            await c.post(
                "/api/v1/schemas",
                json={"key": "fuzz.checkout", "name": "Checkout", "definition": definition},
            ),
            201,
        )
        sid = schema["id"]
        await _json(
            await c.post(
                f"/api/v1/schemas/{sid}/versions",
                json={"definition": {**definition, "config": {"timeout_s": 10}}},
            ),
            201,
        )
        variants = []
        for key, base in (("control", 1), ("treatment", 2)):
            v = await _json(
                await c.post(
                    "/api/v1/versions/variants",
                    json={"schema_id": sid, "variant_key": key, "base_version": base},
                ),
                201,
            )
            await _json(await c.post(f"/api/v1/versions/variants/{v['id']}/activate"), 200)
            variants.append(v["id"])
        arms = [
            {"variant_id": variants[0], "is_control": True, "traffic_percentage": 50},
            {"variant_id": variants[1], "traffic_percentage": 50},
        ]
        running = await _json(
            await c.post(
                "/api/v1/experiments",
                json={
                    "experiment_key": "fuzz-running",
                    "experiment_name": "Running",
                    "schema_id": sid,
                    "variants": arms,
                },
            ),
            201,
        )
        await _json(await c.post(f"/api/v1/experiments/{running['id']}/start"), 200)
        draft = await _json(
            await c.post(
                "/api/v1/experiments",
                json={
                    "experiment_key": "fuzz-draft",
                    "experiment_name": "Draft",
                    "schema_id": sid,
                    "variants": arms,
                },
            ),
            201,
        )
        # the snapshot follows the config topic: wait until the experiment is served
        for _ in range(100):
            r = await c.post("/api/v1/assign", json={"schema": sid, "unit_id": "u1"})
            if r.status_code == 200 and r.json()["experiment_id"] == running["id"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"experiment never served: {r.status_code} {r.text}")

    rng = random.Random(7)
    conn = await asyncpg.connect(database_url)
    try:
        execs = []
        for version, variant in ((1, variants[0]), (2, variants[1])):
            execs += builders.generate(
                rng,
                300,
                schema_id=sid,
                version=version,
                variant_id=variant,
                experiment_id=running["id"],
                days=3,
            )
        execs += builders.generate(rng, 200, schema_id=sid, version=1, days=3)
        await builders.store(conn, execs)
    finally:
        await conn.close()

    async with httpx.AsyncClient(base_url=analysis, timeout=30, headers=KEYS.headers("admin")) as c:
        comparison = await _json(
            await c.post(
                "/api/v1/performance/compare",
                json={"schema_id": sid, "baseline_version": 1, "comparison_version": 2},
            ),
            200,
        )
    return {
        "schema_id": [sid],
        "variant_id": variants,
        "experiment_id": [running["id"], draft["id"]],
        "version_number": [1, 2],
        "comparison_id": [comparison["comparison_id"]],
        "metric": list(METRICS),
    }


@pytest.fixture(scope="module")
async def world(
    admin_database_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    reliability_summary: list[str],
) -> AsyncIterator[FuzzWorld]:
    log_dir = tmp_path_factory.mktemp("fuzz")
    prefix = unique_prefix("fz")
    await ensure_topics(kafka_bootstrap, prefix=prefix)
    async with own_database(admin_database_url, "fuzz") as database_url:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": database_url,
            "TOPIC_PREFIX": prefix,
            "LOG_LEVEL": "WARNING",
            "ABFLOW_SERVING_EXPOSURE_DEDUPE_WINDOW_S": "0",
            "CONSOLE_API_BASE_URL": "",
        }
        procs = {
            name: ServiceProcess.uvicorn(name, app, env, log_dir).start()
            for name, (app, _) in SERVICES.items()
        }
        try:
            await asyncio.gather(*(p.wait_http() for p in procs.values()))
            urls = {name: p.url for name, p in procs.items()}
            known = await _seed(urls["assignment"], urls["analysis"], database_url)
            w = FuzzWorld(urls=urls, known=known, processes=list(procs.values()))
            started = time.monotonic()
            yield w
            took = time.monotonic() - started
            for name, p in procs.items():
                assert p.alive(), f"{name} died during the fuzzing:\n{p.tail()}"
            hist = {s: dict(sorted(c.items())) for s, c in w.statuses.items()}
            reliability_summary.append(
                f"fuzz: {len(OPERATIONS)} operations, {w.cases} requests "
                f"({EXAMPLES} examples/operation) in {took:.0f}s; statuses {hist}"
            )
        finally:
            for p in procs.values():
                p.stop()


def _schema(world: FuzzWorld, service: str) -> Any:
    schema = world.schemas.get(service)
    if schema is None:
        schema = schemathesis.openapi.from_url(f"{world.urls[service]}/openapi.json")
        # every call carries the admin key (KEYS): no cases for the security scheme
        # itself (tests/integration/foundation/test_access_control.py covers 401/403)
        schema.config.generation.update(with_security_parameters=False)
        # a negative body can grow past MAX_BODY_BYTES (a long array of a violating
        # item): the services refuse it unread with 413, which is a rejection too
        rejection = schema.config.checks.negative_data_rejection
        rejection.expected_statuses = [*rejection.expected_statuses, "413"]
        world.schemas[service] = schema
    return schema


def _strategy(operation: Any, known: dict[str, list[Any]]) -> Any:
    """Positive and negative cases, with generated path parameters and with the seeded
    resources' ids (one strategy per combination of known values)."""
    names = [p.name for p in operation.path_parameters]
    pools = [known.get(n) for n in names]
    fixed: list[dict[str, Any]] = []
    if names and all(pools):
        combos: list[dict[str, Any]] = [{}]
        for name, pool in zip(names, pools, strict=True):
            assert pool is not None
            combos = [{**c, name: v} for c in combos for v in pool]
        fixed = combos
    options = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        options.append(operation.as_strategy(generation_mode=mode))
        options += [operation.as_strategy(generation_mode=mode, path_parameters=f) for f in fixed]
    return st.one_of(options)


@pytest.mark.parametrize(("service", "label"), OPERATIONS, ids=[f"{s}:{o}" for s, o in OPERATIONS])
def test_operation_conforms_to_its_openapi_document(
    world: FuzzWorld, service: str, label: str
) -> None:
    schema = _schema(world, service)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} missing from the served OpenAPI document"
    base_url = world.urls[service]
    statuses = world.statuses.setdefault(service, Counter())
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not EXPLORE,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=True,
    )
    @given(case=_strategy(operation, world.known))
    def run(case: Any) -> None:
        response = case.call(
            base_url=base_url, session=session, timeout=30, headers=KEYS.headers("admin")
        )
        statuses[response.status_code] += 1
        world.cases += 1
        case.validate_response(response, checks=CHECKS)

    if SEED is not None:
        run = seed(int(SEED))(run)
    try:
        run()
    finally:
        session.close()


def test_services_survived_the_fuzzing(world: FuzzWorld) -> None:
    """Every instance is still alive, healthy, and logged no unhandled error."""
    for p in world.processes:
        assert p.alive(), p.tail()
        r = httpx.get(f"{p.url}/health", timeout=5)
        assert r.status_code == 200, (p.name, r.text)
        assert "unhandled error" not in p.log_text(), f"{p.name}:\n{p.tail(120)}"


# --------------------------------------------------------------------------- hostile bodies

HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "application/json"),
    "invalid-utf8": (b'{"key": "\xff\xfe"}', "application/json"),
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "deep-object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
    "huge-string": (b'{"key": "' + b"x" * (5 * 1024 * 1024) + b'"}', "application/json"),
    "huge-array": (b"[" + b"1," * (2 * 1024 * 1024) + b"1]", "application/json"),
    "nan": (b'{"key": NaN}', "application/json"),
    "not-json-type": (b"key=value", "application/x-www-form-urlencoded"),
    "text-plain": (b'{"key": "value"}', "text/plain"),
    "bom": (b'\xef\xbb\xbf{"key": "value"}', "application/json"),
}
BODY_OPERATIONS = [
    (service, label)
    for service, label in OPERATIONS
    if label.split(" ", 1)[0] in ("POST", "PATCH", "PUT")
]


@pytest.mark.parametrize(
    ("service", "label"), BODY_OPERATIONS, ids=[f"{s}:{o}" for s, o in BODY_OPERATIONS]
)
def test_hostile_bodies_get_a_documented_4xx(world: FuzzWorld, service: str, label: str) -> None:
    """Bodies no generator produces: empty, invalid UTF-8, 100,000 levels of nesting,
    5 MiB strings, 2 M-element arrays, NaN, other media types. Each answer is a 4xx that
    the operation documents, in the platform's error shape."""
    schema = _schema(world, service)
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    documented = set(operation.definition.raw.get("responses", {}))
    body_required = bool(operation.definition.raw.get("requestBody", {}).get("required"))
    method, template = label.split(" ", 1)
    path = template
    for param in operation.path_parameters:
        pool = world.known.get(param.name)
        path = path.replace("{" + param.name + "}", str(pool[0] if pool else uuid.uuid4()))
    problems = []
    with httpx.Client(base_url=world.urls[service], timeout=60) as client:
        for name, (body, media_type) in HOSTILE_BODIES.items():
            r = client.request(
                method,
                path,
                content=body,
                headers={"content-type": media_type, **KEYS.headers("admin")},
            )
            world.statuses.setdefault(service, Counter())[r.status_code] += 1
            world.cases += 1
            if name == "empty" and not body_required and 200 <= r.status_code < 300:
                continue  # no body where the body is optional: a plain call
            if not 400 <= r.status_code < 500 or str(r.status_code) not in documented:
                problems.append(
                    f"{name}: {r.status_code} (documented {sorted(documented)}) {r.text[:200]}"
                )
                continue
            try:
                data = r.json()
            except ValueError:
                problems.append(f"{name}: {r.status_code} body is not JSON: {r.text[:200]}")
                continue
            if not (isinstance(data, dict) and "error" in data and "message" in data):
                problems.append(
                    f"{name}: {r.status_code} not the platform's error shape: {r.text[:200]}"
                )
    assert not problems, problems
