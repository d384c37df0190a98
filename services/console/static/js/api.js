// The console's only door to the platform: every request goes through ApiClient, and
// requestHeaders() is the one place where request headers are built. The API key is not
// here: it sits in an HttpOnly cookie and the console's proxy (/console/api/...) adds it;
// a 401 (no or expired login) sends the browser to the login form.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the request did not reach a server)
   * @param {string} code the API's machine-readable ``error`` code
   * @param {string} message the API's ``message`` (shown to the user as is)
   * @param {object|null} body the whole error body
   */
  constructor(status, code, message, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Headers of every API request. ``config``: the page configuration (the actor). */
export function requestHeaders(config = {}, { json = false } = {}) {
  const headers = { Accept: "application/json" };
  if (json) headers["Content-Type"] = "application/json";
  if (config.actor) headers["X-Actor"] = config.actor;
  return headers;
}

/** ``base`` + ``path`` + query string (null/undefined/"" values are left out). */
export function buildUrl(base, path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === "") continue;
    params.append(k, String(v));
  }
  const qs = params.toString();
  return `${(base || "").replace(/\/+$/, "")}${path}${qs ? `?${qs}` : ""}`;
}

/** An ApiError from a non-2xx response (the platform answers {"error", "message"}). */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && typeof body.message === "string") {
    return new ApiError(response.status, String(body.error ?? "error"), body.message, body);
  }
  if (body && typeof body === "object" && typeof body.detail === "string") {
    return new ApiError(response.status, "error", body.detail, body);
  }
  return new ApiError(
    response.status,
    "http_error",
    `HTTP ${response.status} ${response.statusText || ""}`.trim(),
    body,
  );
}

export class ApiClient {
  /**
   * @param {object} config the page configuration (``apiBaseUrl``, ``actor``...)
   * @param {Function} fetchImpl a fetch implementation (tests pass a fake)
   */
  constructor(config = {}, fetchImpl = globalThis.fetch.bind(globalThis)) {
    this.config = config;
    this.base = config.apiBaseUrl || "";
    this.fetch = fetchImpl;
  }

  async request(method, path, { query = {}, body = undefined } = {}) {
    const json = body !== undefined;
    let response;
    try {
      response = await this.fetch(buildUrl(this.base, path, query), {
        method,
        headers: requestHeaders(this.config, { json }),
        body: json ? JSON.stringify(body) : undefined,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, "network_error", `cannot reach the API (${err.message || err})`);
    }
    if (response.status === 401 && this.config.loginUrl && globalThis.location) {
      const here = `${globalThis.location.pathname}${globalThis.location.search}`;
      globalThis.location.assign(
        `${this.config.loginUrl}?error=expired&next=${encodeURIComponent(here)}`,
      );
    }
    if (!response.ok) throw await errorFrom(response);
    if (response.status === 204) return null;
    return response.json();
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }

  // -- the endpoints the console uses ---------------------------------------------

  experimentStatuses(status) {
    return this.get("/api/v1/experiments/statuses", {
      status: status === "all" ? null : status,
      limit: 200,
    });
  }

  experimentStatus(id) {
    return this.get(`/api/v1/experiments/${encodeURIComponent(id)}/status`);
  }

  experimentAction(id, action) {
    return this.request("POST", `/api/v1/experiments/${encodeURIComponent(id)}/${action}`);
  }

  versionStats() {
    return this.get("/api/v1/versions/stats");
  }

  schemas() {
    return this.get("/api/v1/schemas", { limit: 200 });
  }

  schemaSummary(schemaId, periodDays) {
    return this.get(`/api/v1/performance/schemas/${encodeURIComponent(schemaId)}/summary`, {
      period_days: periodDays,
    });
  }

  schemaTrends(schemaId, granularity, periods) {
    return this.get(`/api/v1/performance/schemas/${encodeURIComponent(schemaId)}/trends`, {
      granularity,
      periods,
    });
  }

  metricComparison(schemaId, metric, periodDays) {
    return this.get(
      `/api/v1/performance/schemas/${encodeURIComponent(schemaId)}/metrics/${metric}`,
      { period_days: periodDays },
    );
  }

  dashboardSummary(periodDays) {
    return this.get("/api/v1/performance/dashboard/summary", { period_days: periodDays });
  }
}
