"""The Prometheus and Grafana provisioning files, checked without any running service
(``unit``): they parse, every panel has a datasource and PromQL targets, the generated
files are in sync with their sources, and every metric a panel queries is one that a
service declares."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from .dashboards import (
    ROOT,
    dashboard_files,
    instantiate,
    label_values_query,
    load,
    metric_names,
    panels,
    targets,
    variables,
)

pytestmark = pytest.mark.unit

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
JOBS = {"assignment", "analysis", "aggregator", "console"}
DATASOURCE_UID = "prometheus"
# Per-variant gauges the analysis service must export for the "Experiments by variant"
# dashboard (see docs/monitoring.md, "Metrics the dashboards need").
ANALYSIS_VARIANT_GAUGES = {
    "abflow_analysis_variant_executions",
    "abflow_analysis_variant_success_rate",
    "abflow_analysis_variant_execution_time_mean_ms",
}


def _declared_metric_names() -> set[str]:
    """Sample names of the metrics the services declare (built in a scratch registry)."""
    from services.aggregator.metrics import AggregatorMetrics
    from services.assignment.serving.metrics import ServingMetrics
    from shared.http import MetricsMiddleware

    registry = CollectorRegistry()
    AggregatorMetrics(registry)
    ServingMetrics(registry)
    MetricsMiddleware(Starlette(), registry, "x")
    names = {"up"}
    for family in registry.collect():
        base = family.name
        if family.type == "counter":
            names |= {f"{base}_total", f"{base}_created"}
        elif family.type == "histogram":
            names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
        else:
            names.add(base)
    return names


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    files = dashboard_files()
    assert len(files) >= 4, "deploy/grafana/dashboards holds the dashboards"
    return {p.name: load(p) for p in files}


def test_every_dashboard_parses_and_has_a_unique_uid(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, d in dashboards.items():
        assert d["title"].startswith("abflow"), name
        assert "abflow" in d["tags"], name
        assert list(panels(d)), f"{name} has no panels"


def test_every_panel_has_a_datasource_and_promql_targets(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, d in dashboards.items():
        ids = set()
        for p in panels(d):
            where = f"{name}: panel {p.get('title')!r}"
            assert p["id"] not in ids, f"{where}: duplicate id"
            ids.add(p["id"])
            assert p.get("datasource", {}).get("uid") == DATASOURCE_UID, where
            assert p.get("targets"), f"{where} has no targets"
            for t in p["targets"]:
                assert t.get("expr", "").strip(), f"{where} {t.get('refId')}: empty expr"
                assert t.get("datasource", {}).get("uid") == DATASOURCE_UID, where
            pos = p["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, where


def test_the_expressions_are_valid_promql(
    dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """promtool (Debian's prometheus package) parses each expression as a rule."""
    promtool = Path("/usr/bin/promtool")
    if not promtool.exists():
        pytest.fail("promtool not found: apt-get install prometheus", pytrace=False)
    rules: list[dict[str, str]] = []
    for d in dashboards.values():
        names = variables(d)
        rules += [{"record": f"check:r{i}", "expr": instantiate(t.expr, names)} for i, t in enumerate(targets(d), len(rules))]  # fmt: skip
        rules += [{"record": f"check:v{i}", "expr": label_values_query(q)} for i, q in enumerate(names.values(), len(rules))]  # fmt: skip
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_variables_reference_grafana_builtins_or_dashboard_variables(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, d in dashboards.items():
        for t in targets(d):
            left = instantiate(t.expr, variables(d))
            assert not re.search(r"\$(?!\{?\d)", left), f"{name}: {t}: unknown variable in {left}"


def test_dashboards_query_only_declared_metrics(dashboards: dict[str, dict[str, Any]]) -> None:
    declared = _declared_metric_names() | ANALYSIS_VARIANT_GAUGES
    unknown = {
        f"{t}: {m}"
        for d in dashboards.values()
        for t in targets(d)
        for m in metric_names(t.expr)
        if m not in declared
    }
    assert not unknown, "metrics no service declares:\n" + "\n".join(sorted(unknown))


def test_analysis_exports_the_per_variant_gauges() -> None:
    """The per-variant time series come from the analysis service's gauges."""
    source = "\n".join(p.read_text() for p in (ROOT / "services" / "analysis").rglob("*.py"))
    missing = sorted(n for n in ANALYSIS_VARIANT_GAUGES if n not in source)
    assert not missing, (
        f"services/analysis does not declare {missing}: the 'Experiments by variant' dashboard "
        "needs them (gauges labelled experiment=<key>, variant=<key>, control=true|false for "
        "running and paused experiments; see docs/monitoring.md)"
    )


def test_generated_dashboards_are_in_sync() -> None:
    res = subprocess.run(
        [sys.executable, str(GRAFANA_DIR / "build_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    ds = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert [d["uid"] for d in ds["datasources"]] == [DATASOURCE_UID]
    prov = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "abflow.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def _jobs(path: Path) -> dict[str, list[str]]:
    cfg = yaml.safe_load(path.read_text())
    return {
        j["job_name"]: [t for sc in j.get("static_configs", []) for t in sc["targets"]]
        for j in cfg["scrape_configs"]
    }


def test_prometheus_scrapes_every_service_in_both_configs() -> None:
    compose = _jobs(PROMETHEUS_DIR / "prometheus.yml")
    local = _jobs(PROMETHEUS_DIR / "prometheus.local.yml")
    assert set(compose) >= JOBS and set(local) == set(compose)
    for job in JOBS:
        assert compose[job] == [f"{job}:{compose[job][0].split(':')[1]}"], job
        assert local[job] == [f"127.0.0.1:{compose[job][0].split(':')[1]}"], job


def test_local_prometheus_config_is_in_sync() -> None:
    res = subprocess.run(
        [sys.executable, str(PROMETHEUS_DIR / "render_local.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_local_render_takes_service_urls_from_the_environment() -> None:
    sys.path.insert(0, str(PROMETHEUS_DIR))
    try:
        import render_local  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    text = render_local.render(
        (PROMETHEUS_DIR / "prometheus.yml").read_text(),
        render_local.target_overrides(
            {"ANALYSIS_URL": "http://127.0.0.1:28002", "PROMETHEUS_LISTEN": "127.0.0.1:39090"}
        ),
    )
    jobs = {j["job_name"]: j for j in yaml.safe_load(text)["scrape_configs"]}
    assert jobs["analysis"]["static_configs"][0]["targets"] == ["127.0.0.1:28002"]
    assert jobs["assignment"]["static_configs"][0]["targets"] == ["127.0.0.1:18001"]
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:39090"]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (service) (rate(http_requests_total{service=~"$service"}[$__rate_interval]))', {"http_requests_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(abflow_aggregator_sink_seconds_bucket[1m])))", {"abflow_aggregator_sink_seconds_bucket"}),
        ("a / on (experiment) group_left sum by (experiment) (b)", {"a", "b"}),
        ('(x{s="5.."} or sum by (service) (y) * 0) / z', {"x", "y", "z"}),
    ],
)  # fmt: skip
def test_metric_names_are_extracted(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_instantiate_substitutes_variables_and_intervals() -> None:
    expr = 'rate(m{a=~"$experiment", b=~"${experiment}"}[$__rate_interval]) "${1}"'
    assert instantiate(expr, {"experiment": "q"}) == 'rate(m{a=~".+", b=~".+"}[1m]) "${1}"'
    assert label_values_query("label_values(up, job)") == "count by (job) (up)"
