// The example app: sign-in, pricing, Checkout, the success page, the billing page. One file per concern:
// api.js (the HTTP client), format.js (amounts, dates, reasons), this file (pages). DOM nodes are built with h(),
// never from HTML strings, so nothing the API returns is ever parsed as markup.
import { ApiError, createApi, newIdempotencyKey } from "./api.js";
import { describeReason, formatAmount, formatDate, formatInterval } from "./format.js";

const TOKEN_KEY = "tollgate.token";
const NAME_KEY = "tollgate.name";
const page = document.getElementById("page");
const notice = document.getElementById("notice");

// ---- small helpers ---------------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(...nodes) {
  page.replaceChildren(...nodes);
}

function say(kind, ...content) {
  notice.className = kind;
  notice.replaceChildren(...content);
  notice.hidden = false;
}

function clearNotice() {
  notice.hidden = true;
  notice.replaceChildren();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Every API failure shown the same way: the API's reason, and what the user can do about it.
function showError(error, { retry } = {}) {
  if (!(error instanceof ApiError)) throw error;
  if (error.status === 401) {
    signOut(`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
    return;
  }
  const parts = [h("strong", {}, `${error.status || "Network"}: `), error.reason];
  if (error.status === 429 || error.status === 503) {
    // Retry-After is readable only because the API's CORS exposes it; without it, say so rather than guess.
    const known = error.retryAfterSeconds !== null;
    parts.push(known ? ` Try again in ${error.retryAfterSeconds} s.` : " Try again in a moment.");
    if (retry) retryCountdown(retry, known ? error.retryAfterSeconds : 5);
  }
  if (error.status === 409) {
    parts.push(" ", h("a", { href: "/billing", id: "error-billing-link" }, "See your billing page"));
  }
  say("error", h("span", { id: "error" }, ...parts));
}

// Keeps an action's button disabled until Retry-After has passed, counting down on the button itself.
function retryCountdown(button, seconds) {
  const label = button.dataset.label ?? button.textContent;
  button.dataset.label = label;
  button.disabled = true;
  let left = seconds;
  const tick = () => {
    if (left <= 0) {
      button.disabled = false;
      button.textContent = label;
      return;
    }
    button.textContent = `${label} (${left} s)`;
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

async function withBusy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } finally {
    if (!button.textContent.endsWith(" s)")) button.disabled = false;
  }
}

// ---- session ---------------------------------------------------------------------------------------------------

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

function currentToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const claims = token ? claimsOf(token) : null;
  if (!claims || claims.exp * 1000 < Date.now() + 30_000) return null;
  return token;
}

function signOut(to = "/sign-in") {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(NAME_KEY);
  location.assign(to);
}

function requireSignIn() {
  const token = currentToken();
  if (token === null) {
    location.assign(`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
    return false;
  }
  return true;
}

function renderHeader() {
  const token = currentToken();
  const who = document.getElementById("who");
  const out = document.getElementById("sign-out");
  if (token) {
    const claims = claimsOf(token);
    who.textContent = `Signed in as ${sessionStorage.getItem(NAME_KEY) ?? claims.email ?? claims.sub}`;
    out.hidden = false;
    out.addEventListener("click", () => signOut());
  } else {
    who.replaceChildren(h("a", { href: "/sign-in" }, "Sign in"));
  }
}

// ---- pages -----------------------------------------------------------------------------------------------------

function signInPage() {
  const next = new URLSearchParams(location.search).get("next") || "/pricing";
  const input = h("input", { id: "user-id", name: "user_id", placeholder: "empty: the dev user", size: 32 });
  const button = h("button", { id: "sign-in", type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        await withBusy(button, async () => {
          const response = await fetch("/dev/sign-in", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ user_id: input.value.trim() || null }),
          });
          const body = await response.json();
          if (!response.ok) {
            say("error", h("span", { id: "error" }, body.error?.reason ?? `HTTP ${response.status}`));
            return;
          }
          sessionStorage.setItem(TOKEN_KEY, body.token);
          sessionStorage.setItem(NAME_KEY, body.name);
          location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/pricing");
        });
      },
    },
    h("p", {}, h("label", { for: "user-id" }, "User id "), input, " ", button),
  );
  show(
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" },
      "Local stand-in for your sign-in (Cognito or any OIDC issuer): leave empty for the seeded dev user ",
      "(a token from the local Cognito), or type any user id to act as another user."),
    form,
  );
}

async function pricingPage(api) {
  const { plans } = await api.plans();
  const signedIn = currentToken() !== null;
  const cards = plans.map((plan) => {
    const seats = plan.max_quantity > 1
      ? h("input", { type: "number", id: `quantity-${plan.plan}`, min: plan.min_quantity, max: plan.max_quantity,
        value: plan.min_quantity, "aria-label": "seats" })
      : null;
    const button = h("button", { id: `subscribe-${plan.plan}`, type: "button" }, "Subscribe");
    button.addEventListener("click", async () => {
      if (!signedIn) {
        location.assign("/sign-in?next=/pricing");
        return;
      }
      clearNotice();
      await withBusy(button, async () => {
        try {
          const quantity = seats ? Number(seats.value) : 1;
          const session = await api.startCheckout(plan.plan, quantity, newIdempotencyKey());
          location.assign(session.url);
        } catch (error) {
          showError(error, { retry: button });
        }
      });
    });
    const price = plan.amount === null
      ? h("p", { class: "price" }, "Usage-based")
      : h("p", { class: "price" }, formatAmount(plan.amount, plan.currency),
        h("span", { class: "muted" }, ` ${formatInterval(plan.interval, plan.interval_count)}`,
          plan.max_quantity > 1 ? " per seat" : ""));
    return h("div", { class: "plan", id: `plan-${plan.plan}` },
      h("h2", {}, plan.name),
      price,
      plan.trial_days ? h("p", {}, `${plan.trial_days}-day free trial for new subscribers`) : null,
      seats ? h("p", {}, h("label", {}, `Seats (${plan.min_quantity}-${plan.max_quantity}) `, seats)) : null,
      button);
  });
  show(h("h1", {}, "Pricing"), h("div", { class: "plans" }, cards));
}

async function successPage(api) {
  if (!requireSignIn()) return;
  const sessionId = new URLSearchParams(location.search).get("session_id");
  const status = h("p", { id: "success-status" }, "Confirming your payment with Stripe…");
  show(h("h1", {}, "Thanks!"), status);
  if (!sessionId) {
    status.textContent = "This page needs a session_id (it is where Checkout sends you back).";
    return;
  }
  // Stripe redirects here possibly before its webhook reached us: GET /checkout/sessions/{id} checks with Stripe
  // itself, so poll it (bounded, honouring Retry-After) until access is granted.
  const deadline = Date.now() + 60_000;
  let delay = 500;
  while (Date.now() < deadline) {
    try {
      const result = await api.checkoutStatus(sessionId);
      if (result.access?.allowed) {
        status.replaceChildren(
          h("span", { id: "access-granted", class: "yes" }, `You have access to ${result.plan}.`),
          " ", describeReason(result.access.reason), ".");
        page.append(h("p", {}, h("a", { href: "/billing", id: "go-billing" }, "Go to your billing page")));
        return;
      }
      if (result.session_status === "complete" && result.status === "incomplete") {
        status.replaceChildren(h("span", { class: "no" }, "Your payment is not complete yet. "),
          "Your bank may still need to confirm it; this page checks again.");
      } else if (result.session_status === "expired") {
        status.textContent = "This Checkout expired without a payment; nothing was charged.";
        page.append(h("p", {}, h("a", { href: "/pricing" }, "Back to pricing")));
        return;
      }
    } catch (error) {
      if (error instanceof ApiError && (error.status === 429 || error.status === 503)) {
        await sleep((error.retryAfterSeconds ?? 2) * 1000);
        continue;
      }
      showError(error);
      status.textContent = "We could not confirm this Checkout.";
      return;
    }
    await sleep(delay);
    delay = Math.min(delay * 1.5, 3000);
  }
  status.textContent = "Your payment is still being confirmed. Check your billing page in a minute.";
  page.append(h("p", {}, h("a", { href: "/billing" }, "Billing page")));
}

function cancelPage() {
  show(
    h("h1", {}, "Checkout canceled"),
    h("p", { id: "canceled" }, "You left Checkout before subscribing. Nothing was charged."),
    h("p", {}, h("a", { href: "/pricing" }, "Back to pricing"), " · ", h("a", { href: "/billing" }, "Billing page")),
  );
}

// Cancel, resume and plan changes take effect through Stripe's webhook: wait for the projection to show them.
async function waitForSubscription(api, done, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const sub = await api.subscription();
    if (done(sub)) return sub;
    await sleep(500);
  }
  return null;
}

async function openPortal(api, button, flow) {
  clearNotice();
  await withBusy(button, async () => {
    try {
      const { url } = await api.portal(flow, newIdempotencyKey());
      location.assign(url);
    } catch (error) {
      showError(error, { retry: button });
    }
  });
}

function fact(label, value, id) {
  return [h("dt", {}, label), h("dd", { id }, value)];
}

async function billingPage(api) {
  if (!requireSignIn()) return;
  const [sub, catalog] = await Promise.all([api.subscription(), api.plans()]);
  const nodes = [h("h1", {}, "Billing")];
  const access = sub.access;
  const planName = catalog.plans.find((p) => p.plan === sub.plan)?.name ?? sub.plan;
  nodes.push(h("dl", { class: "facts" },
    fact("Plan", sub.plan ? `${planName}${sub.quantity > 1 ? ` × ${sub.quantity}` : ""}` : "none", "plan"),
    fact("Status", sub.status, "status"),
    fact("Access", [h("span", { class: access.allowed ? "yes" : "no" }, access.allowed ? "Yes" : "No"),
      `: ${describeReason(access.reason)}`, access.until ? ` (until ${formatDate(access.until)})` : ""], "access"),
    fact("Features", sub.features.length ? sub.features.join(", ") : "none", "features"),
    sub.trial_end && sub.status === "trialing" ? fact("Trial ends", formatDate(sub.trial_end), "trial-end") : [],
    sub.current_period_end
      ? fact(sub.cancel_at_period_end || sub.cancel_at ? "Ends on" : "Renews on",
        formatDate(sub.cancel_at ?? sub.current_period_end), "period-end")
      : [],
  ));

  if (sub.status === "none") {
    nodes.push(h("p", {}, "No subscription yet. ", h("a", { href: "/pricing", id: "to-pricing" }, "See the plans")));
    show(...nodes);
    return;
  }

  if (["past_due", "unpaid", "incomplete"].includes(sub.status)) {
    const fix = h("button", { id: "update-payment", type: "button" }, "Update payment method");
    fix.addEventListener("click", () => openPortal(api, fix, "payment_method_update"));
    nodes.push(h("div", { class: "warning", id: "payment-problem" },
      h("p", {}, "Your payment did not go through: ", describeReason(access.reason), "."), fix));
  }

  const live = ["active", "trialing", "past_due"].includes(sub.status);
  const actions = h("div", { class: "row" });
  if (live && (sub.cancel_at_period_end || sub.cancel_at)) {
    const resume = h("button", { id: "resume", type: "button" }, "Resume subscription");
    resume.addEventListener("click", () => changeCancellation(api, resume, false));
    actions.append(resume);
  } else if (live) {
    const cancel = h("button", { id: "cancel", type: "button", class: "secondary" }, "Cancel at period end");
    cancel.addEventListener("click", () => changeCancellation(api, cancel, true));
    actions.append(cancel);
  }
  const portal = h("button", { id: "portal", type: "button", class: "secondary" }, "Manage billing (Stripe portal)");
  portal.addEventListener("click", () => openPortal(api, portal));
  actions.append(portal);
  nodes.push(h("section", {}, actions));

  if (access.allowed && sub.price_id) nodes.push(planChangeSection(api, sub, catalog.plans));
  nodes.push(await invoicesSection(api));
  show(...nodes);
}

async function changeCancellation(api, button, cancel) {
  clearNotice();
  await withBusy(button, async () => {
    try {
      const answer = cancel ? await api.cancel(newIdempotencyKey()) : await api.resume(newIdempotencyKey());
      say("info", cancel ? "Cancellation requested…" : "Resuming…");
      const sub = await waitForSubscription(api, (s) => Boolean(s.cancel_at_period_end || s.cancel_at) === cancel);
      if (sub === null) {
        say("info", "Stripe accepted the change; it will show here in a moment.");
        return;
      }
      say("info", h("span", { id: "done" }, cancel
        ? `Your subscription ends on ${formatDate(sub.cancel_at ?? answer.current_period_end)}. You keep access until then.`
        : "Your subscription continues; nothing ends at the period end."));
      await billingPage(api);
    } catch (error) {
      showError(error, { retry: button });
    }
  });
}

function planChangeSection(api, sub, plans) {
  const options = plans.filter((p) => p.amount !== null);
  const select = h("select", { id: "change-plan", "aria-label": "new plan" },
    options.map((p) => h("option", { value: p.plan, selected: p.plan === sub.plan },
      `${p.name}: ${formatAmount(p.amount, p.currency)} ${formatInterval(p.interval, p.interval_count)}`)));
  const quantity = h("input", { type: "number", id: "change-quantity", min: 1, value: sub.quantity ?? 1,
    "aria-label": "seats" });
  const preview = h("button", { id: "preview", type: "button", class: "secondary" }, "Preview change");
  const result = h("div", { id: "preview-result" });
  preview.addEventListener("click", async () => {
    clearNotice();
    result.replaceChildren();
    await withBusy(preview, async () => {
      try {
        const p = await api.previewChange(select.value, Number(quantity.value));
        const apply = h("button", { id: "apply", type: "button" }, `Pay ${formatAmount(p.amount_due_now, p.currency)} and switch`);
        apply.addEventListener("click", () => applyChange(api, apply, p));
        result.replaceChildren(
          h("p", { id: "preview-amount" },
            `Due now: ${formatAmount(p.amount_due_now, p.currency)} (prorated for the rest of this period), then `,
            `${formatAmount(p.next_invoice.amount, p.currency)} on ${formatDate(p.next_invoice.date)}.`),
          h("p", { class: "muted" }, `This quote holds until ${new Date(p.expires_at * 1000).toLocaleTimeString()}.`),
          apply);
      } catch (error) {
        showError(error, { retry: preview });
      }
    });
  });
  return h("section", {}, h("h2", {}, "Change plan"), h("div", { class: "row" }, select, quantity, preview), result);
}

async function applyChange(api, button, preview) {
  clearNotice();
  await withBusy(button, async () => {
    try {
      const changed = await api.applyChange(preview.token);
      await waitForSubscription(api, (s) => s.plan === changed.plan && s.quantity === changed.quantity);
      await billingPage(api);
      say("info", h("span", { id: "done" },
        `Switched to ${changed.plan}; charged ${formatAmount(changed.amount_due_now, changed.currency)}.`));
    } catch (error) {
      showError(error);
      if (error instanceof ApiError && error.status === 409) {
        say("error", h("span", { id: "error" }, `409: ${error.reason} Preview the change again.`));
      }
    }
  });
}

async function invoicesSection(api) {
  const body = h("tbody", { id: "invoices" });
  const section = h("section", {}, h("h2", {}, "Invoices"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Number", "Date", "Period", "Amount", "Status", ""].map((t) => h("th", {}, t)))), body));
  const more = h("button", { id: "more-invoices", type: "button", class: "secondary", hidden: true }, "More invoices");
  section.append(more);
  let cursor = null;
  const load = async () => {
    try {
      const pageOf = await api.invoices(cursor);
      for (const inv of pageOf.invoices) {
        body.append(h("tr", {},
          h("td", {}, inv.number ?? inv.id),
          h("td", {}, formatDate(inv.created)),
          h("td", {}, `${formatDate(inv.period_start)} – ${formatDate(inv.period_end)}`),
          h("td", {}, formatAmount(inv.total, inv.currency)),
          h("td", {}, inv.status),
          h("td", {}, inv.hosted_invoice_url ? h("a", { href: inv.hosted_invoice_url, rel: "noopener" }, "View") : "",
            inv.invoice_pdf ? [" · ", h("a", { href: inv.invoice_pdf, rel: "noopener" }, "PDF")] : "")));
      }
      if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 6 }, "No invoices yet.")));
      cursor = pageOf.next_cursor;
      more.hidden = !pageOf.has_more;
    } catch (error) {
      showError(error, { retry: more });
    }
  };
  more.addEventListener("click", load);
  await load();
  return section;
}

// ---- router ----------------------------------------------------------------------------------------------------

const ROUTES = {
  "/": () => location.replace(currentToken() ? "/billing" : "/pricing"),
  "/sign-in": signInPage,
  "/pricing": pricingPage,
  "/billing": billingPage,
  "/billing/success": successPage,
  "/billing/cancel": cancelPage,
};

async function main() {
  renderHeader();
  const config = await (await fetch("/config.json")).json();
  const api = createApi(config.api_url, () => currentToken() ?? "");
  const route = ROUTES[location.pathname];
  try {
    await route(api);
  } catch (error) {
    show(h("h1", {}, "Something went wrong"));
    showError(error);
  }
}

main();
