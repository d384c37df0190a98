// Unit tests of services/console/static/js/format.js (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DASH,
  bucketLabel,
  effectTone,
  fmtCount,
  fmtDateTime,
  fmtDays,
  fmtInterval,
  fmtLift,
  fmtMetricDelta,
  fmtMetricValue,
  fmtMs,
  fmtP,
  fmtPct,
  fmtPercent,
  fmtRisk,
  metricLabel,
  recommendation,
  statusLabel,
} from "../../../../services/console/static/js/format.js";

test("counts get thousands separators; missing values a dash", () => {
  assert.equal(fmtCount(0), "0");
  assert.equal(fmtCount(999), "999");
  assert.equal(fmtCount(1234567), "1,234,567");
  assert.equal(fmtCount(-1234), "-1,234");
  assert.equal(fmtCount(1020.04, 1), "1,020.0");
  assert.equal(fmtCount(null), DASH);
  assert.equal(fmtCount(Number.NaN), DASH);
  assert.equal(fmtCount(undefined), DASH);
});

test("proportions and percentages", () => {
  assert.equal(fmtPercent(0.7943), "79.4%");
  assert.equal(fmtPercent(1), "100.0%");
  assert.equal(fmtPercent(0.5, 0), "50%");
  assert.equal(fmtPercent(null), DASH);
  assert.equal(fmtPct(62.04), "62%");
  assert.equal(fmtPct(33.333, 1), "33.3%");
});

test("durations scale from milliseconds to hours", () => {
  assert.equal(fmtMs(0.5), "0.50 ms");
  assert.equal(fmtMs(850), "850 ms");
  assert.equal(fmtMs(1530), "1.53 s");
  assert.equal(fmtMs(12500), "12.5 s");
  assert.equal(fmtMs(125000), "2.1 min");
  assert.equal(fmtMs(7200000), "2.0 h");
  assert.equal(fmtMs(-231), "-231 ms");
  assert.equal(fmtMs(undefined), DASH);
});

test("p-values: three decimals, tiny ones as < 0.001", () => {
  assert.equal(fmtP(0.0345), "0.035");
  assert.equal(fmtP(0.0004), "< 0.001");
  assert.equal(fmtP(0), "< 0.001");
  assert.equal(fmtP(0.9999), "1.000");
  assert.equal(fmtP(null), DASH);
});

test("signed lifts and metric differences use a true minus sign", () => {
  assert.equal(fmtLift(0.0523), "+5.2%");
  assert.equal(fmtLift(-0.1), "−10.0%");
  assert.equal(fmtLift(0), "0.0%");
  assert.equal(fmtMetricDelta("success_rate", 0.052), "+5.2 pp");
  assert.equal(fmtMetricDelta("success_rate", -0.031), "−3.1 pp");
  assert.equal(fmtMetricDelta("execution_time", -231.4), "−231 ms");
  assert.equal(fmtMetricDelta("execution_time", 1500), "+1.50 s");
  assert.equal(fmtMetricDelta("risk_score", 0.0021), "+0.002");
  assert.equal(fmtMetricDelta("risk_score", -0.0002), "0.000");
  assert.equal(fmtLift(-0.00001), "0.0%");
  assert.equal(fmtInterval("success_rate", -0.004, 0.066), "−0.4 pp to +6.6 pp");
  assert.equal(fmtInterval("success_rate", null, 0.066), DASH);
});

test("metric values in their unit", () => {
  assert.equal(fmtMetricValue("success_rate", 0.846), "84.6%");
  assert.equal(fmtMetricValue("execution_time", 1051.2), "1.05 s");
  assert.equal(fmtMetricValue("risk_score", 0.20234), "0.202");
  assert.equal(fmtRisk(null), DASH);
  assert.equal(metricLabel("execution_time"), "Execution time");
  assert.equal(metricLabel("custom_metric"), "custom metric");
});

test("recommendations and statuses read as words", () => {
  assert.deepEqual(recommendation("adopt_comparison"), { label: "Adopt treatment", tone: "good" });
  assert.deepEqual(recommendation("keep_baseline"), { label: "Keep baseline", tone: "bad" });
  assert.equal(recommendation("needs_more_data").label, "Needs more data");
  assert.equal(recommendation("something_new").label, "something new");
  assert.equal(statusLabel("running"), "Running");
  assert.equal(statusLabel(null), DASH);
});

test("times are shown in UTC", () => {
  assert.equal(fmtDateTime("2025-12-22T10:00:00Z"), "2025-12-22 10:00 UTC");
  assert.equal(fmtDateTime("2025-12-22T11:30:00+01:00"), "2025-12-22 10:30 UTC");
  assert.equal(fmtDateTime("not a date"), DASH);
  assert.equal(bucketLabel("2025-12-22T00:00:00Z", "day"), "12-22");
  assert.equal(bucketLabel("2025-12-22T00:00:00Z", "week"), "W 12-22");
  assert.equal(fmtDays(0.25), "6 h");
  assert.equal(fmtDays(3.24), "3.2 days");
});

test("effect tone: significant in the good or bad direction, else neutral", () => {
  assert.equal(effectTone({ is_significant: true, direction_good: true }), "better");
  assert.equal(effectTone({ is_significant: true, direction_good: false }), "worse");
  assert.equal(effectTone({ is_significant: false, direction_good: true }), "neutral");
  assert.equal(effectTone({ is_significant: true, direction_good: null }), "neutral");
  assert.equal(effectTone(null), "neutral");
});
