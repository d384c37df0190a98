// Unit tests of services/console/static/js/plots.js: scales, ticks, forest plot and
// bar chart geometry (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  barGeometry,
  barSvg,
  forestGeometry,
  forestRows,
  forestSvg,
  linearScale,
  niceDomain,
  niceStep,
} from "../../../../services/console/static/js/plots.js";

function find(vnode, pred, out = []) {
  if (vnode && typeof vnode === "object") {
    if (pred(vnode)) out.push(vnode);
    for (const c of vnode.children ?? []) find(c, pred, out);
  }
  return out;
}

test("nice steps are 1, 2, 2.5 or 5 times a power of ten", () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(1, 4), 0.25);
  assert.equal(niceStep(37, 4), 10);
  assert.equal(niceStep(0.07, 5), 0.02);
  assert.equal(niceStep(0), 1);
});

test("nice domains contain the data and have ticks on step multiples", () => {
  const d = niceDomain(-3.2, 8.7, 4);
  assert.deepEqual([d.lo, d.hi, d.step], [-5, 10, 5]);
  assert.deepEqual(d.ticks, [-5, 0, 5, 10]);
  const flat = niceDomain(0, 0, 4);
  assert.ok(flat.lo < 0 && flat.hi > 0);
  const same = niceDomain(5, 5, 4);
  assert.ok(same.lo <= 2.5 && same.hi >= 7.5);
  assert.deepEqual(niceDomain(null, 1).ticks.length, 6);
});

test("a linear scale maps the domain onto the range", () => {
  const x = linearScale(-10, 10, 100, 300);
  assert.equal(x(-10), 100);
  assert.equal(x(0), 200);
  assert.equal(x(10), 300);
  assert.equal(linearScale(1, 1, 0, 50)(1), 0);
});

const RESULT = {
  primary_metric: "success_rate",
  metrics: ["success_rate", "execution_time"],
  variants: [
    { variant_key: "control", is_control: true, metrics: {} },
    {
      variant_key: "fast",
      is_control: false,
      metrics: {
        success_rate: { relative_lift: 0.065, lift_ci_low: 0.02, lift_ci_high: 0.11, is_significant: true, direction_good: true, p_value_adjusted: 0.005 },
        execution_time: { relative_lift: -0.18, lift_ci_low: -0.21, lift_ci_high: -0.15, is_significant: true, direction_good: true, p_value_adjusted: 0.0001 },
      },
    },
    {
      variant_key: "strict",
      is_control: false,
      metrics: {
        success_rate: { relative_lift: -0.04, lift_ci_low: -0.08, lift_ci_high: 0.005, is_significant: false, direction_good: false, p_value_adjusted: 0.08 },
        execution_time: { relative_lift: null, lift_ci_low: null, lift_ci_high: null, is_significant: false, direction_good: null, error_code: "insufficient_data" },
      },
    },
  ],
};

test("forest rows: one per treatment and metric, lifts in percent, control skipped", () => {
  const rows = forestRows(RESULT);
  assert.deepEqual(
    rows.map((r) => r.label),
    ["fast · Success rate", "fast · Execution time", "strict · Success rate", "strict · Execution time"],
  );
  assert.ok(Math.abs(rows[0].estimate - 6.5) < 1e-9);
  assert.ok(Math.abs(rows[1].low + 21) < 1e-9);
  assert.deepEqual(rows.map((r) => r.tone), ["better", "better", "neutral", "neutral"]);
  assert.deepEqual(rows.map((r) => r.primary), [true, false, true, false]);
  assert.equal(rows[3].estimate, null);
  assert.deepEqual(forestRows({}), []);
});

test("forest geometry: zero line, CIs and estimates on one axis", () => {
  const g = forestGeometry(forestRows(RESULT), { width: 600, labelWidth: 200, valueWidth: 100, rowHeight: 20, top: 10, bottom: 30 });
  assert.equal(g.height, 10 + 4 * 20 + 30);
  assert.deepEqual([g.plot.x0, g.plot.x1], [200, 500]);
  // domain -30..+20 (nice, contains -21 and +11): zero at 200 + 300 * 30/50
  assert.deepEqual([g.ticks[0].value, g.ticks.at(-1).value], [-30, 20]);
  assert.equal(g.zeroX, 380);
  const [fast, fastTime, strict, missing] = g.rows;
  assert.ok(fast.line.x1 > g.zeroX, "a CI above zero lies right of the zero line");
  assert.ok(fastTime.line.x2 < g.zeroX, "a CI below zero lies left of it");
  assert.ok(strict.line.x1 < g.zeroX && strict.line.x2 > g.zeroX, "a CI across zero crosses it");
  assert.ok(fast.line.x1 < fast.point.x && fast.point.x < fast.line.x2);
  assert.deepEqual(g.rows.map((r) => r.y), [20, 40, 60, 80]);
  assert.equal(missing.point, null);
  assert.equal(missing.line, null);
  assert.equal(missing.valueText, "n/a");
  assert.equal(fast.valueText, "+6.5% [+2.0%, +11.0%]");
  assert.equal(g.ticks.find((t) => t.value === 0).label, "0%");
  assert.equal(g.ticks.at(-1).label, "+20%");
});

test("forest geometry clamps huge intervals and marks them clipped", () => {
  const rows = [{ label: "x", estimate: 50, low: -900, high: 1200, tone: "neutral" }];
  const g = forestGeometry(rows, { maxAbs: 200 });
  const [r] = g.rows;
  assert.ok(r.clippedLow && r.clippedHigh);
  assert.equal(r.line.x1, g.plot.x0);
  assert.equal(r.line.x2, g.plot.x1);
});

test("forest SVG has a row group per row with tone classes and a zero line", () => {
  const svg = forestSvg(forestGeometry(forestRows(RESULT)));
  assert.equal(svg.tag, "svg");
  const rows = find(svg, (n) => n.tag === "g" && String(n.attrs.class).startsWith("forest-row"));
  assert.equal(rows.length, 4);
  assert.ok(rows[0].attrs.class.includes("tone-better") && rows[0].attrs.class.includes("primary"));
  assert.equal(find(svg, (n) => n.attrs.class === "zero").length, 1);
  assert.equal(find(svg, (n) => n.attrs.class === "ci").length, 3);
  assert.equal(find(svg, (n) => n.attrs.class === "estimate").length, 3);
});

test("bar geometry: zero-based bars, gaps for missing values, thinned labels", () => {
  const points = Array.from({ length: 14 }, (_, i) => ({ label: `d${i}`, value: i === 3 ? null : i * 10 }));
  const g = barGeometry(points, { width: 700, height: 200, left: 50, right: 10, top: 10, bottom: 20, maxLabels: 7 });
  assert.equal(g.bars.length, 14);
  assert.equal(g.axis.bottom, 180);
  assert.deepEqual([g.ticks[0].value, g.ticks.at(-1).value], [0, 150]);
  const zero = g.bars[0];
  assert.equal(zero.h, 0);
  assert.equal(zero.y, 180);
  const last = g.bars[13];
  assert.ok(Math.abs(last.y - (180 - (130 / 150) * 170)) < 0.1);
  assert.equal(g.bars[3].value, null);
  assert.equal(g.bars[3].h, 0);
  assert.ok(g.bars.every((b, i) => i === 0 || b.x > g.bars[i - 1].x));
  assert.deepEqual(g.bars.filter((b) => b.showLabel).map((b) => b.label), ["d1", "d3", "d5", "d7", "d9", "d11", "d13"]);
  assert.equal(g.empty, false);
});

test("an empty bar chart says so", () => {
  const g = barGeometry([{ label: "a", value: null }], {});
  assert.equal(g.empty, true);
  const texts = find(barSvg(g, "t"), (n) => n.attrs.class === "no-data");
  assert.equal(texts.length, 1);
});
