// Unit tests of services/console/static/js/api.js with a fake fetch (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiClient, ApiError, buildUrl, requestHeaders } from "../../../../services/console/static/js/api.js";

function fakeFetch(status, body, calls) {
  return async (url, init) => {
    calls.push({ url, init });
    return {
      ok: status >= 200 && status < 300,
      status,
      statusText: "X",
      json: async () => {
        if (body === undefined) throw new SyntaxError("no json");
        return body;
      },
    };
  };
}

test("urls join the base and drop empty query values", () => {
  assert.equal(buildUrl("", "/api/v1/x"), "/api/v1/x");
  assert.equal(buildUrl("http://gw:18080/", "/api/v1/x", { a: 1, b: null, c: "", d: "r s" }), "http://gw:18080/api/v1/x?a=1&d=r+s");
});

test("headers are built in one place: JSON, actor; never a key (the proxy adds it)", () => {
  assert.deepEqual(requestHeaders({}), { Accept: "application/json" });
  assert.deepEqual(requestHeaders({ actor: "console", apiKey: "k1" }, { json: true }), {
    Accept: "application/json",
    "Content-Type": "application/json",
    "X-Actor": "console",
  });
});

test("a 401 sends the browser to the login form, back to this page afterwards", async () => {
  const assigned = [];
  const saved = globalThis.location;
  globalThis.location = { pathname: "/console/performance", search: "?schema=1", assign: (url) => assigned.push(url) };
  try {
    const body = { error: "unauthorized", message: "not logged in to the console" };
    const api = new ApiClient({ apiBaseUrl: "/console", loginUrl: "/console/login" }, fakeFetch(401, body, []));
    await assert.rejects(api.versionStats(), (err) => err.status === 401 && err.code === "unauthorized");
    assert.deepEqual(assigned, ["/console/login?error=expired&next=%2Fconsole%2Fperformance%3Fschema%3D1"]);
  } finally {
    globalThis.location = saved;
  }
});

test("statuses: 'all' means no status filter; requests carry the headers", async () => {
  const calls = [];
  const api = new ApiClient({ apiBaseUrl: "http://gw", actor: "console" }, fakeFetch(200, { items: [] }, calls));
  assert.deepEqual(await api.experimentStatuses("all"), { items: [] });
  await api.experimentStatuses("running");
  assert.equal(calls[0].url, "http://gw/api/v1/experiments/statuses?limit=200");
  assert.equal(calls[1].url, "http://gw/api/v1/experiments/statuses?status=running&limit=200");
  assert.equal(calls[0].init.method, "GET");
  assert.equal(calls[0].init.headers["X-Actor"], "console");
});

test("a lifecycle action is a POST without a body", async () => {
  const calls = [];
  const api = new ApiClient({}, fakeFetch(200, { status: "paused" }, calls));
  assert.deepEqual(await api.experimentAction("e 1", "pause"), { status: "paused" });
  assert.equal(calls[0].url, "/api/v1/experiments/e%201/pause");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.body, undefined);
});

test("API errors keep the API's code and message", async () => {
  const body = { error: "illegal_transition", message: "cannot pause a completed experiment", current_status: "completed" };
  const api = new ApiClient({}, fakeFetch(409, body, []));
  await assert.rejects(api.experimentAction("x", "pause"), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 409);
    assert.equal(err.code, "illegal_transition");
    assert.equal(err.message, "cannot pause a completed experiment");
    assert.equal(err.body.current_status, "completed");
    return true;
  });
});

test("non-JSON errors and network failures still become ApiErrors", async () => {
  await assert.rejects(new ApiClient({}, fakeFetch(502, undefined, [])).versionStats(), (err) => err.status === 502 && err.code === "http_error");
  const down = new ApiClient({}, async () => {
    throw new TypeError("Failed to fetch");
  });
  await assert.rejects(down.versionStats(), (err) => err.status === 0 && err.code === "network_error" && /Failed to fetch/.test(err.message));
});

test("performance endpoints take the period and granularity as query parameters", async () => {
  const calls = [];
  const api = new ApiClient({}, fakeFetch(200, {}, calls));
  await api.schemaSummary("s1", 30);
  await api.schemaTrends("s1", "week", 12);
  await api.metricComparison("s1", "execution_time", 7);
  await api.dashboardSummary(7);
  assert.deepEqual(
    calls.map((c) => c.url),
    [
      "/api/v1/performance/schemas/s1/summary?period_days=30",
      "/api/v1/performance/schemas/s1/trends?granularity=week&periods=12",
      "/api/v1/performance/schemas/s1/metrics/execution_time?period_days=7",
      "/api/v1/performance/dashboard/summary?period_days=7",
    ],
  );
});
