"""Settings come from the environment; inconsistent ones are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.aggregator.settings import AggregatorSettings

pytestmark = pytest.mark.unit


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_WEB_PORT", "18123")
    monkeypatch.setenv("TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("AGGREGATOR_FLUSH_INTERVAL_S", "0.5")
    monkeypatch.setenv("AGGREGATOR_LATENESS_HOURS", "48")
    s = AggregatorSettings()
    assert s.aggregator_web_port == 18123
    assert s.aggregator_flush_interval_s == 0.5
    assert s.aggregator_lateness_hours == 48
    assert s.executions_topic == "t1.abflow.executions.v1"
    assert s.exposures_topic == "t1.abflow.exposures.v1"
    assert s.executions_group == "abflow-aggregator.executions"
    assert s.faust_app_id == "abflow-aggregator.exposures"


def test_defaults() -> None:
    s = AggregatorSettings()
    assert s.aggregator_flush_interval_s == 1.0
    assert s.aggregator_lateness_hours == 168
    assert s.aggregator_max_event_bytes == 1024 * 1024
    assert s.aggregator_executions_partitions == 6


def test_raw_retention_must_exceed_the_lateness() -> None:
    with pytest.raises(ValidationError, match="exceed"):
        AggregatorSettings(aggregator_raw_retention_days=3, aggregator_lateness_hours=168)
    assert AggregatorSettings(aggregator_raw_retention_days=8).aggregator_raw_retention_days == 8
    with pytest.raises(ValidationError):
        AggregatorSettings(aggregator_session_timeout_s=2)
