"""``AbflowClient.assign``: parsing, cache, retry, 4xx, timeouts and the fallback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.client import (
    AbflowClient,
    AssignedConfig,
    AssignmentRejectedError,
    AssignmentUnavailableError,
    ClientStats,
    SchemaFallback,
)
from shared.client._assign import AssignmentAPI
from shared.client._cache import TTLCache
from tests.ports import free_port
from tests.unit.client.client_fakes import (
    BASE_DEFINITION,
    EXPERIMENT_ID,
    SCHEMA_ID,
    VARIANTS,
    FakeAssignmentService,
    MemorySink,
    answer,
    split_arm,
)

pytestmark = pytest.mark.unit

FALLBACK = SchemaFallback(
    schema_id=SCHEMA_ID,
    schema_version=3,
    definition=AssignedConfig.model_validate(BASE_DEFINITION),
)


class FakeClock:
    """Monotonic time that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def assigner_for(
    service: FakeAssignmentService, clock: FakeClock, **kwargs: object
) -> AssignmentAPI:
    """The assignment half of :class:`AbflowClient` (which has no clock parameter) on a
    fake clock: cache TTLs and the cooldown without real sleeps."""
    options: dict[str, object] = {
        "timeout": 0.5,
        "retries": 1,
        "retry_backoff": 0.0,
        "cache_ttl": 10.0,
        "cache_size": 100,
        "fallback_cooldown": 2.0,
        "fallbacks": None,
        "learn_fallbacks": True,
        "stats": ClientStats(),
        **kwargs,
    }
    return AssignmentAPI(
        "http://assignment.test",
        transport=service.transport(),
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def client_for(service: FakeAssignmentService, **kwargs: object) -> AbflowClient:
    return AbflowClient(
        "http://assignment.test",
        transport=service.transport(),
        sink=MemorySink(),
        retry_backoff=0.0,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def blackhole() -> AsyncIterator[int]:
    """A server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()


async def test_assign_posts_the_contract_body_and_parses_the_answer() -> None:
    service = FakeAssignmentService()
    async with client_for(service) as client:
        a = await client.assign("checkout", "unit-1", {"region": "eu"})
    assert service.requests == [
        {"schema": "checkout", "unit_id": "unit-1", "attributes": {"region": "eu"}}
    ]
    arm = split_arm("unit-1")
    assert a.schema_id == SCHEMA_ID and a.schema_version == 1
    assert a.variant_key == arm and a.variant_id == VARIANTS[arm]
    assert a.experiment_id == EXPERIMENT_ID and a.in_experiment and a.reason == "experiment"
    assert a.unit_id == "unit-1" and not a.fallback and not a.cached
    assert a.config.config == {"model": arm} and a.arm == arm
    assert a.schema_key == "checkout" and a.revision == 7
    assert a.config.risk_config == BASE_DEFINITION["risk_config"]


async def test_config_is_also_accepted_under_its_plain_name() -> None:
    body = answer("control", "u")
    body["config"] = body.pop("effective_config")
    service = FakeAssignmentService(lambda b: httpx.Response(200, json=body))
    async with client_for(service) as client:
        a = await client.assign("checkout", "u")
    assert a.config.config == {"model": "control"}


async def test_unknown_fields_in_the_answer_are_ignored() -> None:
    service = FakeAssignmentService(
        lambda b: httpx.Response(200, json={**answer(None, "u"), "replica": "a-1", "new": 1})
    )
    async with client_for(service) as client:
        a = await client.assign("checkout", "u")
    assert a.is_base and a.arm == "base" and a.reason == "default"


async def test_answers_are_cached_per_unit_and_attributes() -> None:
    service = FakeAssignmentService()
    async with client_for(service) as client:
        first = await client.assign("checkout", "u1", {"a": 1, "b": 2})
        again = await client.assign("checkout", "u1", {"b": 2, "a": 1})  # same attributes
        await client.assign("checkout", "u1", {"a": 2})  # other attributes
        await client.assign("checkout", "u2")
        await client.assign("other", "u1", {"a": 1, "b": 2})
        assert len(service.requests) == 4
        assert again.cached and not first.cached
        assert again.model_copy(update={"cached": False}) == first
        assert client.stats.cache_hits == 1


async def test_requests_without_unit_id_are_never_cached() -> None:
    service = FakeAssignmentService()
    async with client_for(service) as client:
        await client.assign("checkout")
        await client.assign("checkout", "")
    assert len(service.requests) == 2
    assert service.requests[1]["unit_id"] is None


async def test_cache_entries_expire_after_the_ttl() -> None:
    service, clock = FakeAssignmentService(), FakeClock()
    api = assigner_for(service, clock, cache_ttl=5.0)
    try:
        assert not (await api.assign("checkout", "u1", None)).cached
        clock.now += 4.9  # within the TTL: from the cache
        assert (await api.assign("checkout", "u1", None)).cached
        assert len(service.requests) == 1
        clock.now += 0.2  # 5.1 s after the answer: expired, asked again
        assert not (await api.assign("checkout", "u1", None)).cached
        assert len(service.requests) == 2
        assert (await api.assign("checkout", "u1", None)).cached  # the new answer is cached
    finally:
        await api.close()
    assert len(service.requests) == 2


async def test_cache_disabled_with_zero_ttl() -> None:
    service = FakeAssignmentService()
    async with client_for(service, cache_ttl=0) as client:
        await client.assign("checkout", "u1")
        await client.assign("checkout", "u1")
    assert len(service.requests) == 2


def test_ttl_cache_expiry_and_lru_eviction() -> None:
    now = [0.0]
    cache: TTLCache[int] = TTLCache(ttl=10, maxsize=2, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)  # evicts b
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] = 10.0
    assert cache.get("a") is None and len(cache) == 1


@pytest.mark.parametrize(
    "first",
    [
        httpx.Response(503, json={"error": "starting"}),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"schema_id": "not-a-uuid"}),
        "connect-error",
    ],
    ids=["503", "502", "not-json", "invalid-answer", "connect-error"],
)
async def test_one_retry_recovers_from_a_transient_failure(first: object) -> None:
    calls = 0

    def respond(body: dict[str, object]) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            if first == "connect-error":
                raise httpx.ConnectError("refused")
            assert isinstance(first, httpx.Response)
            return first
        return httpx.Response(200, json=answer("treatment", "u1"))

    service = FakeAssignmentService(respond)
    async with client_for(service) as client:
        a = await client.assign("checkout", "u1")
        assert a.variant_key == "treatment" and not a.fallback
        assert client.stats.assign_retries == 1 and client.stats.assign_requests == 2


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_4xx_answer_raises_without_retry_or_fallback(status: int) -> None:
    service = FakeAssignmentService(
        lambda b: httpx.Response(status, json={"error": "not_found", "message": "no schema"})
    )
    async with client_for(service, fallbacks={"checkout": FALLBACK}) as client:
        with pytest.raises(AssignmentRejectedError) as info:
            await client.assign("checkout", "u1")
    assert info.value.status_code == status
    assert info.value.body == {"error": "not_found", "message": "no schema"}
    assert len(service.requests) == 1


async def test_persistent_failure_falls_back_to_the_configured_base_version() -> None:
    service = FakeAssignmentService(lambda b: httpx.Response(503))
    async with client_for(service, fallbacks={"checkout": FALLBACK}) as client:
        a = await client.assign("checkout", "u1")
        assert a.fallback and a.reason == "fallback" and a.is_base
        assert a.schema_id == SCHEMA_ID and a.schema_version == 3
        assert a.experiment_id is None and not a.in_experiment
        assert a.config.risk_config == BASE_DEFINITION["risk_config"]
        assert a.unit_id == "u1"
        assert client.stats.fallbacks == 1 and client.stats.assign_requests == 2


async def test_no_fallback_known_raises_unavailable() -> None:
    service = FakeAssignmentService(lambda b: httpx.Response(500))
    async with client_for(service) as client:
        with pytest.raises(AssignmentUnavailableError, match="set_fallback"):
            await client.assign("checkout", "u1")


async def test_fallback_is_learned_from_a_base_version_answer() -> None:
    up = True

    def respond(body: dict[str, object]) -> httpx.Response:
        if not up:
            raise httpx.ConnectError("down")
        return httpx.Response(200, json=answer(None, "u0"))

    service = FakeAssignmentService(respond)
    async with client_for(service, cache_ttl=0) as client:
        assert client.fallback_for("checkout") is None
        base = await client.assign("checkout", "u0")
        up = False
        a = await client.assign("checkout", "u1")
    assert a.fallback and a.schema_id == base.schema_id
    assert a.schema_version == base.schema_version and a.config == base.config


async def test_variant_answers_are_not_learned_as_fallback() -> None:
    service = FakeAssignmentService()  # every unit gets a variant
    async with client_for(service) as client:
        await client.assign("checkout", "u1")
        assert client.fallback_for("checkout") is None


async def test_configured_fallback_wins_over_the_learned_one() -> None:
    service = FakeAssignmentService(lambda b: httpx.Response(200, json=answer(None, "u")))
    async with client_for(service) as client:
        await client.assign("checkout", "u0")
        client.set_fallback("checkout", FALLBACK)
        assert client.fallback_for("checkout") == FALLBACK


async def test_after_a_failure_the_cooldown_skips_the_network() -> None:
    service, clock = FakeAssignmentService(lambda b: httpx.Response(503)), FakeClock()
    api = assigner_for(service, clock, fallbacks={"s": FALLBACK}, fallback_cooldown=0.2)
    try:
        await api.assign("s", "u1", None)
        assert len(service.requests) == 2
        for i in range(5):
            clock.now += 0.03  # 0.15 s in all: still within the cooldown
            assert (await api.assign("s", f"v{i}", None)).fallback
        assert len(service.requests) == 2
        clock.now += 0.1  # past the cooldown: the network again
        await api.assign("s", "u9", None)
        assert len(service.requests) == 4
    finally:
        await api.close()


async def test_recovery_after_the_cooldown_serves_real_answers_again() -> None:
    up = False

    def respond(body: dict[str, object]) -> httpx.Response:
        if not up:
            return httpx.Response(503)
        return httpx.Response(200, json=answer("control", "u1"))

    service = FakeAssignmentService(respond)
    async with client_for(service, fallbacks={"s": FALLBACK}, fallback_cooldown=0.05) as client:
        assert (await client.assign("s", "u1")).fallback
        up = True
        await asyncio.sleep(0.06)
        a = await client.assign("s", "u1")
    assert not a.fallback and a.variant_key == "control"


async def test_unreachable_service_closed_port_answers_base_within_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AbflowClient(url, sink=MemorySink(), timeout=0.5, fallbacks={"s": FALLBACK}) as c:
        t0 = time.perf_counter()
        a = await c.assign("s", "unit-1")
        elapsed = time.perf_counter() - t0
    assert a.fallback and a.reason == "fallback" and a.schema_version == 3
    # the documented bound, (retries + 1) x timeout + backoff, plus 2 s of slack for a
    # loaded machine (a refused connection normally takes milliseconds)
    assert elapsed < 2 * 0.5 + 0.05 + 2.0


async def test_hanging_service_answers_base_within_the_timeout_bound(blackhole: int) -> None:
    timeout, backoff = 0.2, 0.05
    async with AbflowClient(
        f"http://127.0.0.1:{blackhole}",
        sink=MemorySink(),
        timeout=timeout,
        retry_backoff=backoff,
        fallbacks={"s": FALLBACK},
    ) as client:
        t0 = time.perf_counter()
        a = await client.assign("s", "unit-1")
        elapsed = time.perf_counter() - t0
        assert client.stats.assign_requests == 2
    assert a.fallback
    assert 2 * timeout <= elapsed < 2 * timeout + backoff + 2.0  # slack for a loaded machine


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout"):
        AbflowClient(timeout=0)
    with pytest.raises(ValueError, match="retries"):
        AbflowClient(retries=-1)
