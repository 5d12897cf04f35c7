"""The hosted customer portal `/p/session/{id}`: cancel at period end (or now), resume, switch plan, update card."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from devstack.stripe_emulator.domain.portal import PortalActions, allowed_prices
from devstack.stripe_emulator.domain.subscriptions import ENDED_STATUSES, first_item
from devstack.stripe_emulator.routing import Request, Response, RouteSpec
from devstack.stripe_emulator.store import Obj, Store

from .html import button, notice, page
from .money import format_recurring

CARD_BUTTONS = ("4242424242424242", "4000000000000341")
SUBSCRIPTION_ACTIONS = ("cancel", "resume", "switch")


def _shows(flow: dict[str, Any], flow_type: str) -> bool:
    """Whether a section is on the page: always on the homepage, else only in its own flow."""
    return flow.get("type") in (None, flow_type)


def _date(epoch: Any) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%B %-d, %Y") if epoch else "the period end"


def _period_end(sub: Obj) -> Any:
    return sub.get("current_period_end") or first_item(sub).get("current_period_end")


def _price_name(store: Store, price: Obj) -> str:
    product = store.find(str(price.get("product") or "")) or {}
    return f"{product.get('name') or price['id']}: {format_recurring(price)}"


def _subscription_block(
    store: Store, sub: Obj, conf: Obj, flow: dict[str, Any], action: str, offered: list[str]
) -> str:
    features = conf["features"]
    item = first_item(sub)
    ends = sub.get("cancel_at") or (_period_end(sub) if sub["cancel_at_period_end"] else None)
    state = f"Cancels on {_date(ends)}" if ends else f"Renews on {_date(_period_end(sub))}"
    seats = f" \N{MULTIPLICATION SIGN} {item['quantity']}" if (item.get("quantity") or 1) > 1 else ""
    parts = [
        f"<div class='sub' id='{escape(sub['id'])}'><h2>{escape(_price_name(store, item['price']) + seats)}</h2>"
        f"<p>Status: {escape(sub['status'])}. {escape(state)}.</p>"
    ]
    fields = {"subscription": sub["id"]}
    if features["subscription_cancel"]["enabled"] and _shows(flow, "subscription_cancel"):
        if ends:
            parts.append(
                button(action, "Resume subscription (don't cancel)", fields, value="resume", element_id="resume")
            )
        elif features["subscription_cancel"]["mode"] == "immediately":
            parts.append(button(action, "Cancel now", fields, value="cancel", element_id="cancel"))
        else:
            label = f"Cancel at period end ({_date(_period_end(sub))})"
            parts.append(button(action, label, fields, value="cancel", element_id="cancel"))
    if features["subscription_update"]["enabled"] and _shows(flow, "subscription_update"):
        for price_id in offered:
            if price_id != item["price"]["id"]:
                price = store.find(price_id) or {"id": price_id}
                parts.append(f"<p class='muted'>{escape(_price_name(store, price))}</p>")
                parts.append(button(action, f"Switch to {price_id}", {**fields, "price": price_id}, value="switch"))
    parts.append("</div>")
    return "".join(parts)


def _card_buttons(action: str) -> str:
    labels = {
        CARD_BUTTONS[0]: "Use card ending 4242 as default",
        CARD_BUTTONS[1]: "Use card ending 0341 (its charges fail) as default",
    }
    return "<h2>Payment method</h2>" + "".join(
        button(action, labels[card], {"card": card}, value="update_card", element_id=f"card-{card[-4:]}")
        for card in CARD_BUTTONS
    )


class PortalPage:
    def __init__(self, store: Store, actions: PortalActions) -> None:
        self.store = store
        self.actions = actions

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/p/session/{id}", self.show, "page"),
            RouteSpec("POST", "/p/session/{id}/action", self.act, "page"),
        ]

    def _session(self, bps_id: str) -> Obj | None:
        session = self.store.find(bps_id)
        if session is None or session["object"] != "billing_portal.session":
            return None
        return session

    def show(self, req: Request) -> Response:
        session = self._session(req.path_params["id"])
        if session is None:
            return page("Portal session not found", "<p>Unknown session.</p>", 404)
        conf = self.store.get(session["configuration"], "billing_portal.configuration")
        flow = session.get("flow") or {}
        action = f"/p/session/{session['id']}/action"
        focus = ((flow.get(flow.get("type") or "") or {}) or {}).get("subscription")
        subs = [
            s
            for s in self.store.all("subscription")
            if s["customer"] == session["customer"] and s["status"] not in ENDED_STATUSES
        ]
        if focus:
            subs = [s for s in subs if s["id"] == focus]
        # What the last action did, shown once (Stripe's portal confirms every change).
        done = self.store.side(session["id"]).pop("notice", None)
        parts = [notice(done) if done else ""]
        parts.append(f"<p class='muted'>Flow: <code>{escape(str(flow.get('type') or 'portal_homepage'))}</code></p>")
        # Exactly the configuration's products and prices, as Stripe's portal offers them (archived ones never).
        offered = allowed_prices(conf, self.store)
        parts.extend(_subscription_block(self.store, sub, conf, flow, action, offered) for sub in subs)
        if conf["features"]["payment_method_update"]["enabled"] and _shows(flow, "payment_method_update"):
            parts.append(_card_buttons(action))
        if session.get("return_url"):
            host = urlsplit(session["return_url"]).netloc
            parts.append(
                f"<p><a id='return' href='{escape(session['return_url'])}'>&larr; Return to {escape(host)}</a></p>"
            )
        return page("Customer portal", "".join(parts))

    def act(self, req: Request) -> Response:
        session = self._session(req.path_params["id"])
        if session is None:
            return page("Portal session not found", "<p>Unknown session.</p>", 404)
        conf = self.store.get(session["configuration"], "billing_portal.configuration")
        act = str(req.params.get("action") or "")
        cus = self.store.get(session["customer"], "customer")
        sub: Obj | None = None
        if req.params.get("subscription"):
            sub = self.store.get(str(req.params["subscription"]), "subscription")
            if sub["customer"] != cus["id"]:
                return page("Customer portal", "<p>Not your subscription.</p>", 403)
        if act in SUBSCRIPTION_ACTIONS and sub is None:
            return page("Customer portal", "<p>Missing subscription.</p>", 400)
        refusal = self._apply(act, sub, cus, conf, req.params)
        if refusal is not None:
            return refusal
        self.store.side(session["id"])["notice"] = self._outcome(act, sub, cus, req.params)
        after = (session.get("flow") or {}).get("after_completion") or {}
        if after.get("type") == "redirect" and (after.get("redirect") or {}).get("return_url"):
            return Response.redirect(after["redirect"]["return_url"])
        return Response.redirect(f"/p/session/{session['id']}")

    def _outcome(self, act: str, sub: Obj | None, cus: Obj, params: dict[str, Any]) -> str:
        """The confirmation the page shows after an action, read from the objects it changed."""
        if act.startswith("update_card"):
            card = str(params.get("card") or "4242424242424242")
            owed = [
                s
                for s in self.store.all("subscription")
                if s["customer"] == cus["id"] and s["status"] in ("past_due", "unpaid")
            ]
            retried = " Open invoices were retried and are still unpaid." if owed else ""
            return f"Card ending {card[-4:]} is now your default payment method.{retried}"
        assert sub is not None
        if act == "switch":
            return f"Switched to {_price_name(self.store, first_item(sub)['price'])}."
        if sub["status"] in ENDED_STATUSES:
            return "Your subscription is canceled."
        if act == "cancel":
            return f"Your subscription will end on {_date(sub.get('cancel_at') or _period_end(sub))}."
        return "Your subscription will continue; nothing ends at the period end."

    def _apply(self, act: str, sub: Obj | None, cus: Obj, conf: Obj, params: dict[str, Any]) -> Response | None:
        """Do what the button says; a page when it cannot be done."""
        if act in ("cancel", "resume") and sub is not None:
            self.actions.cancel_or_resume(sub, act == "cancel", conf)
        elif act == "switch" and sub is not None:
            price_id = str(params.get("price") or "")
            if price_id not in allowed_prices(conf, self.store):
                return page("Customer portal", "<p class='error'>That plan is not offered.</p>", 400)
            self.actions.switch(sub, price_id, conf)
        elif act.startswith("update_card"):
            self.actions.update_card(cus, str(params.get("card") or "4242424242424242"))
        else:
            return page("Customer portal", "<p>Unknown action.</p>", 400)
        return None
