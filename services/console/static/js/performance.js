// The Performance dashboard: version-control statistics, a schema selector, metric
// cards (this period against the previous one), daily and weekly trend charts, the
// versions and variants of the schema, the A/B testing summary and quick links.

import { createClient, errorBox, loadConfig, mainElement, section, setStatus, startRefresh, updatedNow } from "./app.js";
import { h, replace, svg } from "./dom.js";
import {
  DASH,
  bucketLabel,
  fmtCount,
  fmtDateTime,
  fmtLift,
  fmtMetricDelta,
  fmtMs,
  fmtPct,
  fmtPercent,
  fmtRisk,
  isNum,
  metricLabel,
} from "./format.js";
import { barGeometry, barSvg } from "./plots.js";

const config = loadConfig();
const api = createClient(config);
const params = new URLSearchParams(location.search);

const PERIODS = [7, 30, 90];
const TREND_METRICS = {
  executions: { label: "Executions", value: (b) => b.executions, tick: (v) => fmtCount(v) },
  success_rate: { label: "Success rate", value: (b) => b.success_rate, tick: (v) => fmtPercent(v, 0) },
  avg_execution_time_ms: { label: "Mean execution time", value: (b) => b.avg_execution_time_ms, tick: (v) => fmtMs(v) },
  p95_execution_time_ms: { label: "P95 execution time", value: (b) => b.p95_execution_time_ms, tick: (v) => fmtMs(v) },
  avg_risk_score: { label: "Mean risk score", value: (b) => b.avg_risk_score, tick: (v) => fmtRisk(v) },
};

const state = {
  schemaId: params.get("schema"),
  periodDays: PERIODS.includes(Number(params.get("period"))) ? Number(params.get("period")) : 30,
  trendMetric: TREND_METRICS[params.get("trend")] ? params.get("trend") : "executions",
  stats: null,
  schemas: [],
  dashboard: null,
  summary: null,
  changes: {},
  daily: null,
  weekly: null,
  errors: {},
};

const nodes = {};

function build() {
  const main = mainElement();
  nodes.schemaSelect = h("select", { id: "schema-select", "aria-label": "Schema", onchange: (e) => selectSchema(e.target.value) });
  nodes.periodSelect = h(
    "select",
    { id: "period-select", "aria-label": "Period", onchange: (e) => setPeriod(Number(e.target.value)) },
    PERIODS.map((d) => h("option", { value: d, selected: d === state.periodDays }, `Last ${d} days`)),
  );
  nodes.trendSelect = h(
    "select",
    { id: "trend-metric", "aria-label": "Trend metric", onchange: (e) => setTrendMetric(e.target.value) },
    Object.entries(TREND_METRICS).map(([k, m]) => h("option", { value: k, selected: k === state.trendMetric }, m.label)),
  );
  nodes.stats = h("div", { class: "stat-tiles", id: "version-stats" });
  nodes.cards = h("div", { class: "metric-cards", id: "metric-cards" });
  nodes.daily = h("div", { class: "chart", id: "trend-daily" });
  nodes.weekly = h("div", { class: "chart", id: "trend-weekly" });
  nodes.versions = h("div", { id: "versions" });
  nodes.ab = h("div", { id: "ab-summary" });
  nodes.links = h("ul", { class: "quick-links", id: "quick-links" });
  main.append(
    h(
      "div",
      { class: "toolbar" },
      h("h1", {}, "Performance dashboard"),
      h("label", { class: "field" }, "Schema ", nodes.schemaSelect),
      h("label", { class: "field" }, "Period ", nodes.periodSelect),
      h("button", { class: "ghost", id: "refresh", type: "button", onclick: () => reloadAll() }, "Refresh"),
    ),
    section("Version control", { id: "version-control" }, nodes.stats),
    section("Schema performance", { id: "schema-performance" }, nodes.cards),
    section(
      "Trends",
      { id: "trends" },
      h("label", { class: "field" }, "Metric ", nodes.trendSelect),
      h("div", { class: "charts" }, nodes.daily, nodes.weekly),
    ),
    h(
      "div",
      { class: "two-col" },
      section("A/B testing", { id: "ab-testing" }, nodes.ab),
      section("Quick links", { id: "links" }, nodes.links),
    ),
    section("Versions and variants", { id: "versions-section" }, nodes.versions),
  );
  renderLinks();
}

function pushUrl() {
  const url = new URL(location.href);
  if (state.schemaId) url.searchParams.set("schema", state.schemaId);
  url.searchParams.set("period", String(state.periodDays));
  url.searchParams.set("trend", state.trendMetric);
  history.replaceState(null, "", url);
}

// --------------------------------------------------------------------------- data

async function settle(key, promise) {
  try {
    const value = await promise;
    delete state.errors[key];
    return value;
  } catch (err) {
    state.errors[key] = err;
    return null;
  }
}

async function reloadAll() {
  const [stats, schemas, dashboard] = await Promise.all([
    settle("stats", api.versionStats()),
    settle("schemas", api.schemas()),
    settle("dashboard", api.dashboardSummary(state.periodDays)),
  ]);
  state.stats = stats;
  state.dashboard = dashboard;
  state.schemas = schemas?.items ?? [];
  if (!state.schemas.some((s) => s.id === state.schemaId)) {
    const busiest = dashboard?.top_schemas?.find((t) => state.schemas.some((s) => s.id === t.schema_id));
    state.schemaId = busiest?.schema_id ?? state.schemas[0]?.id ?? null;
  }
  renderStats();
  renderSchemaSelect();
  renderAb();
  await reloadSchema();
  const failed = Object.entries(state.errors);
  if (failed.length) setStatus(`API error (${failed.map(([k]) => k).join(", ")}): ${failed[0][1].message}`, "error");
  else updatedNow();
}

async function reloadSchema() {
  const id = state.schemaId;
  pushUrl();
  if (!id) {
    state.summary = state.daily = state.weekly = null;
    state.changes = {};
    renderSchema();
    return;
  }
  const [summary, daily, weekly, sr, et, rs] = await Promise.all([
    settle("summary", api.schemaSummary(id, state.periodDays)),
    settle("daily", api.schemaTrends(id, "day", 14)),
    settle("weekly", api.schemaTrends(id, "week", 12)),
    settle("success_rate", api.metricComparison(id, "success_rate", state.periodDays)),
    settle("execution_time", api.metricComparison(id, "execution_time", state.periodDays)),
    settle("risk_score", api.metricComparison(id, "risk_score", state.periodDays)),
  ]);
  if (id !== state.schemaId) return; // another schema was selected meanwhile
  Object.assign(state, { summary, daily, weekly, changes: { success_rate: sr, execution_time: et, risk_score: rs } });
  renderSchema();
}

function selectSchema(id) {
  state.schemaId = id;
  reloadSchema();
}

function setPeriod(days) {
  state.periodDays = days;
  reloadAll();
}

function setTrendMetric(metric) {
  state.trendMetric = metric;
  pushUrl();
  renderTrends();
}

// --------------------------------------------------------------------------- rendering

function tile(label, value, sub, key) {
  return h(
    "div",
    { class: "tile", "data-stat": key },
    h("span", { class: "tile-label" }, label),
    h("span", { class: "tile-value" }, value),
    sub ? h("span", { class: "tile-sub" }, sub) : null,
  );
}

function byStatus(obj, order) {
  return order
    .filter((k) => obj && obj[k])
    .map((k) => `${obj[k]} ${k}`)
    .join(" · ");
}

function renderStats() {
  const s = state.stats;
  if (!s) {
    replace(nodes.stats, state.errors.stats ? errorBox(state.errors.stats, "Version statistics:") : h("p", { class: "loading" }, "Loading…"));
    return;
  }
  replace(
    nodes.stats,
    tile("Schemas", fmtCount(s.total_schemas), `${fmtCount(s.active_schemas)} active`, "schemas"),
    tile("Versions", fmtCount(s.total_versions), "published schema versions", "versions"),
    tile("Variants", fmtCount(s.total_variants), byStatus(s.variants_by_status, ["active", "draft", "paused", "archived"]) || "none", "variants"),
    tile(
      "Experiments",
      fmtCount(s.total_experiments),
      byStatus(s.experiments_by_status, ["running", "draft", "paused", "completed", "cancelled"]) || "none",
      "experiments",
    ),
    tile("Running experiments", fmtCount(s.running_experiments), "collecting data now", "running"),
  );
}

function renderSchemaSelect() {
  replace(
    nodes.schemaSelect,
    state.schemas.length
      ? state.schemas.map((s) => h("option", { value: s.id, selected: s.id === state.schemaId }, `${s.name} (${s.key})`))
      : h("option", { value: "" }, "No schemas"),
  );
}

function changeLine(metric, cmp) {
  if (!cmp) return null;
  const tone = cmp.trend === "improving" ? "better" : cmp.trend === "degrading" ? "worse" : "neutral";
  const text =
    cmp.trend === "insufficient_data"
      ? "not enough data in the previous period"
      : `${fmtMetricDelta(metric, cmp.change)} (${fmtLift(cmp.relative_change)}) vs previous ${state.periodDays} days · ${cmp.trend.replace(/_/g, " ")}`;
  return h("span", { class: `card-change tone-${tone}`, "data-trend": cmp.trend }, text);
}

function metricCard(key, label, value, sub, change) {
  return h(
    "div",
    { class: "metric-card", "data-card": key },
    h("span", { class: "card-label" }, label),
    h("span", { class: "card-value" }, value),
    sub ? h("span", { class: "card-sub" }, sub) : null,
    change,
  );
}

function renderCards() {
  const s = state.summary;
  if (!s) {
    const err = state.errors.summary;
    replace(nodes.cards, err ? errorBox(err, "Schema summary:") : h("p", { class: "muted" }, state.schemaId ? "Loading…" : "No schema selected."));
    return;
  }
  const t = s.totals;
  const prevN = state.changes.success_rate?.previous?.n;
  const execChange = isNum(prevN)
    ? h(
        "span",
        { class: "card-change tone-neutral" },
        `${fmtCount(prevN)} in the previous ${state.periodDays} days`,
      )
    : null;
  replace(
    nodes.cards,
    h(
      "p",
      { class: "schema-caption" },
      h("strong", {}, s.schema_name),
      ` · ${s.schema_key} · current version ${s.current_version ?? DASH} · ${fmtDateTime(s.period.start)} to ${fmtDateTime(s.period.end)}`,
    ),
    h(
      "div",
      { class: "cards-row" },
      metricCard("success_rate", "Success rate", fmtPercent(t.success_rate), `${fmtCount(t.successful_executions)} succeeded · ${fmtCount(t.failed_executions)} failed`, changeLine("success_rate", state.changes.success_rate)),
      metricCard("executions", "Executions", fmtCount(t.executions), `last ${state.periodDays} days`, execChange),
      metricCard("avg_execution_time", "Mean execution time", fmtMs(t.avg_execution_time_ms), `P50 ${fmtMs(t.p50_execution_time_ms)}`, changeLine("execution_time", state.changes.execution_time)),
      metricCard("p95_execution_time", "P95 execution time", fmtMs(t.p95_execution_time_ms), `P99 ${fmtMs(t.p99_execution_time_ms)}`, null),
      metricCard("risk_score", "Risk score", fmtRisk(t.avg_risk_score), `mean of ${fmtCount(t.risk_scored_executions)} scored executions`, changeLine("risk_score", state.changes.risk_score)),
    ),
  );
}

function chart(node, trends, key, title) {
  if (!trends) {
    const err = state.errors[key];
    replace(node, h("h3", {}, title), err ? errorBox(err) : h("p", { class: "muted" }, state.schemaId ? "Loading…" : "No schema selected."));
    return;
  }
  const m = TREND_METRICS[state.trendMetric];
  const points = trends.buckets.map((b) => ({
    label: bucketLabel(b.bucket_start, trends.granularity),
    value: m.value(b) ?? null,
    title: `${fmtDateTime(b.bucket_start)}: ${isNum(m.value(b)) ? m.tick(m.value(b)) : "no data"} (${fmtCount(b.executions)} executions)`,
  }));
  const geometry = barGeometry(points, {
    width: 560,
    height: 200,
    formatTick: m.tick,
    maxLabels: 7,
  });
  replace(node, h("h3", {}, title), svg(barSvg(geometry, `${m.label}, ${title.toLowerCase()}`)));
  node.dataset.metric = state.trendMetric;
  node.dataset.buckets = String(trends.buckets.length);
}

function renderTrends() {
  chart(nodes.daily, state.daily, "daily", "Daily (last 14 days)");
  chart(nodes.weekly, state.weekly, "weekly", "Weekly (last 12 weeks)");
}

function renderVersions() {
  const s = state.summary;
  if (!s) {
    replace(nodes.versions);
    return;
  }
  if (!s.versions.length) {
    replace(nodes.versions, h("p", { class: "muted" }, "No executions of this schema in the period."));
    return;
  }
  replace(
    nodes.versions,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "versions-table" },
        h(
          "thead",
          {},
          h("tr", {}, ["Version", "Variant", "Executions", "Success rate", "Mean time", "P95 time", "Mean risk"].map((c) => h("th", { scope: "col" }, c))),
        ),
        h(
          "tbody",
          {},
          s.versions.map((v) =>
            h(
              "tr",
              {},
              h("td", {}, `v${v.schema_version}`),
              h("td", {}, v.is_base_version ? h("span", { class: "muted" }, "base version") : v.variant_key ?? v.variant_id),
              h("td", {}, fmtCount(v.executions)),
              h("td", {}, fmtPercent(v.success_rate)),
              h("td", {}, fmtMs(v.avg_execution_time_ms)),
              h("td", {}, fmtMs(v.p95_execution_time_ms)),
              h("td", {}, fmtRisk(v.avg_risk_score)),
            ),
          ),
        ),
      ),
    ),
  );
}

function renderSchema() {
  renderCards();
  renderTrends();
  renderVersions();
}

function experimentLink(e) {
  return `/console/experiments?status=running#experiment-${encodeURIComponent(e.experiment_id)}`;
}

function renderAb() {
  const d = state.dashboard;
  if (!d) {
    replace(nodes.ab, state.errors.dashboard ? errorBox(state.errors.dashboard, "Dashboard summary:") : h("p", { class: "loading" }, "Loading…"));
    return;
  }
  const by = d.experiments.by_status ?? {};
  replace(
    nodes.ab,
    h(
      "p",
      { class: "ab-counts" },
      ["running", "draft", "paused", "completed", "cancelled"].map((s) =>
        h("a", { class: `badge status status-${s}`, href: `/console/experiments?status=${s}`, "data-status": s }, `${by[s] ?? 0} ${s}`),
      ),
    ),
    d.running_experiments.length
      ? h(
          "ul",
          { class: "running-list" },
          d.running_experiments.map((e) => {
            const pct = isNum(e.progress_percent) ? Math.max(0, Math.min(100, e.progress_percent)) : 0;
            return h(
              "li",
              { "data-experiment-id": e.experiment_id },
              h("a", { href: experimentLink(e) }, e.experiment_name),
              h("span", { class: "sub" }, ` ${e.schema_key} · ${metricLabel(e.primary_metric)} · ${fmtCount(e.total_executions)} executions`),
              h(
                "div",
                { class: "progress small", role: "progressbar", "aria-valuenow": pct.toFixed(1), "aria-valuemin": "0", "aria-valuemax": "100" },
                h("div", { class: "progress-fill", style: `width: ${pct.toFixed(1)}%` }),
              ),
              h("span", { class: "sub" }, `${fmtPct(pct)} of the required sample size`),
            );
          }),
        )
      : h("p", { class: "muted" }, "No experiment is running."),
    h("p", {}, h("a", { class: "button-link", href: "/console/experiments" }, "Open the experiments page →")),
  );
}

function renderLinks() {
  const links = config.links ?? {};
  const items = [
    ["Experiments", "/console/experiments"],
    ["Running experiments", "/console/experiments?status=running"],
    ["Draft experiments", "/console/experiments?status=draft"],
    ["API documentation", links.docs],
    ["Grafana dashboards", links.grafana],
    ["Prometheus", links.prometheus],
  ].filter(([, href]) => href);
  replace(nodes.links, items.map(([label, href]) => h("li", {}, h("a", { href }, label))));
}

// --------------------------------------------------------------------------- start

build();
reloadAll();
startRefresh(() => reloadAll(), config.refreshSeconds);
