"""The in-memory snapshot: revisions, tombstones, lookups and pre-serialised answers."""

from __future__ import annotations

import json
import random
import uuid

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.assignment.serving.metrics import ServingMetrics
from services.assignment.serving.snapshot import Snapshot, bucket_json, decision_dict
from shared.assignment import decide, sdk_payload
from shared.events import ExposureEvent

from .builders import config, experiment, three_arm, uid, variant

pytestmark = pytest.mark.unit


def test_newer_revisions_apply_older_and_equal_ones_do_not() -> None:
    snap = Snapshot("r1")
    assert snap.apply(three_arm(revision=2)) == "applied"
    assert snap.apply(three_arm(0.5, revision=2)) == "stale"
    assert snap.apply(three_arm(0.5, revision=1)) == "stale"
    entry = snap.get("checkout")
    assert entry is not None and entry.revision == 2
    assert entry.config.experiment is not None and entry.config.experiment.coverage == 1.0
    assert snap.apply(three_arm(0.5, revision=3)) == "applied"
    entry = snap.get("checkout")
    assert entry is not None and entry.revision == 3


def test_lookup_by_key_and_by_any_uuid_spelling() -> None:
    snap = Snapshot()
    cfg = three_arm()
    snap.apply(cfg)
    sid = cfg.schema_id
    for ref in ("checkout", str(sid), str(sid).upper(), sid.hex, "{" + str(sid) + "}"):
        entry = snap.get(ref)
        assert entry is not None and entry.schema_id == sid, ref
    assert snap.get("nope") is None
    assert snap.get(str(uuid.uuid4())) is None
    assert snap.get("x" * 36) is None


def test_tombstone_removes_and_a_later_config_comes_back() -> None:
    snap = Snapshot()
    cfg = three_arm(revision=5)
    snap.apply(cfg)
    v0 = snap.version
    assert snap.remove(cfg.schema_id) == "removed"
    assert snap.get("checkout") is None and snap.get(str(cfg.schema_id)) is None
    assert snap.version > v0
    assert snap.remove(cfg.schema_id) == "unknown"
    assert snap.apply(three_arm(revision=1)) == "applied"  # forgotten: any revision
    assert snap.get("checkout") is not None


def test_renamed_key_and_shared_keys() -> None:
    snap = Snapshot()
    snap.apply(config("old", schema_id=uid("s1")))
    snap.apply(config("new", schema_id=uid("s1"), revision=2))
    assert snap.get("old") is None
    entry = snap.get("new")
    assert entry is not None and entry.schema_id == uid("s1")
    # a second schema claims the same key: the key names the latest; removing it
    # hands the key back to the other one
    snap.apply(config("new", schema_id=uid("s2")))
    entry = snap.get("new")
    assert entry is not None and entry.schema_id == uid("s2")
    snap.remove(uid("s2"))
    entry = snap.get("new")
    assert entry is not None and entry.schema_id == uid("s1")


def test_revision_gauges_follow_the_snapshot() -> None:
    registry = CollectorRegistry()
    snap = Snapshot("r", ServingMetrics(registry))
    cfg = three_arm(revision=4)
    snap.apply(cfg)
    assert registry.get_sample_value("assignment_snapshot_revision", {"schema": "checkout"}) == 4
    snap.remove(cfg.schema_id)
    assert registry.get_sample_value("assignment_snapshot_revision", {"schema": "checkout"}) is None


CONFIGS = {
    "experiment": three_arm(0.6),
    "experiment+rollout": config(
        variants=[variant("a", 30), variant("b", 20, timeout_s=5), variant("c", timeout_s=7)],
        exp=experiment(["c", "a"], [0.5, 0.5], 0.3),
    ),
    "rollout": config(variants=[variant("a", 40), variant("paused", 30, status="paused")]),
    "base only": config(),
    "arm without variant": config(
        variants=[variant("a")], exp=experiment(["a", "gone"], [0.25, 0.75], 1.0)
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rendered_answers_equal_the_decision(name: str) -> None:
    cfg = CONFIGS[name]
    snap = Snapshot("replica-1")
    snap.apply(cfg)
    entry = snap.get(cfg.schema_key)
    assert entry is not None
    rng = random.Random(3)
    for unit in [f"unit-{i}" for i in range(2000)] + ["", None, "ünï-用户", "😀"]:
        d = decide(entry.compiled, unit, rng)
        r = entry.render(d)
        body = r.prefix + bucket_json(d.bucket) + r.suffix
        assert json.loads(body) == decision_dict(entry, d)
        assert list(json.loads(body)) == list(decision_dict(entry, d))  # field order
        if d.in_experiment:
            assert r.exposure_prefix is not None
        else:
            assert r.exposure_prefix is None
    # a handful of outcomes, each rendered once
    assert len(entry.rendered) <= 2 * (len(cfg.variants) + 2) + 2


def test_effective_config_is_the_variant_definition() -> None:
    snap = Snapshot()
    cfg = three_arm()
    snap.apply(cfg)
    entry = snap.get("checkout")
    assert entry is not None
    seen = set()
    for i in range(500):
        d = decide(entry.compiled, f"u{i}")
        doc = json.loads(entry.render(d).prefix + bucket_json(d.bucket) + entry.render(d).suffix)
        by_key = {v.variant_key: v for v in cfg.variants}
        assert doc["effective_config"] == by_key[
            doc["variant_key"]
        ].effective_definition.model_dump(mode="json")
        seen.add(doc["variant_key"])
    assert seen == {"control", "fast", "slow"}


def test_exposure_prefix_makes_a_valid_exposure_event() -> None:
    from services.assignment.serving.exposures import encode_exposure

    snap = Snapshot("replica-7")
    snap.apply(three_arm())
    entry = snap.get("checkout")
    assert entry is not None
    d = decide(entry.compiled, "unit-42")
    r = entry.render(d)
    assert r.exposure_prefix is not None and d.bucket is not None
    event = ExposureEvent.model_validate_json(
        encode_exposure(r.exposure_prefix, "unit-42", d.bucket, 1_700_000_000.25)
    )
    assert event.unit_id == "unit-42"
    assert event.experiment_id == d.experiment_id and event.variant_id == d.variant_id
    assert event.variant_key == d.variant_key and event.experiment_key == d.experiment_key
    assert event.schema_id == d.schema_id and event.bucket == d.bucket
    assert event.replica == "replica-7"
    assert event.exposed_at.timestamp() == 1_700_000_000.25


def test_sdk_payload_is_cached_until_the_snapshot_changes() -> None:
    snap = Snapshot()
    snap.apply(three_arm())
    snap.apply(CONFIGS["rollout"].model_copy(update={"schema_key": "other", "schema_id": uid("o")}))
    body, etag = snap.sdk_payload()
    assert orjson.loads(body) == json.loads(
        json.dumps(sdk_payload(sorted(snap.configs(), key=lambda c: c.schema_key)))
    )
    assert snap.sdk_payload() == (body, etag)
    snap.apply(three_arm(0.5, revision=2))
    body2, etag2 = snap.sdk_payload()
    assert etag2 != etag
    assert orjson.loads(body2)["features"]["checkout"]["rules"][0]["coverage"] == 0.5
