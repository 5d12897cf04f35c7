// The tollgate API client: one function per route, one error type for every failure the API answers.
// Errors from the API always have the shape {"error": {"status", "reason"}}; 429 and 503 carry Retry-After.

export class ApiError extends Error {
  constructor(status, reason, retryAfterSeconds) {
    super(reason);
    this.status = status;
    this.reason = reason;
    this.retryAfterSeconds = retryAfterSeconds; // null when the API did not say
  }
}

function retryAfterOf(response) {
  const value = response.headers.get("Retry-After");
  if (value === null) return null;
  const seconds = Number.parseInt(value, 10);
  if (Number.isFinite(seconds)) return Math.max(seconds, 0);
  const date = Date.parse(value); // HTTP-date form
  return Number.isFinite(date) ? Math.max(Math.ceil((date - Date.now()) / 1000), 0) : null;
}

// A fresh key per user action: a retried request (network blip, double click) is one Stripe operation, and the
// next deliberate action is a new one (docs/api.md, Idempotency-Key).
export function newIdempotencyKey() {
  return crypto.randomUUID();
}

export function createApi(baseUrl, getToken) {
  async function request(method, path, { body, idempotencyKey, auth = true } = {}) {
    const headers = {};
    if (auth) headers.Authorization = `Bearer ${getToken()}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "the billing API cannot be reached; check your connection and try again", null);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const reason = data?.error?.reason ?? data?.message ?? `HTTP ${response.status}`;
      throw new ApiError(response.status, reason, retryAfterOf(response));
    }
    return data;
  }

  return {
    plans: () => request("GET", "/plans", { auth: false }),
    startCheckout: (plan, quantity, idempotencyKey) =>
      request("POST", "/checkout/sessions", { body: { plan, quantity }, idempotencyKey }),
    checkoutStatus: (sessionId) => request("GET", `/checkout/sessions/${encodeURIComponent(sessionId)}`),
    subscription: () => request("GET", "/billing/subscription"),
    previewChange: (plan, quantity) => request("POST", "/billing/subscription/preview", { body: { plan, quantity } }),
    applyChange: (token) => request("POST", "/billing/subscription/change", { body: { token } }),
    cancel: (idempotencyKey) => request("POST", "/billing/subscription/cancel", { idempotencyKey }),
    resume: (idempotencyKey) => request("POST", "/billing/subscription/resume", { idempotencyKey }),
    invoices: (startingAfter) =>
      request("GET", `/billing/invoices?limit=10${startingAfter ? `&starting_after=${encodeURIComponent(startingAfter)}` : ""}`),
    portal: (flow, idempotencyKey) =>
      request("POST", "/portal/sessions", { body: flow ? { flow } : undefined, idempotencyKey }),
  };
}
