"""The outbox relay: nothing pending is lost when it stops or crashes, rows are published
in order, and the consumer's view holds every revision once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.assignment.control.settings import ControlSettings

from .conftest import ConfigTopic, running
from .factories import create_schema, create_variant, ok

pytestmark = pytest.mark.integration


async def _mutate(client: httpx.AsyncClient, sid: str, n: int) -> None:
    """n mutations, each changing the schema's config (one revision each)."""
    v = await create_variant(client, sid, f"v{uuid.uuid4().hex[:6]}", traffic_allocation=1)
    await ok(await client.post(f"/api/v1/versions/variants/{v['id']}/activate"))
    for i in range(n - 1):
        await ok(
            await client.patch(
                f"/api/v1/versions/variants/{v['id']}", json={"traffic_allocation": 2 + i}
            )
        )


def _consumer_view(records: list[dict[str, Any] | None]) -> list[int]:
    """What a consumer applies: a value only when its revision is newer than the one held."""
    held = 0
    applied: list[int] = []
    for value in records:
        if value is not None and value["revision"] > held:
            held = value["revision"]
            applied.append(held)
    return applied


async def _drained(db_pool: asyncpg.Pool, schema_ids: list[str], timeout: float = 10) -> int:
    """Pending rows once the relay had time to mark what it sent (0 when drained)."""
    for _ in range(int(timeout / 0.05)):
        if not await _pending(db_pool, schema_ids):
            break
        await asyncio.sleep(0.05)
    return await _pending(db_pool, schema_ids)


async def _pending(db_pool: asyncpg.Pool, schema_ids: list[str]) -> int:
    count: int = await db_pool.fetchval(
        "SELECT count(*) FROM config_outbox WHERE published_at IS NULL AND schema_id = ANY($1::uuid[])",
        [uuid.UUID(s) for s in schema_ids],
    )
    return count


async def test_relay_resumes_after_a_stop_and_after_a_crash(
    control_settings: ControlSettings, config_topic: ConfigTopic, db_pool: asyncpg.Pool
) -> None:
    stopped = control_settings.model_copy(update={"relay_enabled": False})
    # 1. the relay is not running: mutations commit, their rows wait in the outbox
    async with running(stopped) as (_, client):
        sids = [(await create_schema(client))["id"] for _ in range(3)]
        for sid in sids:
            await _mutate(client, sid, 4)
        revisions = {
            sid: (await ok(await client.get(f"/api/v1/schemas/{sid}")))["config_revision"]
            for sid in sids
        }
    assert revisions == dict.fromkeys(sids, 5)
    assert await _pending(db_pool, sids) == 15
    await config_topic.poll(300)
    assert not any(sid in config_topic.records for sid in sids)

    # 2. restart with the relay: every pending row is published, in order
    async with running(control_settings) as (app, client):
        for sid in sids:
            await config_topic.wait_revision(sid, 5)
        assert await _drained(db_pool, sids) == 0
        for sid in sids:
            assert [v["revision"] for v in config_topic.records[sid]] == [1, 2, 3, 4, 5]  # type: ignore[index]

        # 3. stop the relay mid-stream, keep writing, start it again
        await app.state.control.relay.stop()
        await _mutate(client, sids[0], 3)
        assert await _pending(db_pool, sids) == 3
        app.state.control.relay.start()
        await config_topic.wait_revision(sids[0], 8)

    # 4. a crash after sending but before marking: the rows are sent again on restart
    async with db_pool.acquire() as conn:
        await conn.execute(
            """
            UPDATE config_outbox SET published_at = NULL
             WHERE schema_id = $1 AND revision >= 6
            """,
            uuid.UUID(sids[0]),
        )
    async with running(control_settings) as (_, client):
        deadline = asyncio.get_running_loop().time() + 15
        while (
            len(config_topic.records[sids[0]]) < 11 and asyncio.get_running_loop().time() < deadline
        ):
            await config_topic.poll()
        assert await _drained(db_pool, sids) == 0
    wire = [v["revision"] for v in config_topic.records[sids[0]] if v is not None]
    assert wire == [1, 2, 3, 4, 5, 6, 7, 8, 6, 7, 8]  # duplicates on the wire, in order
    for sid in sids:
        expected = list(range(1, 9)) if sid == sids[0] else [1, 2, 3, 4, 5]
        assert _consumer_view(config_topic.records[sid]) == expected  # once per revision
    last = config_topic.records[sids[0]][-1]
    assert last is not None and last["revision"] == 8


async def test_one_relay_publishes_at_a_time(
    control_settings: ControlSettings, config_topic: ConfigTopic
) -> None:
    async with (
        running(control_settings) as (app_a, client),
        running(control_settings) as (app_b, _),
    ):
        relays = [app_a.state.control.relay, app_b.state.control.relay]
        for _ in range(200):
            if sum(r.leader for r in relays) == 1:
                break
            await asyncio.sleep(0.05)
        assert sum(r.leader for r in relays) == 1
        leader = next(r for r in relays if r.leader)
        sid = (await create_schema(client))["id"]
        await _mutate(client, sid, 2)
        await config_topic.wait_revision(sid, 3)
        # the leader goes away: the other replica takes over
        await leader.stop()
        await _mutate(client, sid, 2)
        await config_topic.wait_revision(sid, 5)
        assert next(r for r in relays if r is not leader).leader
        health = await client.get("/health")
        assert health.json()["components"]["control"]["relay"]["enabled"] is True


async def test_retention_deletes_published_rows_but_each_schemas_latest(
    control_settings: ControlSettings, config_topic: ConfigTopic, db_pool: asyncpg.Pool
) -> None:
    settings = control_settings.model_copy(
        update={"outbox_retention_s": 0.0, "outbox_retention_interval_s": 0.2}
    )

    async def rows(sid: str) -> list[tuple[int, bool]]:
        found = await db_pool.fetch(
            "SELECT revision, published_at IS NOT NULL AS published FROM config_outbox "
            "WHERE schema_id = $1 ORDER BY revision",
            uuid.UUID(sid),
        )
        return [(r["revision"], r["published"]) for r in found]

    async def purged_down_to(sid: str, want: list[tuple[int, bool]]) -> list[tuple[int, bool]]:
        for _ in range(200):
            got = await rows(sid)
            if got == want:
                break
            await asyncio.sleep(0.05)
        return got

    async with running(settings) as (app, client):
        sid = (await create_schema(client))["id"]
        await _mutate(client, sid, 4)
        await config_topic.wait_revision(sid, 5)
        assert await purged_down_to(sid, [(5, True)]) == [(5, True)]
        assert app.state.control.relay.purged >= 4
        # the kept row still lets a writer see that a change changes nothing ...
        variants = await ok(
            await client.get("/api/v1/versions/variants", params={"schema_id": sid})
        )
        (vid,) = [v["id"] for v in variants["items"]]
        current = await ok(await client.get(f"/api/v1/versions/variants/{vid}"))
        await ok(
            await client.patch(
                f"/api/v1/versions/variants/{vid}",
                json={"traffic_allocation": current["traffic_allocation"]},
            )
        )
        schema = await ok(await client.get(f"/api/v1/schemas/{sid}"))
        assert schema["config_revision"] == 5
        # ... and the next real change goes out as the next revision
        await ok(
            await client.patch(f"/api/v1/versions/variants/{vid}", json={"traffic_allocation": 50})
        )
        await config_topic.wait_revision(sid, 6)
        assert await purged_down_to(sid, [(6, True)]) == [(6, True)]
