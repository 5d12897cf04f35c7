// Amounts from the API are in the currency's smallest unit (cents for USD, yen for JPY): format them in units.

// Stripe's zero- and three-decimal currencies (https://docs.stripe.com/currencies#zero-decimal).
const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
  "vuv", "xaf", "xof", "xpf"]);
const THREE_DECIMAL = new Set(["bhd", "jod", "kwd", "omr", "tnd"]);

export function minorUnitDigits(currency) {
  const code = String(currency).toLowerCase();
  if (ZERO_DECIMAL.has(code)) return 0;
  if (THREE_DECIMAL.has(code)) return 3;
  return 2;
}

export function formatAmount(amount, currency) {
  if (amount === null || amount === undefined) return "—";
  const digits = minorUnitDigits(currency);
  return new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: String(currency).toUpperCase(),
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(amount / 10 ** digits);
}

export function formatInterval(interval, count) {
  if (!interval) return "";
  return count && count > 1 ? `every ${count} ${interval}s` : `per ${interval}`;
}

export function formatDate(epochSeconds) {
  if (!epochSeconds) return "—";
  return new Date(epochSeconds * 1000).toLocaleDateString("en-US", { year: "numeric", month: "long", day: "numeric" });
}

// GET /billing/subscription's access.reason, said to a user.
const REASONS = {
  active: "your subscription is active",
  trialing: "you are in your free trial",
  cancel_at_period_end: "cancellation scheduled, access continues until the period ends",
  past_due_retrying: "your last payment failed; Stripe is retrying it, update your card to avoid losing access",
  past_due_grace: "your last payment failed; access continues for a grace period",
  past_due_grace_expired: "your last payment failed and the grace period is over",
  past_due: "your last payment failed",
  unpaid: "your invoice is unpaid",
  incomplete: "the first payment is not complete (declined or not authenticated)",
  incomplete_allowed: "the first payment is still pending",
  incomplete_expired: "the first payment was never completed",
  canceled: "your subscription was canceled",
  canceled_period_ended: "your subscription ended",
  no_subscription: "you have no subscription",
  subscription_deleted: "your subscription was deleted",
  paused: "your subscription is paused",
  collection_paused: "payment collection is paused",
};

export function describeReason(reason) {
  return REASONS[reason] ?? String(reason).replaceAll("_", " ");
}
