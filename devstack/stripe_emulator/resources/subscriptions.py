"""Subscriptions: retrieve, list, update (items, prorations, cancel_at_period_end, metadata), cancel, resume."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.billing import diff
from devstack.stripe_emulator.errors import card_declined, invalid, missing_param
from devstack.stripe_emulator.forms import as_bool, as_int, as_list
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator

PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
# Stripe accepts only these alongside payment_behavior=pending_if_incomplete.
PENDING_UPDATE_PARAMS = frozenset(
    {"payment_behavior", "items", "proration_behavior", "proration_date", "expand", "trial_end", "billing_cycle_anchor"}
)
STATUSES = ("trialing", "active", "incomplete", "incomplete_expired", "past_due", "unpaid", "canceled", "paused")


def register(emu: StripeEmulator) -> None:
    store = emu.store
    billing = emu.billing

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "subscription"), req.expand)

    def list_(req: Request) -> Obj:
        objs = store.all("subscription")
        status = req.params.get("status")
        if status and status not in (*STATUSES, "all", "ended"):
            raise invalid(f"Invalid status: {status}", param="status")
        if not status:
            objs = [o for o in objs if o["status"] not in ("canceled", "incomplete_expired")]
        elif status == "ended":
            objs = [o for o in objs if o["status"] in ("canceled", "incomplete_expired")]
        elif status != "all":
            objs = [o for o in objs if o["status"] == status]
        for key in ("customer",):
            if req.params.get(key):
                objs = [o for o in objs if o[key] == req.params[key]]
        if req.params.get("price"):
            objs = [o for o in objs if any(i["price"]["id"] == req.params["price"] for i in o["items"]["data"])]
        return paginate(store, objs, req.params, "/v1/subscriptions", req.expand)

    def update(req: Request) -> Obj:
        sub = store.get(req.path_params["id"], "subscription")
        p = req.params
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.", param=None)
        behavior = p.get("proration_behavior", "create_prorations")
        if behavior not in PRORATION_BEHAVIORS:
            raise invalid(f"Invalid proration_behavior: {behavior}", param="proration_behavior")
        payment_behavior = p.get("payment_behavior", "allow_incomplete")
        if payment_behavior not in PAYMENT_BEHAVIORS:
            raise invalid(f"Invalid payment_behavior: {payment_behavior}", param="payment_behavior")
        pending = payment_behavior == "pending_if_incomplete"
        if pending and set(p) - PENDING_UPDATE_PARAMS:
            bad = sorted(set(p) - PENDING_UPDATE_PARAMS)[0]
            raise invalid(f"You cannot pass `{bad}` with payment_behavior=pending_if_incomplete.", param=bad)
        if pending and sub.get("pending_update"):
            raise invalid("This subscription already has a pending update.", param="payment_behavior")
        if pending:
            behavior = "always_invoice"  # a pending update is invoiced and paid immediately
        saved_items = copy.deepcopy(sub["items"])
        saved_anchor = sub["billing_cycle_anchor"]
        before = copy.deepcopy(sub)
        items = [i for i in as_list(p.get("items")) if isinstance(i, dict)]
        pdate_raw = p.get("proration_date")
        pdate_in = as_int(pdate_raw, "proration_date") if pdate_raw not in (None, "") else None
        invoice = None
        if items:
            changes, pdate = billing.proration_plan(sub, items, pdate_in)
            lines = billing.proration_lines(sub, changes, pdate) if behavior != "none" else []
            billing.apply_items(sub, changes, pdate)
            if lines and behavior == "always_invoice":
                invoice = billing.issue_invoice(sub, sub["customer"], lines, "subscription_update")
            elif lines:
                store.side(sub["id"]).setdefault("pending_prorations", []).extend(lines)
        if "cancel_at_period_end" in p:
            sub["cancel_at_period_end"] = as_bool(p["cancel_at_period_end"])
            if sub["cancel_at_period_end"]:
                sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"]
                sub["canceled_at"] = billing.now()
            else:
                sub["cancel_at"] = None
                sub["canceled_at"] = None
        if "cancel_at" in p and "cancel_at_period_end" not in p:
            sub["cancel_at"] = as_int(p["cancel_at"], "cancel_at") if p["cancel_at"] not in (None, "") else None
        if "metadata" in p:
            meta = p["metadata"] or {}
            if meta == "":
                sub["metadata"] = {}
            for k, v in meta.items() if isinstance(meta, dict) else []:
                if v == "":
                    sub["metadata"].pop(k, None)
                else:
                    sub["metadata"][k] = v
        if p.get("default_payment_method"):
            sub["default_payment_method"] = store.get(
                str(p["default_payment_method"]), "payment_method", "default_payment_method"
            )["id"]
        if p.get("trial_end") == "now" and sub["status"] == "trialing":
            now = billing.now()
            for item in sub["items"]["data"]:
                item["current_period_end"] = now
            sub["trial_end"] = now
        if "cancellation_details" in p:
            sub["cancellation_details"].update(p["cancellation_details"] or {})
        if "pause_collection" in p:
            sub["pause_collection"] = parse_pause(p["pause_collection"])
        changes_dict = diff(before, sub)
        if changes_dict:
            emu.events.emit("customer.subscription.updated", sub, changes_dict)
        if invoice is not None:
            outcome = billing.collect(invoice, sub)
            if pending and outcome != "paid":
                billing.start_pending_update(sub, saved_items, saved_anchor, invoice)
            else:
                billing._after_collection(sub, invoice, outcome)
        if p.get("trial_end") == "now":
            billing.tick()
        return store.render(sub, req.expand)

    def parse_pause(value: Any) -> Obj | None:
        if value in ("", None):
            return None
        if not isinstance(value, dict) or value.get("behavior") not in PAUSE_BEHAVIORS:
            raise invalid(
                f"pause_collection[behavior] must be one of {', '.join(PAUSE_BEHAVIORS)}.",
                param="pause_collection[behavior]",
            )
        resumes = value.get("resumes_at")
        return {
            "behavior": value["behavior"],
            "resumes_at": as_int(resumes, "pause_collection[resumes_at]") if resumes not in (None, "") else None,
        }

    def create(req: Request) -> Obj:
        """POST /v1/subscriptions: licensed/metered items, trials (with trial_settings), payment_behavior."""
        p = req.params
        if not p.get("customer"):
            raise missing_param("customer")
        cus = store.get(str(p["customer"]), "customer", "customer")
        specs = [i for i in as_list(p.get("items")) if isinstance(i, dict)]
        if not specs:
            raise missing_param("items")
        lines = []
        for i, spec in enumerate(specs):
            price = billing.price(str(spec.get("price")), f"items[{i}][price]")
            if price["type"] != "recurring":
                raise invalid("The price must be recurring.", param=f"items[{i}][price]")
            qty = spec.get("quantity")
            lines.append((price, as_int(qty, f"items[{i}][quantity]") if qty not in (None, "") else None))
        payment_behavior = p.get("payment_behavior", "allow_incomplete")
        if payment_behavior not in PAYMENT_BEHAVIORS or payment_behavior == "pending_if_incomplete":
            raise invalid(f"Invalid payment_behavior: {payment_behavior}", param="payment_behavior")
        trial_days = as_int(p["trial_period_days"], "trial_period_days") if p.get("trial_period_days") else None
        end_behavior = ((p.get("trial_settings") or {}).get("end_behavior") or {}).get(
            "missing_payment_method", "create_invoice"
        )
        if end_behavior not in ("create_invoice", "pause", "cancel"):
            raise invalid(
                "Invalid missing_payment_method.", param="trial_settings[end_behavior][missing_payment_method]"
            )
        sub = billing.create_subscription(
            cus, lines, trial_days=trial_days, metadata=p.get("metadata"), missing_pm_behavior=end_behavior
        )
        if p.get("default_payment_method"):
            pm = store.get(str(p["default_payment_method"]), "payment_method", "default_payment_method")
            sub["default_payment_method"] = pm["id"]
        if trial_days or payment_behavior != "default_incomplete":
            behavior = billing.charge_behavior(cus["id"], sub)
            _, outcome = billing.start_subscription(sub, behavior)
            if outcome != "paid" and payment_behavior == "error_if_incomplete":
                raise card_declined()
        else:
            item = sub["items"]["data"][0]
            lines_ = billing.period_lines(sub, item["current_period_start"], item["current_period_end"])
            billing.issue_invoice(sub, sub["customer"], lines_, "subscription_create")
        return store.render(sub, req.expand)

    def cancel(req: Request) -> Obj:
        sub = store.get(req.path_params["id"], "subscription")
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise invalid(
                f"No such subscription: '{sub['id']}'... it was already canceled.", param="id", code="resource_missing"
            )
        billing.cancel(sub)
        return store.render(sub, req.expand)

    def resume(req: Request) -> Obj:
        sub = store.get(req.path_params["id"], "subscription")
        if sub["status"] != "paused":
            raise invalid("Only paused subscriptions can be resumed.", param=None)
        now = billing.now()
        before = copy.deepcopy(sub)
        sub["status"] = "active"
        for item in sub["items"]["data"]:
            rec = item["price"].get("recurring") or {"interval": "month"}
            from devstack.stripe_emulator.billing import add_interval

            item["current_period_start"] = now
            item["current_period_end"] = add_interval(now, rec["interval"], rec.get("interval_count", 1))
        emu.events.emit("customer.subscription.resumed", sub)
        emu.events.emit("customer.subscription.updated", sub, diff(before, sub))
        item = sub["items"]["data"][0]
        lines = billing.period_lines(sub, item["current_period_start"], item["current_period_end"])
        inv = billing.issue_invoice(sub, sub["customer"], lines, "subscription_update")
        billing._after_collection(sub, inv, billing.collect(inv, sub))
        return store.render(sub, req.expand)

    def list_items(req: Request) -> Obj:
        sub_id = req.params.get("subscription")
        sub = store.get(str(sub_id), "subscription", "subscription")
        data: list[Any] = list(reversed(sub["items"]["data"]))
        return paginate(store, data, req.params, "/v1/subscription_items", req.expand)

    r = emu.router
    r.add("GET", "/v1/subscriptions", list_)
    r.add("POST", "/v1/subscriptions", create)
    r.add("GET", "/v1/subscriptions/{id}", retrieve)
    r.add("POST", "/v1/subscriptions/{id}", update)
    r.add("DELETE", "/v1/subscriptions/{id}", cancel)
    r.add("POST", "/v1/subscriptions/{id}/resume", resume)
    r.add("GET", "/v1/subscription_items", list_items)
