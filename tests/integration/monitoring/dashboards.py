"""Reading the provisioned Grafana dashboards: panels, PromQL targets, template
variables, and the metric names the queries use (shared by the file checks and the
live Prometheus test)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"

# Grafana's built-in interval variables, as the live test instantiates them
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included; rows themselves excluded."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def targets(dashboard: dict[str, Any]) -> list[Target]:
    return [
        Target(dashboard["title"], p.get("title", "?"), t.get("refId", "?"), t.get("expr", ""))
        for p in panels(dashboard)
        for t in p.get("targets", [])
    ]


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """Template variable name -> its query (``label_values(...)``)."""
    out: dict[str, str] = {}
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        out[v["name"]] = q.get("query", "") if isinstance(q, dict) else str(q or "")
    return out


def instantiate(expr: str, names: dict[str, str]) -> str:
    """``expr`` as Grafana would send it with every variable on "All" (``.+``)."""
    values = {**{n: ".+" for n in names}, **BUILTINS}
    for name in sorted(values, key=len, reverse=True):
        value = values[name]
        expr = expr.replace(f"${{{name}}}", value).replace(f"[[{name}]]", value)
        expr = re.sub(rf"\${re.escape(name)}\b", lambda _m, v=value: v, expr)
    return expr


def label_values_query(query: str) -> str:
    """``label_values(metric, label)`` as PromQL returning one series per value."""
    m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", query)
    if not m:
        raise ValueError(f"unsupported variable query {query!r}")
    return f"count by ({m.group(2)}) ({m.group(1)})"


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (best effort: strings, label matchers, ranges,
    grouping clauses and function calls removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)
    s = re.sub(r"\[[^\[\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        word = m.group(0)
        rest = s[m.end() :].lstrip()
        if word in _KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names
