// Unit tests of services/console/static/js/lifecycle.js (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { STATUS_FILTERS, actionDone, actionLabel, allowedActions, byStatus } from "../../../../services/console/static/js/lifecycle.js";

test("actions offered per status follow the control plane's transitions", () => {
  assert.deepEqual(allowedActions("draft"), ["start", "cancel"]);
  assert.deepEqual(allowedActions("running"), ["pause", "complete", "cancel"]);
  assert.deepEqual(allowedActions("paused"), ["resume", "complete", "cancel"]);
  assert.deepEqual(allowedActions("completed"), []);
  assert.deepEqual(allowedActions("cancelled"), []);
  assert.deepEqual(allowedActions("unknown"), []);
});

test("labels", () => {
  assert.equal(actionLabel("resume"), "Resume");
  assert.equal(actionDone("cancel"), "cancelled");
  assert.deepEqual(STATUS_FILTERS.slice(0, 5), ["all", "running", "draft", "paused", "completed"]);
});

test("cards sort active experiments first, keeping the API's order within a status", () => {
  const rows = ["completed", "running", "draft", "cancelled", "running", "paused", "weird"].map((status, i) => ({ status, i }));
  assert.deepEqual(
    byStatus(rows).map((r) => `${r.status}${r.i}`),
    ["running1", "running4", "paused5", "draft2", "completed0", "cancelled3", "weird6"],
  );
});
