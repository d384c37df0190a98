// The Experiments page: status filter, a card per experiment (progress, comparison,
// significance after correction, SRM, winner, lifecycle actions) and, on demand, the
// variant details with the forest plot.

import { createClient, errorBox, loadConfig, mainElement, setStatus, startRefresh, updatedNow } from "./app.js";
import { h, replace, svg } from "./dom.js";
import {
  DASH,
  fmtCount,
  fmtDateTime,
  fmtDays,
  fmtInterval,
  fmtLift,
  fmtMetricDelta,
  fmtMetricValue,
  fmtP,
  fmtPct,
  fmtPercent,
  effectTone,
  isNum,
  metricLabel,
  recommendation,
  statusLabel,
} from "./format.js";
import { STATUS_FILTERS, actionDone, actionLabel, allowedActions, byStatus } from "./lifecycle.js";
import { forestGeometry, forestRows, forestSvg } from "./plots.js";

const config = loadConfig();
const api = createClient(config);

const state = {
  filter: initialFilter(),
  rows: [],
  counts: null,
  loaded: false,
  loadError: null,
  expanded: new Set(),
  details: new Map(), // id -> {result} | {error}
  busy: new Set(),
  errors: new Map(), // id -> {action, error}
  notices: new Map(), // id -> text
  focusHash: location.hash.startsWith("#experiment-") ? location.hash.slice(1) : null,
};

function initialFilter() {
  const s = new URLSearchParams(location.search).get("status");
  return STATUS_FILTERS.includes(s) ? s : "all";
}

let listNode;
let filterNode;

function build() {
  const main = mainElement();
  filterNode = h("div", { class: "filters", role: "group", "aria-label": "Status filter" });
  listNode = h("div", { id: "experiment-list", class: "cards", "aria-live": "polite" });
  main.append(
    h(
      "div",
      { class: "toolbar" },
      h("h1", {}, "Experiments"),
      filterNode,
      h("button", { class: "ghost", id: "refresh", type: "button", onclick: () => reload() }, "Refresh"),
    ),
    listNode,
  );
}

function renderFilters() {
  replace(
    filterNode,
    STATUS_FILTERS.map((f) => {
      const count = f === "all" ? state.counts?.total : state.counts?.by[f];
      return h(
        "button",
        {
          type: "button",
          class: `filter${state.filter === f ? " active" : ""}`,
          "data-filter": f,
          "aria-pressed": state.filter === f ? "true" : "false",
          onclick: () => setFilter(f),
        },
        statusLabel(f),
        isNum(count) ? h("span", { class: "count" }, String(count)) : null,
      );
    }),
  );
}

function setFilter(f) {
  state.filter = f;
  const url = new URL(location.href);
  if (f === "all") url.searchParams.delete("status");
  else url.searchParams.set("status", f);
  url.hash = "";
  history.replaceState(null, "", url);
  renderFilters();
  reload();
}

// --------------------------------------------------------------------------- data

async function reload() {
  try {
    const [statuses, stats] = await Promise.all([
      api.experimentStatuses(state.filter),
      api.versionStats().catch(() => null),
    ]);
    state.rows = byStatus(statuses.items ?? []);
    state.loadError = null;
    if (stats) {
      state.counts = { total: stats.total_experiments, by: stats.experiments_by_status ?? {} };
    }
    state.loaded = true;
    await Promise.all([...state.expanded].map((id) => loadDetails(id)));
    updatedNow();
  } catch (err) {
    state.loadError = err;
    state.loaded = true;
    setStatus(`API error: ${err.message}`, "error");
  }
  render();
}

async function loadDetails(id) {
  try {
    state.details.set(id, { result: await api.experimentStatus(id) });
  } catch (err) {
    state.details.set(id, { error: err });
  }
}

async function toggleDetails(id) {
  if (state.expanded.has(id)) {
    state.expanded.delete(id);
    render();
    return;
  }
  state.expanded.add(id);
  if (!state.details.has(id)) {
    render();
    await loadDetails(id);
  }
  render();
}

async function runAction(row, action) {
  const id = row.experiment_id;
  state.busy.add(id);
  state.errors.delete(id);
  state.notices.delete(id);
  render();
  try {
    const out = await api.experimentAction(id, action);
    state.notices.set(id, `Experiment ${actionDone(action)}: status is now ${out?.status ?? "updated"}.`);
  } catch (err) {
    state.errors.set(id, { action, error: err });
  } finally {
    state.busy.delete(id);
  }
  if (state.details.has(id)) await loadDetails(id);
  await reload();
}

// --------------------------------------------------------------------------- rendering

function render() {
  renderFilters();
  if (!state.loaded) return;
  if (state.loadError) {
    replace(listNode, errorBox(state.loadError, "Could not load the experiments:"));
    return;
  }
  if (!state.rows.length) {
    replace(
      listNode,
      h("p", { class: "empty" }, state.filter === "all" ? "No experiments yet." : `No ${state.filter} experiments.`),
    );
    return;
  }
  replace(listNode, state.rows.map(card));
  if (state.focusHash) {
    const target = document.getElementById(state.focusHash);
    state.focusHash = null;
    if (target) {
      target.classList.add("focused");
      target.scrollIntoView({ block: "start" });
    }
  }
}

function statusBadge(status) {
  return h("span", { class: `badge status status-${status}`, "data-role": "status" }, statusLabel(status));
}

function card(row) {
  const id = row.experiment_id;
  const winner = row.winner_variant_id;
  const classes = ["experiment-card", `status-${row.status}`];
  if (winner) classes.push("has-winner");
  if (row.srm_mismatch) classes.push("srm");
  if (state.expanded.has(id)) classes.push("expanded");
  return h(
    "article",
    {
      class: classes.join(" "),
      id: `experiment-${id}`,
      "data-experiment-id": id,
      "data-experiment-key": row.experiment_key,
      "data-status": row.status,
    },
    h(
      "header",
      { class: "card-head" },
      h("div", { class: "title" }, h("h2", {}, row.experiment_name), h("code", { class: "key" }, row.experiment_key)),
      h(
        "div",
        { class: "badges" },
        statusBadge(row.status),
        winner
          ? h(
              "span",
              { class: "badge winner", title: row.winner_source === "recorded" ? "Recorded when completed" : "Current analysis" },
              `★ Winner: ${row.winner_variant_key ?? winner}`,
            )
          : null,
        row.srm_mismatch ? h("span", { class: "badge warn" }, "SRM") : null,
      ),
    ),
    h(
      "p",
      { class: "meta" },
      `Primary metric: ${metricLabel(row.primary_metric)}`,
      ` · ${row.started_at ? `started ${fmtDateTime(row.started_at)}` : "not started"}`,
      row.ended_at ? ` · ended ${fmtDateTime(row.ended_at)}` : "",
      ` · ${fmtCount(row.total_executions)} executions · ${fmtCount(row.exposed_units)} units exposed`,
      row.sequential_testing ? " · sequential testing" : "",
    ),
    row.srm_mismatch ? srmWarning(row) : null,
    progress(row),
    comparison(row),
    headline(row),
    actions(row),
    details(row),
  );
}

function srmWarning(row) {
  return h(
    "div",
    { class: "srm-warning", role: "alert" },
    h("strong", {}, "Sample ratio mismatch. "),
    `The exposed units do not match the configured split (χ² p = ${fmtP(row.srm_p_value)} < 0.001): `,
    "assignment or logging may be broken, so the results are not trustworthy until the cause is found.",
  );
}

function progress(row) {
  const pct = isNum(row.progress_percent) ? Math.max(0, Math.min(100, row.progress_percent)) : 0;
  const minArm = Math.min(...(row.variants ?? []).map((v) => v.sample_size ?? 0));
  const label = row.required_n_per_arm
    ? `${fmtPct(pct)} of the required sample size (${fmtCount(Number.isFinite(minArm) ? minArm : 0)} of ${fmtCount(row.required_n_per_arm)} per arm)`
    : "No sample size target";
  return h(
    "div",
    { class: "progress-block" },
    h(
      "div",
      { class: "progress-label" },
      h("span", {}, label),
      row.status === "running" && isNum(row.days_remaining) && pct < 100
        ? h("span", { class: "eta" }, `≈ ${fmtDays(row.days_remaining)} to go`)
        : null,
    ),
    h(
      "div",
      {
        class: "progress",
        role: "progressbar",
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": pct.toFixed(1),
        "aria-label": "Progress toward the required sample size",
      },
      h("div", { class: `progress-fill${pct >= 100 ? " done" : ""}`, style: `width: ${pct.toFixed(1)}%` }),
    ),
  );
}

function comparison(row) {
  const metric = row.primary_metric;
  const values = (row.variants ?? []).map((v) => v.primary_value).filter(isNum);
  const max = metric === "success_rate" ? 1 : Math.max(...values, 0) || 1;
  return h(
    "div",
    { class: "comparison" },
    h("h3", {}, `${metricLabel(metric)} by variant`),
    h(
      "ul",
      { class: "variant-bars" },
      (row.variants ?? []).map((v) =>
        h(
          "li",
          {
            class: `variant-bar${v.is_winner ? " winner" : ""}${v.is_control ? " control" : ""}`,
            "data-variant-key": v.variant_key ?? "",
          },
          h(
            "span",
            { class: "variant-name" },
            v.variant_key ?? v.variant_id,
            v.is_control ? h("span", { class: "tag" }, "control") : null,
            v.is_winner ? h("span", { class: "tag winner" }, "winner") : null,
          ),
          h(
            "span",
            { class: "bar-track" },
            h("span", {
              class: "bar-fill",
              style: `width: ${isNum(v.primary_value) ? Math.max(0, Math.min(100, (100 * v.primary_value) / max)).toFixed(1) : 0}%`,
            }),
          ),
          h("span", { class: "variant-value", "data-metric": metric }, fmtMetricValue(metric, v.primary_value)),
          h("span", { class: "variant-n" }, `n = ${fmtCount(v.sample_size)} · ${fmtPct(v.traffic_percentage)} traffic`),
        ),
      ),
    ),
  );
}

function significanceBadge(result) {
  if (!result || result.error_code) {
    return h("span", { class: "badge muted sig" }, result?.error_code ? result.error_code.replace(/_/g, " ") : "no result");
  }
  const tone = effectTone(result);
  const text = result.is_significant
    ? tone === "better"
      ? "Significant improvement"
      : tone === "worse"
        ? "Significant regression"
        : "Significant"
    : "Not significant";
  return h("span", { class: `badge sig tone-${tone}`, "data-significant": String(Boolean(result.is_significant)) }, text);
}

function pText(p) {
  const text = fmtP(p);
  return text.startsWith("<") ? `p (Holm-adjusted) ${text}` : `p (Holm-adjusted) = ${text}`;
}

function headline(row) {
  const rec = recommendation(row.recommendation);
  const hd = row.headline;
  const usable = hd && !hd.error_code && isNum(hd.difference);
  return h(
    "div",
    { class: "headline" },
    usable
      ? h(
          "p",
          {},
          h("strong", {}, `${hd.variant_key ?? "treatment"} vs control: `),
          h("span", { class: "effect" }, fmtMetricDelta(hd.metric, hd.difference)),
          ` (${fmtLift(hd.relative_lift)}; CI ${fmtInterval(hd.metric, hd.ci_low, hd.ci_high)})`,
          " · ",
          h("span", { class: "p-adjusted" }, pText(hd.p_value_adjusted)),
          " ",
          significanceBadge(hd),
        )
      : h(
          "p",
          { class: "muted no-result" },
          hd?.error_code
            ? `${hd.variant_key ?? "treatment"} vs control: no result yet (${hd.error_code.replace(/_/g, " ")}).`
            : "No comparison yet: the experiment needs a control and a treatment with data.",
        ),
    h(
      "p",
      { class: "recommendation" },
      "Recommendation: ",
      h("span", { class: `badge rec tone-${rec.tone}`, "data-recommendation": row.recommendation }, rec.label),
    ),
  );
}

function actions(row) {
  const id = row.experiment_id;
  const busy = state.busy.has(id);
  const err = state.errors.get(id);
  const notice = state.notices.get(id);
  const allowed = allowedActions(row.status);
  return h(
    "div",
    { class: "actions" },
    h(
      "div",
      { class: "action-buttons" },
      allowed.map((a) =>
        h(
          "button",
          {
            type: "button",
            class: `action action-${a}`,
            "data-action": a,
            disabled: busy,
            onclick: () => runAction(row, a),
          },
          actionLabel(a),
        ),
      ),
      allowed.length ? null : h("span", { class: "muted" }, "Final status: no further actions."),
      h(
        "button",
        {
          type: "button",
          class: "ghost details-toggle",
          "aria-expanded": state.expanded.has(id) ? "true" : "false",
          "aria-controls": `details-${id}`,
          onclick: () => toggleDetails(id),
        },
        state.expanded.has(id) ? "Hide variant details" : "Variant details",
      ),
    ),
    err ? h("div", { class: "action-error" }, errorBox(err.error, `Could not ${err.action}:`)) : null,
    notice ? h("p", { class: "action-notice", role: "status" }, notice) : null,
  );
}

// --------------------------------------------------------------------------- details

function details(row) {
  const id = row.experiment_id;
  if (!state.expanded.has(id)) return null;
  const d = state.details.get(id);
  const box = h("div", { class: "details", id: `details-${id}` });
  if (!d) return replace(box, h("p", { class: "loading" }, "Loading the analysis…"));
  if (d.error) return replace(box, errorBox(d.error, "Could not load the analysis:"));
  const r = d.result;
  return replace(box, variantTable(r), comparisonTable(r), forest(r), srmDetail(r), analysisNote(r));
}

function variantTable(r) {
  return h(
    "div",
    { class: "table-wrap" },
    h("h3", {}, "Variants"),
    h(
      "table",
      { class: "variants-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Variant", "Traffic", "Executions", "Units exposed", "Success rate", "Mean time", "Mean risk", "Toward target"].map((c) =>
            h("th", { scope: "col" }, c),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        r.variants.map((v) =>
          h(
            "tr",
            { class: `${v.is_winner ? "winner" : ""}${v.is_control ? " control" : ""}`.trim(), "data-variant-key": v.variant_key ?? "" },
            h(
              "th",
              { scope: "row" },
              v.variant_key ?? v.variant_id,
              v.variant_name ? h("span", { class: "sub" }, v.variant_name) : null,
              v.is_control ? h("span", { class: "tag" }, "control") : null,
              v.is_winner ? h("span", { class: "tag winner" }, "★ winner") : null,
            ),
            h("td", {}, fmtPct(v.traffic_percentage)),
            h("td", {}, fmtCount(v.sample_size)),
            h("td", {}, fmtCount(v.exposed_units)),
            h("td", { "data-metric": "success_rate" }, fmtPercent(v.summary?.success_rate?.mean)),
            h("td", { "data-metric": "execution_time" }, fmtMetricValue("execution_time", v.summary?.execution_time?.mean)),
            h("td", { "data-metric": "risk_score" }, fmtMetricValue("risk_score", v.summary?.risk_score?.mean)),
            h("td", {}, fmtPct(v.completion_percent)),
          ),
        ),
      ),
    ),
  );
}

function effectSizeName(name) {
  return { cohens_d: "Cohen's d", cohens_h: "Cohen's h" }[name] ?? name ?? "effect";
}

function comparisonTable(r) {
  const rows = [];
  for (const v of r.variants) {
    if (v.is_control) continue;
    for (const m of r.metrics) {
      const c = v.metrics?.[m];
      if (!c) continue;
      rows.push(
        h(
          "tr",
          { class: `tone-${effectTone(c)}${m === r.primary_metric ? " primary" : ""}`, "data-variant-key": v.variant_key ?? "", "data-metric": m },
          h("th", { scope: "row" }, v.variant_key ?? v.variant_id),
          h("td", {}, metricLabel(m), m === r.primary_metric ? h("span", { class: "tag" }, "primary") : null),
          h("td", {}, fmtMetricValue(m, c.baseline?.mean)),
          h("td", {}, fmtMetricValue(m, c.comparison?.mean)),
          h("td", {}, fmtMetricDelta(m, c.difference), h("span", { class: "sub" }, fmtInterval(m, c.ci_low, c.ci_high))),
          h("td", {}, fmtLift(c.relative_lift)),
          h("td", {}, fmtP(c.p_value)),
          h("td", { class: "p-adjusted" }, fmtP(c.p_value_adjusted)),
          h("td", {}, isNum(c.effect_size) ? `${effectSizeName(c.effect_size_name)} = ${c.effect_size.toFixed(3)}` : DASH),
          h("td", {}, significanceBadge(c)),
        ),
      );
    }
  }
  if (!rows.length) return h("p", { class: "muted" }, "No treatment comparisons yet.");
  return h(
    "div",
    { class: "table-wrap" },
    h("h3", {}, `Against control (${Math.round(r.confidence_level * 100)}% CI; p-values adjusted by ${r.multiple_comparison_correction === "holm" ? "Holm" : r.multiple_comparison_correction})`),
    h(
      "table",
      { class: "comparison-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Treatment", "Metric", "Control", "Treatment", "Difference (CI)", "Lift", "p", "p (Holm)", "Effect size", "Verdict"].map((c) =>
            h("th", { scope: "col" }, c),
          ),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function forest(r) {
  const rows = forestRows(r);
  if (!rows.length) return null;
  const width = Math.max(560, Math.min(1100, (listNode?.clientWidth ?? 760) - 60));
  const geometry = forestGeometry(rows, { width, labelWidth: 210, valueWidth: 170 });
  return h(
    "figure",
    { class: "forest" },
    h("figcaption", {}, "Effect of each metric against control: relative lift with its confidence interval (green: significant improvement; red: significant regression)"),
    h("div", { class: "svg-scroll" }, svg(forestSvg(geometry))),
  );
}

function srmDetail(r) {
  if (!r.srm) return null;
  const s = r.srm;
  return h(
    "p",
    { class: `srm-detail${s.is_mismatch ? " mismatch" : ""}` },
    h("strong", {}, "Sample ratio check: "),
    `units observed ${s.observed.map((x) => fmtCount(x)).join(" / ")} vs expected ${s.expected.map((x) => fmtCount(x, 1)).join(" / ")}`,
    ` · χ² p = ${fmtP(s.p_value)} (flagged below ${s.threshold})`,
    s.is_mismatch ? " · MISMATCH" : " · OK",
  );
}

function analysisNote(r) {
  const p = r.progress;
  return h(
    "p",
    { class: "analysis-note muted" },
    `Target: ${fmtCount(p.required_n_per_arm)} per arm (${p.basis === "minimum_detectable_effect" ? "from the minimum detectable effect" : "min_sample_size"}); `,
    `slowest arm ${fmtCount(p.min_arm_n)}`,
    isNum(p.days_elapsed) ? ` after ${fmtDays(p.days_elapsed)}` : "",
    ` · α = ${r.alpha.toFixed(3)} · analysed ${fmtDateTime(r.analyzed_at)}`,
    r.data_updated_at ? ` · data updated ${fmtDateTime(r.data_updated_at)}` : "",
    r.warnings?.length ? ` · warnings: ${r.warnings.join(", ")}` : "",
  );
}

// --------------------------------------------------------------------------- start

build();
render();
reload();
startRefresh(() => {
  if (state.busy.size === 0) reload();
}, config.refreshSeconds);
