"""Hosted pages in plain HTML: Checkout (pay / decline / requires action + authentication step) and the
customer portal (cancel at period end, resume, switch plan, update card).

Form POSTs move state and emit events in Stripe's order; a completed Checkout answers 303 to `success_url`
only after the `checkout.session.completed` deliveries had their first attempt (bounded wait), like Stripe.
"""

from __future__ import annotations

import copy
from html import escape
from typing import TYPE_CHECKING, Any

from .billing import CARD_ALIASES, CARDS, diff
from .errors import StripeError
from .routing import Request, Response
from .store import Obj

if TYPE_CHECKING:
    from .app import StripeEmulator

STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}form{display:inline-block;margin:.3em}"


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response.html(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>",
        status=status,
    )


def _button(action: str, label: str, fields: dict[str, str] | None = None, name: str = "action") -> str:
    hidden = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in (fields or {}).items())
    return (
        f"<form method='post' action='{escape(action)}'>{hidden}"
        f"<button type='submit' name='{escape(name)}' value='{escape(label.lower().replace(' ', '_'))}'>"
        f"{escape(label)}</button></form>"
    )


def success_redirect(cs: Obj) -> str:
    url = str(cs.get("success_url") or "")
    return url.replace("{CHECKOUT_SESSION_ID}", cs["id"]).replace("%7BCHECKOUT_SESSION_ID%7D", cs["id"])


def register(emu: StripeEmulator) -> None:
    store = emu.store
    billing = emu.billing

    # ---- Checkout ---------------------------------------------------------------------------------------

    def checkout_page(req: Request) -> Response:
        cs = store.find(req.path_params["id"])
        if cs is None or cs["object"] != "checkout.session":
            return _page("Checkout session not found", "<p>Unknown session.</p>", 404)
        if cs["status"] != "open":
            return _page("Checkout", f"<p id='status'>This session is {escape(cs['status'])}.</p>", 410)
        from .resources.checkout import line_items_of

        rows = "".join(
            f"<li>{escape(str(i['description']))}: {i['quantity'] or 'metered'} x "
            f"{i['price']['unit_amount']} {escape(i['price']['currency'])}</li>"
            for i in line_items_of(emu, cs)
        )
        plan = store.side(cs["id"]).get("pricing_plan")
        if plan:
            rows += f"<li>Pricing plan {escape(plan)}</li>"
        action = f"/c/pay/{cs['id']}"
        body = (
            f"<p>Session <code>{escape(cs['id'])}</code>, total {cs['amount_total']} {escape(cs['currency'])}</p>"
            f"<ul>{rows}</ul>"
            + _button(action, "Pay", {"card": "4242424242424242"})
            + _button(action, "Decline", {"card": "4000000000000002"})
            + _button(action, "Requires action", {"card": "4000002500003155"})
            + _button(action, "Pay", {"card": "4000000000000341"}).replace(">Pay<", ">Pay (card fails later)<")
            + _button(action, "Pay by bank debit (async)", {"card": "bank_debit"})
            + _button(action, "Pay by bank debit (async, fails)", {"card": "bank_debit_fails"})
        )
        return _page("Checkout", body)

    def _customer_for(cs: Obj, email: str | None) -> Obj:
        if cs["customer"]:
            return store.get(cs["customer"], "customer")
        cus = billing.new_customer({"email": email or cs.get("customer_email") or "customer@example.com"})
        return cus

    def _complete(cs: Obj, cus: Obj, sub: Obj | None, inv: Obj | None, payment_status: str | None = None) -> Obj:
        before = copy.deepcopy(cs)
        cs["status"] = "complete"
        cs["payment_status"] = "paid" if inv is not None and inv["amount_paid"] > 0 else "no_payment_required"
        if cs["payment_status"] == "no_payment_required" and inv is not None and inv["amount_due"] > 0:
            cs["payment_status"] = "paid"
        if payment_status is not None:
            cs["payment_status"] = payment_status
        cs["customer"] = cus["id"]
        cs["subscription"] = sub["id"] if sub else None
        cs["invoice"] = inv["id"] if inv else None
        cs["customer_details"] = {
            "address": None,
            "email": cus.get("email"),
            "name": cus.get("name"),
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        del before
        return emu.events.emit("checkout.session.completed", cs)

    def _pricing_plan_checkout(cs: Obj, cus: Obj, plan_id: str) -> Obj:
        metadata = dict(store.side(cs["id"]).get("subscription_metadata") or {})
        ppsub, inv = emu.pricing_plans.subscribe(cus["id"], plan_id, metadata)
        cs["pricing_plan_subscription"] = ppsub["id"]
        return inv

    def checkout_submit(req: Request) -> Response:
        cs = store.find(req.path_params["id"])
        if cs is None or cs["object"] != "checkout.session":
            return _page("Checkout session not found", "<p>Unknown session.</p>", 404)
        if cs["status"] != "open":
            return _page("Checkout", f"<p id='status'>This session is {escape(cs['status'])}.</p>", 410)
        card = str(req.params.get("card") or CARD_ALIASES.get(str(req.params.get("action")), "4242424242424242"))
        card = CARD_ALIASES.get(card, card)
        if card in ("bank_debit", "bank_debit_fails") and not store.side(cs["id"]).get("pricing_plan"):
            return _bank_debit(cs, card == "bank_debit", req.params.get("email"))
        if card not in CARDS:
            return _page("Checkout", "<p class='error'>Unknown test card.</p>", 400)
        behavior = CARDS[card][0]
        side = store.side(cs["id"])
        trial = bool(side.get("trial_days"))
        charged_now = not trial and cs["amount_total"] > 0
        if behavior == "decline" or (behavior == "decline_on_charge" and charged_now):
            return _page(
                "Checkout",
                "<p class='error' id='error'>Your card was declined. (card_declined)</p>"
                + _button(f"/c/pay/{cs['id']}", "Pay", {"card": "4242424242424242"}),
                402,
            )
        cus = _customer_for(cs, req.params.get("email"))
        billing.attach_card(cus, card)
        plan_id = side.get("pricing_plan")
        if plan_id:
            inv = _pricing_plan_checkout(cs, cus, plan_id)
            event = _complete(cs, cus, None, inv)
            return Response.redirect(success_redirect(cs), [event["id"]])
        lines = [(store.objects[li["price"]], li["quantity"]) for li in side["line_items"]]
        sub = billing.create_subscription(
            cus,
            lines,
            trial_days=side.get("trial_days"),
            metadata=side.get("subscription_metadata"),
            automatic_tax=cs["automatic_tax"]["enabled"],
            missing_pm_behavior=side.get("missing_pm_behavior", "create_invoice"),
        )
        pay_behavior = "succeed" if behavior == "decline_on_charge" else behavior
        inv, outcome = billing.start_subscription(sub, pay_behavior)
        if outcome == "action_required":
            side["pending"] = {"subscription": sub["id"], "invoice": inv["id"], "customer": cus["id"]}
            action = f"/c/pay/{cs['id']}/authenticate"
            return _page(
                "Authenticate payment",
                "<p id='3ds'>Your bank requires authentication for this payment.</p>"
                + _button(action, "Complete authentication")
                + _button(action, "Fail authentication"),
            )
        event = _complete(cs, cus, sub, inv)
        return Response.redirect(success_redirect(cs), [event["id"]])

    def _bank_debit(cs: Obj, succeed: bool, email: str | None) -> Response:
        """A delayed-notification payment: completed now with payment_status "unpaid", settled by the clock."""
        side = store.side(cs["id"])
        cus = _customer_for(cs, email)
        billing.attach_bank_account(cus, succeed)
        lines = [(store.objects[li["price"]], li["quantity"]) for li in side["line_items"]]
        sub = billing.create_subscription(
            cus,
            lines,
            trial_days=side.get("trial_days"),
            metadata=side.get("subscription_metadata"),
            automatic_tax=cs["automatic_tax"]["enabled"],
            missing_pm_behavior=side.get("missing_pm_behavior", "create_invoice"),
        )
        if side.get("trial_days"):
            inv, _ = billing.start_subscription(sub, "succeed")
            event = _complete(cs, cus, sub, inv)
            return Response.redirect(success_redirect(cs), [event["id"]])
        item = sub["items"]["data"][0]
        period = billing.period_lines(sub, item["current_period_start"], item["current_period_end"])
        inv = billing.issue_invoice(sub, sub["customer"], period, "subscription_create")
        billing.start_async_payment(inv, sub, succeed)
        store.side(inv["id"])["checkout_session"] = cs["id"]
        event = _complete(cs, cus, sub, inv, payment_status="unpaid")
        return Response.redirect(success_redirect(cs), [event["id"]])

    def _async_settled(inv: Obj, succeeded: bool) -> None:
        cs = store.find(store.side(inv["id"]).get("checkout_session"))
        if cs is None:
            return
        if succeeded:
            cs["payment_status"] = "paid"
            emu.events.emit("checkout.session.async_payment_succeeded", cs)
        else:
            emu.events.emit("checkout.session.async_payment_failed", cs)

    billing.async_settled_listeners.append(_async_settled)

    def checkout_authenticate(req: Request) -> Response:
        cs = store.find(req.path_params["id"])
        pending = store.side(cs["id"]).get("pending") if cs else None
        if cs is None or not pending or cs["status"] != "open":
            return _page("Checkout", "<p>Nothing to authenticate.</p>", 400)
        sub = store.get(pending["subscription"], "subscription")
        inv = store.get(pending["invoice"], "invoice")
        cus = store.get(pending["customer"], "customer")
        if sub["status"] != "incomplete" or inv["status"] != "open":
            return _page("Checkout", f"<p id='status'>Subscription is {escape(sub['status'])}.</p>", 410)
        succeed = req.params.get("action") == "complete_authentication"
        outcome = billing.complete_action(inv, sub, succeed)
        if outcome != "paid":
            return _page(
                "Authenticate payment",
                "<p class='error' id='error'>Authentication failed. The subscription stays incomplete.</p>"
                + _button(f"/c/pay/{cs['id']}/authenticate", "Complete authentication"),
                402,
            )
        store.side(cs["id"]).pop("pending", None)
        event = _complete(cs, cus, sub, inv)
        return Response.redirect(success_redirect(cs), [event["id"]])

    # ---- Portal -----------------------------------------------------------------------------------------

    def _portal_session(bps_id: str) -> Obj:
        session = store.find(bps_id)
        if session is None or session["object"] != "billing_portal.session":
            raise StripeError(404, "Unknown portal session", code="resource_missing")
        return session

    def _allowed_prices(conf: Obj) -> list[str]:
        out: list[str] = []
        for product in conf["features"]["subscription_update"]["products"]:
            out.extend(product["prices"])
        return out

    def portal_page(req: Request) -> Response:
        try:
            session = _portal_session(req.path_params["id"])
        except StripeError:
            return _page("Portal session not found", "<p>Unknown session.</p>", 404)
        conf = store.get(session["configuration"], "billing_portal.configuration")
        flow = session.get("flow") or {}
        action = f"/p/session/{session['id']}/action"
        focus = ((flow.get(flow.get("type") or "") or {}) or {}).get("subscription")
        subs = [
            s
            for s in store.all("subscription")
            if s["customer"] == session["customer"] and s["status"] not in ("canceled", "incomplete_expired")
        ]
        if focus:
            subs = [s for s in subs if s["id"] == focus]
        parts = [f"<p>Flow: <code>{escape(str(flow.get('type') or 'portal_homepage'))}</code></p>"]
        features = conf["features"]
        for sub in subs:
            item = sub["items"]["data"][0]
            parts.append(
                f"<div class='sub' id='{escape(sub['id'])}'><h2>{escape(item['price']['id'])}</h2>"
                f"<p>Status {escape(sub['status'])}; cancel at period end: {sub['cancel_at_period_end']}</p>"
            )
            fields = {"subscription": sub["id"]}
            if features["subscription_cancel"]["enabled"] and flow.get("type") in (None, "subscription_cancel"):
                if sub["cancel_at_period_end"]:
                    parts.append(_button(action, "Resume", fields))
                else:
                    parts.append(_button(action, "Cancel", fields))
            if features["subscription_update"]["enabled"] and flow.get("type") in (None, "subscription_update"):
                for price_id in _allowed_prices(conf):
                    if price_id != item["price"]["id"]:
                        parts.append(
                            _button(action, "Switch", {**fields, "price": price_id}).replace(
                                ">Switch<", f">Switch to {escape(price_id)}<"
                            )
                        )
            parts.append("</div>")
        if features["payment_method_update"]["enabled"] and flow.get("type") in (None, "payment_method_update"):
            for label, card in (("Update card", "4242424242424242"), ("Update card", "4000000000000341")):
                parts.append(_button(action, label, {"card": card}).replace(f">{label}<", f">{label} ({card[-4:]})<"))
        if session.get("return_url"):
            parts.append(f"<p><a id='return' href='{escape(session['return_url'])}'>Return</a></p>")
        return _page("Customer portal", "".join(parts))

    def portal_action(req: Request) -> Response:
        try:
            session = _portal_session(req.path_params["id"])
        except StripeError:
            return _page("Portal session not found", "<p>Unknown session.</p>", 404)
        conf = store.get(session["configuration"], "billing_portal.configuration")
        act = str(req.params.get("action") or "")
        cus = store.get(session["customer"], "customer")
        sub: Obj | None = None
        if req.params.get("subscription"):
            sub = store.get(str(req.params["subscription"]), "subscription")
            if sub["customer"] != cus["id"]:
                return _page("Customer portal", "<p>Not your subscription.</p>", 403)
        if act in ("cancel", "resume", "switch") and sub is None:
            return _page("Customer portal", "<p>Missing subscription.</p>", 400)
        if act in ("cancel", "resume") and sub is not None:
            before = copy.deepcopy(sub)
            if act == "cancel" and conf["features"]["subscription_cancel"]["mode"] == "immediately":
                billing.cancel(sub)
            else:
                sub["cancel_at_period_end"] = act == "cancel"
                sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if act == "cancel" else None
                sub["canceled_at"] = billing.now() if act == "cancel" else None
                if act == "cancel":
                    sub["cancellation_details"]["reason"] = "cancellation_requested"
                emu.events.emit("customer.subscription.updated", sub, diff(before, sub))
        elif act == "switch" and sub is not None:
            price_id = str(req.params.get("price") or "")
            if price_id not in _allowed_prices(conf):
                return _page("Customer portal", "<p class='error'>That plan is not offered.</p>", 400)
            item = sub["items"]["data"][0]
            changes, pdate = billing.proration_plan(sub, [{"id": item["id"], "price": price_id}], None)
            behavior = conf["features"]["subscription_update"]["proration_behavior"]
            lines = billing.proration_lines(sub, changes, pdate) if behavior != "none" else []
            before = copy.deepcopy(sub)
            billing.apply_items(sub, changes, pdate)
            emu.events.emit("customer.subscription.updated", sub, diff(before, sub))
            if lines and behavior == "always_invoice":
                inv = billing.issue_invoice(sub, sub["customer"], lines, "subscription_update")
                billing._after_collection(sub, inv, billing.collect(inv, sub))
            elif lines:
                store.side(sub["id"]).setdefault("pending_prorations", []).extend(lines)
        elif act.startswith("update_card"):
            billing.attach_card(cus, str(req.params.get("card") or "4242424242424242"))
            for other in store.all("subscription"):
                if other["customer"] != cus["id"] or other["status"] not in ("past_due", "unpaid"):
                    continue
                inv = store.find(other["latest_invoice"])
                if inv is not None and inv["status"] == "open":
                    billing._after_collection(other, inv, billing.collect(inv, other))
        else:
            return _page("Customer portal", "<p>Unknown action.</p>", 400)
        flow = session.get("flow") or {}
        after = flow.get("after_completion") or {}
        if after.get("type") == "redirect" and (after.get("redirect") or {}).get("return_url"):
            return Response.redirect(after["redirect"]["return_url"])
        return Response.redirect(f"/p/session/{session['id']}")

    r = emu.router
    page: Any = "page"
    r.add("GET", "/c/pay/{id}", checkout_page, page)
    r.add("POST", "/c/pay/{id}", checkout_submit, page)
    r.add("POST", "/c/pay/{id}/authenticate", checkout_authenticate, page)
    r.add("GET", "/p/session/{id}", portal_page, page)
    r.add("POST", "/p/session/{id}/action", portal_action, page)
