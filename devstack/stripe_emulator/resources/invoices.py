"""Invoices: retrieve, list, lines, pay, and `create_preview` with real proration math."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.forms import as_int, as_list
from devstack.stripe_emulator.routing import Request
from devstack.stripe_emulator.store import Obj, paginate

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator


def register(emu: StripeEmulator) -> None:
    store = emu.store
    billing = emu.billing

    def retrieve(req: Request) -> Obj:
        return store.render(store.get(req.path_params["id"], "invoice"), req.expand)

    def list_(req: Request) -> Obj:
        objs = store.all("invoice")
        if req.params.get("customer"):
            objs = [o for o in objs if o["customer"] == req.params["customer"]]
        if req.params.get("subscription"):
            objs = [
                o
                for o in objs
                if (o["parent"].get("subscription_details") or {}).get("subscription") == req.params["subscription"]
            ]
        if req.params.get("status"):
            objs = [o for o in objs if o["status"] == req.params["status"]]
        return paginate(store, objs, req.params, "/v1/invoices", req.expand)

    def lines(req: Request) -> Obj:
        inv = store.get(req.path_params["id"], "invoice")
        data = list(reversed(inv["lines"]["data"]))
        return paginate(store, data, req.params, f"/v1/invoices/{inv['id']}/lines", req.expand)

    def pay(req: Request) -> Obj:
        inv = store.get(req.path_params["id"], "invoice")
        if inv["status"] != "open":
            raise invalid(
                "Invoice is already paid" if inv["status"] == "paid" else "Invoice is not open.",
                code="invoice_not_open" if inv["status"] != "paid" else "invoice_already_paid",
            )
        sub_id = (inv["parent"].get("subscription_details") or {}).get("subscription")
        sub = store.find(sub_id)
        if req.params.get("payment_method"):
            pm = store.get(str(req.params["payment_method"]), "payment_method", "payment_method")
            behavior = str(store.side(pm["id"]).get("behavior", "succeed"))
            behavior = "decline" if behavior == "decline_on_charge" else behavior
        else:
            behavior = billing.charge_behavior(inv["customer"], sub)
        outcome = billing.collect(inv, sub, behavior)
        if outcome == "paid" and sub is not None and sub["status"] in ("past_due", "unpaid", "incomplete"):
            billing.set_status(sub, "active")
        if outcome != "paid":
            from devstack.stripe_emulator.errors import card_declined

            raise card_declined()
        return store.render(inv, req.expand)

    def create_preview(req: Request) -> Obj:
        p = req.params
        sub_id = p.get("subscription")
        details = p.get("subscription_details") or {}
        if not sub_id:
            if not p.get("customer"):
                raise missing_param("subscription")
            raise invalid("Previews without a subscription are not emulated.", param="subscription")
        sub = store.get(str(sub_id), "subscription", "subscription")
        behavior = details.get("proration_behavior", "create_prorations")
        pdate_raw = details.get("proration_date")
        pdate_in = as_int(pdate_raw, "subscription_details[proration_date]") if pdate_raw not in (None, "") else None
        items = [i for i in as_list(details.get("items")) if isinstance(i, dict)]
        changes, pdate = billing.proration_plan(sub, items, pdate_in)
        proration = billing.proration_lines(sub, changes, pdate) if behavior != "none" else []
        item = sub["items"]["data"][0]
        if behavior == "always_invoice":
            lines = proration
            reason = "subscription_update"
            start = end = pdate
        else:
            # The next renewal invoice: pending + new prorations, then the next period at the new prices.
            import copy as _copy

            preview_sub = _copy.deepcopy(sub)
            billing.apply_items(
                preview_sub,
                [(billing.item_by_id(preview_sub, it["id"]) if it else None, pr, q) for it, pr, q in changes],
                pdate,
            )
            if preview_sub["status"] == "trialing":
                preview_sub["status"] = "active"
            pitem = preview_sub["items"]["data"][0]
            from devstack.stripe_emulator.billing import add_interval

            rec = pitem["price"].get("recurring") or {"interval": "month"}
            start = pitem["current_period_end"]
            end = add_interval(start, rec["interval"], rec.get("interval_count", 1))
            pending = list(store.side(sub["id"]).get("pending_prorations", []))
            lines = (
                pending
                + proration
                + billing.period_lines(preview_sub, start, end, usage_start=item["current_period_start"])
            )
            reason = "upcoming"
        inv = billing.build_invoice(sub["customer"], sub, lines, reason, start, end, save=False)
        inv["id"] = None
        inv["subscription_proration_date"] = pdate
        return store.render(inv, req.expand)

    def mark_uncollectible(req: Request) -> Obj:
        inv = store.get(req.path_params["id"], "invoice")
        if inv["status"] != "open":
            raise invalid("Only open invoices can be marked uncollectible.", code="invoice_not_open")
        billing.mark_uncollectible(inv)
        return store.render(inv, req.expand)

    def void(req: Request) -> Obj:
        inv = store.get(req.path_params["id"], "invoice")
        if inv["status"] not in ("open", "uncollectible"):
            raise invalid("Only open or uncollectible invoices can be voided.", code="invoice_not_open")
        billing.void_invoice(inv)
        return store.render(inv, req.expand)

    r = emu.router
    r.add("POST", "/v1/invoices/{id}/mark_uncollectible", mark_uncollectible)
    r.add("POST", "/v1/invoices/{id}/void", void)
    r.add("GET", "/v1/invoices", list_)
    r.add("POST", "/v1/invoices/create_preview", create_preview)
    r.add("GET", "/v1/invoices/{id}", retrieve)
    r.add("GET", "/v1/invoices/{id}/lines", lines)
    r.add("POST", "/v1/invoices/{id}/pay", pay)
