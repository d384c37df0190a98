#!/usr/bin/env python3
"""Generate the Grafana dashboards of ``deploy/grafana/dashboards/`` (JSON, provisioned by
``provisioning/dashboards/abflow.yml``).

    python3 deploy/grafana/build_dashboards.py          # rewrite the JSON files
    python3 deploy/grafana/build_dashboards.py --check  # exit 1 when a file is stale

The JSON files are what Grafana loads and what the tests read; this script keeps their
layout, datasource and conventions uniform. Every query uses the ``prometheus``
datasource (``provisioning/datasources/prometheus.yml``), ``$__rate_interval`` for
rates, and selects services by the ``job`` / ``service`` labels of
``deploy/prometheus/prometheus.yml``. The metric names are the services' own (see
``docs/monitoring.md``). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SERVICES = "assignment|analysis|aggregator|console"
R = "$__rate_interval"


@dataclass
class Q:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    queries: list[Q]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    w: int = 12
    h: int = 8
    min: float | None = None
    max: float | None = None
    stack: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit}
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend or "__auto",
            "range": not (q.instant or p.kind in ("stat", "table")),
            "instant": q.instant or p.kind in ("stat", "table"),
        }
        for i, q in enumerate(p.queries)
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
        "targets": targets,
    }
    if p.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 2,
            "fillOpacity": 10 if not p.stack else 40,
            "showPoints": "never",
            "spanNulls": True,
            "stacking": {"mode": "normal" if p.stack else "none", "group": "A"},
        }
        out["options"] = {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif p.kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        defaults["thresholds"] = p.extra.pop(
            "thresholds",
            {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        )
        out["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
        }
    elif p.kind == "table":
        out["options"] = {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]}
        out["transformations"] = [{"id": "labelsToFields", "options": {}}]
    out["fieldConfig"] = {"defaults": defaults, "overrides": []}
    out.update(p.extra)
    return out


def _layout(rows: list[tuple[str, list[Panel]]]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for title, group in rows:
        panels.append(
            {"id": pid, "type": "row", "title": title, "collapsed": False,
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []}
        )  # fmt: skip
        pid, y, x, row_h = pid + 1, y + 1, 0, 0
        for p in group:
            if x + p.w > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel(p, pid, x, y))
            pid, x, row_h = pid + 1, x + p.w, max(row_h, p.h)
        y += row_h
    return panels


def _var(name: str, label: str, metric: str, label_name: str) -> dict[str, Any]:
    query = f"label_values({metric}, {label_name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def dashboard(
    uid: str, title: str, description: str, rows: list[tuple[str, list[Panel]]],
    variables: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["abflow"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables or []},
        "annotations": {"list": []},
        "links": [
            {
                "title": "abflow dashboards",
                "type": "dashboards",
                "tags": ["abflow"],
                "asDropdown": True,
            }
        ],
        "panels": _layout(rows),
    }


def _or_zero(expr: str, by: str, base: str) -> str:
    """``expr`` with a 0 for every group of ``base`` that it lacks (a ratio of errors
    is 0, not absent, while there are none)."""
    return f"({expr} or sum by ({by}) ({base}) * 0)"


# ------------------------------------------------------------------------ dashboards


def services() -> dict[str, Any]:
    sel = 'service=~"$service"'
    total = f"sum by (service) (rate(http_requests_total{{{sel}}}[{R}]))"
    five = f'sum by (service) (rate(http_requests_total{{{sel}, status=~"5.."}}[{R}]))'
    four = f'sum by (service) (rate(http_requests_total{{{sel}, status=~"4.."}}[{R}]))'
    base = f"rate(http_requests_total{{{sel}}}[{R}])"
    lat = f"sum by (service, le) (rate(http_request_duration_seconds_bucket{{{sel}}}[{R}]))"
    busy = f'{sel}, route!~"/health.*|/metrics"'
    return dashboard(
        "abflow-services",
        "abflow · Services",
        "Request rate, errors and latency of every HTTP service (shared.http middleware), and which targets are up.",
        [
            (
                "Targets",
                [
                    Panel(
                        "Scrape targets up",
                        [Q(f'up{{job=~"{SERVICES}"}}', "{{job}}")],
                        kind="stat",
                        w=24,
                        h=4,
                        description="1 when Prometheus scraped the service's /metrics at the last attempt.",
                        extra={
                            "thresholds": {
                                "mode": "absolute",
                                "steps": [
                                    {"color": "red", "value": None},
                                    {"color": "green", "value": 1},
                                ],
                            }
                        },
                    ),
                ],
            ),
            (
                "Traffic",
                [
                    Panel(
                        "Request rate by service",
                        [Q(total, "{{service}}")],
                        unit="reqps",
                        description="HTTP requests per second (http_requests_total).",
                    ),
                    Panel(
                        "Request rate by status class",
                        [
                            Q(
                                f'sum by (service, class) (label_replace(rate(http_requests_total{{{sel}}}[{R}]), "class", "${{1}}xx", "status", "(.).."))',
                                "{{service}} {{class}}",
                            )
                        ],
                        unit="reqps",
                        stack=True,
                    ),
                    Panel(
                        "Server error ratio (5xx)",
                        [Q(f"{_or_zero(five, 'service', base)} / {total}", "{{service}}")],
                        unit="percentunit",
                        min=0,
                        description="Share of requests answered 5xx (0 while there are none).",
                    ),
                    Panel(
                        "Client error ratio (4xx)",
                        [Q(f"{_or_zero(four, 'service', base)} / {total}", "{{service}}")],
                        unit="percentunit",
                        min=0,
                        description="Share of requests answered 4xx: validation errors, unknown ids, illegal transitions (409).",
                    ),
                ],
            ),
            (
                "Latency",
                [
                    Panel(
                        "Latency P50 / P95 / P99 by service",
                        [
                            Q(f"histogram_quantile(0.5, {lat})", "{{service}} p50"),
                            Q(f"histogram_quantile(0.95, {lat})", "{{service}} p95"),
                            Q(f"histogram_quantile(0.99, {lat})", "{{service}} p99"),
                        ],
                        unit="s",
                        w=24,
                    ),
                    Panel(
                        "P95 latency of the busiest routes",
                        [
                            Q(
                                "histogram_quantile(0.95, sum by (service, route, le) "
                                f"(rate(http_request_duration_seconds_bucket{{{busy}}}[{R}])))",
                                "{{service}} {{route}}",
                            )
                        ],
                        unit="s",
                    ),
                    Panel(
                        "Request rate of the busiest routes",
                        [
                            Q(
                                f"topk(10, sum by (service, method, route) (rate(http_requests_total{{{sel}}}[{R}])))",
                                "{{service}} {{method}} {{route}}",
                            )
                        ],
                        unit="reqps",
                    ),
                ],
            ),
        ],
        [_var("service", "Service", "http_requests_total", "service")],
    )


def assignment() -> dict[str, Any]:
    exp = 'experiment=~"$experiment"'
    return dashboard(
        "abflow-assignment",
        "abflow · Assignment and exposures",
        "Variant assignments served from the in-memory snapshot, exposure events and the config snapshot (assignment service).",
        [
            (
                "Assignments",
                [
                    Panel(
                        "Assignments by experiment and variant",
                        [
                            Q(
                                f'sum by (experiment, variant) (rate(assignment_assignments_total{{experiment!="", {exp}}}[{R}]))',
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="ops",
                        stack=True,
                        description="Assignments per second that placed a unit in an experiment arm.",
                    ),
                    Panel(
                        "Assignment split within each experiment",
                        [
                            Q(
                                f'sum by (experiment, variant) (rate(assignment_assignments_total{{experiment!="", {exp}}}[{R}])) '
                                f'/ on (experiment) group_left sum by (experiment) (rate(assignment_assignments_total{{experiment!="", {exp}}}[{R}]))',
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="percentunit",
                        min=0,
                        max=1,
                        description="Share of each variant among its experiment's assignments: compare with the configured weights.",
                    ),
                    Panel(
                        "Assignments by reason",
                        [
                            Q(
                                f"sum by (reason) (rate(assignment_assignments_total[{R}]))",
                                "{{reason}}",
                            )
                        ],
                        unit="ops",
                        stack=True,
                    ),
                    Panel(
                        "POST /api/v1/assign latency",
                        [
                            Q(
                                f'histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{{service="assignment", route="/api/v1/assign"}}[{R}])))',
                                "p50",
                            ),
                            Q(
                                f'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{service="assignment", route="/api/v1/assign"}}[{R}])))',
                                "p99",
                            ),
                        ],
                        unit="s",
                    ),
                ],
            ),
            (
                "Exposures",
                [
                    Panel(
                        "Exposures sent and deduplicated",
                        [
                            Q(f"sum(rate(assignment_exposures_sent_total[{R}]))", "sent to Kafka"),
                            Q(
                                f"sum(rate(assignment_exposures_deduplicated_total[{R}]))",
                                "deduplicated",
                            ),
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Exposures dropped by reason",
                        [
                            Q(
                                f"sum by (reason) (rate(assignment_exposures_dropped_total[{R}]))",
                                "{{reason}}",
                            )
                        ],
                        unit="ops",
                        description="buffer_full: the bounded buffer was full (a request never waits); send_failed: Kafka refused.",
                    ),
                    Panel(
                        "Exposure buffer depth",
                        [
                            Q("sum(assignment_exposure_buffer_depth)", "depth"),
                            Q("sum(assignment_exposure_buffer_capacity)", "capacity"),
                        ],
                        unit="short",
                    ),
                ],
            ),
            (
                "Config snapshot",
                [
                    Panel(
                        "Snapshot age",
                        [Q("max by (instance) (assignment_snapshot_age_seconds)", "{{instance}}")],
                        unit="s",
                        description="Seconds since the replica last confirmed its snapshot caught up with the config topic.",
                    ),
                    Panel(
                        "Config revision served by schema",
                        [Q("max by (schema) (assignment_snapshot_revision)", "{{schema}}")],
                        unit="short",
                    ),
                ],
            ),
        ],
        [_var("experiment", "Experiment", "assignment_assignments_total", "experiment")],
    )


def aggregator() -> dict[str, Any]:
    return dashboard(
        "abflow-aggregator",
        "abflow · Aggregator",
        "Faust aggregator workers: throughput by outcome, consumer lag, dead letters, PostgreSQL sink latency and rows written.",
        [
            (
                "Throughput",
                [
                    Panel(
                        "Events by topic and outcome",
                        [
                            Q(
                                f"sum by (topic, outcome) (rate(abflow_aggregator_events_total[{R}]))",
                                "{{topic}} {{outcome}}",
                            )
                        ],
                        unit="ops",
                        description="counted: applied once; duplicate: an execution id already counted; replay_skipped: below the committed offset; dead_letter: invalid.",
                    ),
                    Panel(
                        "Consumer lag by topic",
                        [Q("sum by (topic) (abflow_aggregator_consumer_lag)", "{{topic}}")],
                        unit="short",
                        description="Records between the position committed in PostgreSQL and the partitions' high-water marks.",
                    ),
                    Panel(
                        "Freshness (record timestamp to visible in PostgreSQL)",
                        [
                            Q(
                                f"histogram_quantile(0.5, sum by (le) (rate(abflow_aggregator_freshness_seconds_bucket[{R}])))",
                                "p50",
                            ),
                            Q(
                                f"histogram_quantile(0.95, sum by (le) (rate(abflow_aggregator_freshness_seconds_bucket[{R}])))",
                                "p95",
                            ),
                        ],
                        unit="s",
                    ),
                    Panel(
                        "Pending records and assigned partitions",
                        [
                            Q("sum(abflow_aggregator_pending_records)", "pending records"),
                            Q("sum(abflow_aggregator_assigned_partitions)", "assigned partitions"),
                        ],
                        unit="short",
                    ),
                ],
            ),
            (
                "Dead letters",
                [
                    Panel(
                        "Dead-letter rate by topic",
                        [
                            Q(
                                f'sum by (topic) (rate(abflow_aggregator_events_total{{outcome="dead_letter"}}[{R}]))',
                                "{{topic}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Panel(
                        "Dead letters by reason (last hour)",
                        [
                            Q(
                                "sum by (topic, reason) (increase(abflow_aggregator_dead_letters_total[1h]))",
                                "{{topic}} {{reason}}",
                            )
                        ],
                        unit="short",
                        description="Invalid records sent to the dead-letter topic, by reason code.",
                    ),
                ],
            ),
            (
                "PostgreSQL sink",
                [
                    Panel(
                        "Sink latency by kind",
                        [
                            Q(
                                f"histogram_quantile(0.5, sum by (kind, le) (rate(abflow_aggregator_sink_seconds_bucket[{R}])))",
                                "{{kind}} p50",
                            ),
                            Q(
                                f"histogram_quantile(0.95, sum by (kind, le) (rate(abflow_aggregator_sink_seconds_bucket[{R}])))",
                                "{{kind}} p95",
                            ),
                        ],
                        unit="s",
                        description="Duration of one flush transaction.",
                    ),
                    Panel(
                        "Rows written by table",
                        [
                            Q(
                                f"sum by (table) (rate(abflow_aggregator_rows_written_total[{R}]))",
                                "{{table}}",
                            )
                        ],
                        unit="ops",
                        stack=True,
                    ),
                    Panel(
                        "Flushes by kind and result",
                        [
                            Q(
                                f"sum by (kind, result) (rate(abflow_aggregator_flushes_total[{R}]))",
                                "{{kind}} {{result}}",
                            )
                        ],
                        unit="ops",
                        description="ok; stale: another worker committed first (state reloaded); error: rolled back.",
                    ),
                ],
            ),
        ],
    )


def experiments() -> dict[str, Any]:
    sel = 'experiment=~"$experiment"'
    return dashboard(
        "abflow-experiments",
        "abflow · Experiments by variant",
        "Per-variant success rate and execution time of the running and paused experiments "
        "(gauges of the analysis service, the same numbers as the console), with the assignment split.",
        [
            (
                "Per variant",
                [
                    Panel(
                        "Success rate by variant",
                        [
                            Q(
                                f"max by (experiment, variant) (abflow_analysis_variant_success_rate{{{sel}}})",
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="percentunit",
                        description="Successful / all executions of the arm since the experiment started.",
                    ),
                    Panel(
                        "Mean execution time by variant",
                        [
                            Q(
                                f"max by (experiment, variant) (abflow_analysis_variant_execution_time_mean_ms{{{sel}}})",
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="ms",
                    ),
                    Panel(
                        "Executions by variant",
                        [
                            Q(
                                f"max by (experiment, variant) (abflow_analysis_variant_executions{{{sel}}})",
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="short",
                        description="Executions counted for the arm (cumulative).",
                    ),
                    Panel(
                        "Execution rate by variant",
                        [
                            Q(
                                f"max by (experiment, variant) (deriv(abflow_analysis_variant_executions{{{sel}}}[5m]))",
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="ops",
                        description="Growth of the executions counted per arm (per second).",
                    ),
                    Panel(
                        "Assignment rate by variant",
                        [
                            Q(
                                f'sum by (experiment, variant) (rate(assignment_assignments_total{{experiment!="", {sel}}}[{R}]))',
                                "{{experiment}} · {{variant}}",
                            )
                        ],
                        unit="ops",
                        w=24,
                    ),
                ],
            ),
        ],
        [_var("experiment", "Experiment", "abflow_analysis_variant_executions", "experiment")],
    )


DASHBOARDS = {
    "abflow-services.json": services,
    "abflow-assignment.json": assignment,
    "abflow-aggregator.json": aggregator,
    "abflow-experiments.json": experiments,
}


def render_all() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(path)
    if stale:
        print(
            f"error: stale dashboards {', '.join(stale)}: run python3 {Path(__file__).name}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
