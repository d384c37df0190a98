"""50 concurrent allocation changes on one schema never leave the active total above 100:
neither in the database at any commit, nor in any configuration published to Kafka."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from .conftest import ConfigTopic
from .factories import assert_topic_matches, create_schema, create_variant, ok

pytestmark = pytest.mark.integration


async def test_fifty_concurrent_allocation_updates(
    client: httpx.AsyncClient, config_topic: ConfigTopic
) -> None:
    sid = (await create_schema(client))["id"]
    variants = [await create_variant(client, sid, f"v{i}", traffic_allocation=10) for i in range(5)]
    for v in variants:
        await ok(await client.post(f"/api/v1/versions/variants/{v['id']}/activate"))
    rng = random.Random(20251222)

    async def one(i: int) -> httpx.Response:
        if i % 2:
            picked = rng.sample(variants, rng.randint(1, 5))
            return await client.post(
                f"/api/v1/versions/schemas/{sid}/traffic-allocation",
                json={
                    "allocations": [
                        {"variant_id": v["id"], "traffic_allocation": rng.randint(0, 60)}
                        for v in picked
                    ]
                },
            )
        v = rng.choice(variants)
        return await client.patch(
            f"/api/v1/versions/variants/{v['id']}", json={"traffic_allocation": rng.randint(0, 60)}
        )

    responses = await asyncio.gather(*(one(i) for i in range(50)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 422}, [r.text for r in responses if r.status_code not in (200, 422)]
    assert codes.count(200) >= 5 and codes.count(422) >= 5, codes
    for r in responses:
        if r.status_code == 422:
            assert r.json()["constraint"] == "schema_variants_traffic_sum"

    final = await ok(await client.get("/api/v1/versions/variants", params={"schema_id": sid}))
    total = sum(
        Decimal(str(v["traffic_allocation"])) for v in final["items"] if v["status"] == "active"
    )
    assert total <= 100
    last = await assert_topic_matches(client, config_topic, sid)
    # every configuration ever published for the schema respects the limit, revisions in order
    published = [v for v in config_topic.records[sid] if v is not None]
    assert [v["revision"] for v in published] == list(range(1, last["revision"] + 1))
    for value in published:
        assert (
            sum(
                Decimal(str(v["traffic_allocation"]))
                for v in value["variants"]
                if v["status"] == "active"
            )
            <= 100
        )


async def test_the_database_alone_holds_the_limit_under_concurrency(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    """Writers that bypass the API (and its checks) still cannot exceed 100 percent."""
    sid = (await create_schema(client))["id"]
    ids = [uuid.UUID((await create_variant(client, sid, f"raw{i}"))["id"]) for i in range(10)]

    async def activate(variant_id: uuid.UUID, pct: int) -> bool:
        try:
            async with db_pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "UPDATE schema_variants SET status = 'active', traffic_allocation = $2 WHERE id = $1",
                    variant_id,
                    pct,
                )
                await asyncio.sleep(0.01)  # hold the lock a little: maximise overlap
            return True
        except asyncpg.CheckViolationError as exc:
            assert exc.constraint_name == "schema_variants_traffic_sum"
            return False

    results: list[Any] = await asyncio.gather(
        *(activate(ids[i % 10], 15 + i % 3) for i in range(50))
    )
    total = await db_pool.fetchval(
        "SELECT sum(traffic_allocation) FROM schema_variants WHERE schema_id = $1 AND status = 'active'",
        uuid.UUID(sid),
    )
    assert total <= 100 and any(results) and not all(results)
