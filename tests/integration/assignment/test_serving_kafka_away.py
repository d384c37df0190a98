"""Kafka away: a loaded replica keeps answering from its snapshot and says degraded;
a replica that never reached Kafka is not ready.

"Away" is made real for the follower: its consumer is closed under it and every
reconnection goes to an address where nothing listens (connection refused), until the
address is given back; meanwhile a new revision is published on the real broker.
"""

from __future__ import annotations

import pytest

from tests.unit.serving.builders import three_arm

from .helpers import dead_address, eventually, publish, running, settings, unit_ids

pytestmark = pytest.mark.integration

UNITS = unit_ids(2_000, seed=11)


async def test_keeps_serving_the_snapshot_while_kafka_is_away(
    kafka_bootstrap: str, topics: str
) -> None:
    await publish(kafka_bootstrap, topics, three_arm(0.5, revision=1))
    s = settings(kafka_bootstrap, topics, stale_after_s=1.0)
    async with running(s) as replica:
        follower = replica.serving.follower
        before = await replica.batch("checkout", UNITS)

        async def ok() -> bool:
            status, health = await replica.health()
            return status == 200 and health["status"] == "ok"

        # the starting point: "ok" needs the snapshot confirmed current within the last
        # stale_after_s (1 s), which the batches above may have delayed on this loop
        assert await eventually(ok, timeout=20), await replica.health()

        # Kafka goes away: the consumer is closed, reconnections are refused
        follower.bootstrap = dead_address()
        assert follower.consumer is not None
        await follower.consumer.stop()

        async def away() -> bool:
            _status, health = await replica.health()
            config = health["components"]["serving"]["config"]
            return bool(
                config["kafka"] == "unreachable"
                and config["snapshot_age_s"] > 1.0
                and config["reconnects"] >= 2
            )

        await publish(kafka_bootstrap, topics, three_arm(1.0, revision=2))  # not seen yet
        assert await eventually(away, timeout=10)
        status, health = await replica.health()
        report = health["components"]["serving"]
        assert status == 200 and health["status"] == "degraded"
        assert report["ready"] is True
        assert report["config"]["kafka"] == "unreachable", report
        assert "Unable to bootstrap" in report["config"]["last_error"]
        assert report["snapshot_age_s"] > 1.0
        assert (await replica.http.get("/health/ready")).status_code == 200
        # still answering, from the last snapshot (revision 1)
        assert await replica.batch("checkout", UNITS) == before
        assert (await replica.assign("checkout", "u-1"))["revision"] == 1
        metrics = (await replica.http.get("/metrics")).text
        assert "assignment_config_kafka_connected 0.0" in metrics

        # Kafka is back: the follower reconnects, catches up, health is ok again
        follower.bootstrap = kafka_bootstrap

        async def recovered() -> bool:
            return (await replica.assign("checkout", "u-1"))["revision"] == 2 and (
                await replica.health()
            )[1]["status"] == "ok"

        assert await eventually(recovered, timeout=15)
        after = await replica.batch("checkout", UNITS)
        assert all(
            a["variant_key"] == b["variant_key"]
            for a, b in zip(after, before, strict=True)
            if b["in_experiment"]
        )


async def test_a_replica_that_never_reached_kafka_is_not_ready(topic_prefix: str) -> None:
    s = settings(dead_address(), topic_prefix, readiness_timeout_s=0.5)
    async with running(s) as replica:
        status, health = await replica.health()
        assert status == 503 and health["status"] == "down"
        assert health["components"]["serving"]["ready"] is False
        assert (await replica.http.get("/health/ready")).status_code == 503
        r = await replica.http.post("/api/v1/assign", json={"schema": "checkout", "unit_id": "u"})
        assert r.status_code == 503 and r.json()["error"] == "not_ready"
