"""The hosted Checkout page `/c/pay/{id}`: pay, decline, requires action (then authenticate), bank debit."""

from __future__ import annotations

from html import escape

from devstack.stripe_emulator.domain.checkout_payments import CheckoutPayments, Payment
from devstack.stripe_emulator.domain.checkout_sessions import CheckoutSessions
from devstack.stripe_emulator.domain.payment_methods import CARD_ALIASES
from devstack.stripe_emulator.routing import Request, Response, RouteSpec
from devstack.stripe_emulator.store import Obj, Store

from .html import button, page

DEFAULT_CARD = "4242424242424242"


def success_redirect(cs: Obj) -> str:
    url = str(cs.get("success_url") or "")
    return url.replace("{CHECKOUT_SESSION_ID}", cs["id"]).replace("%7BCHECKOUT_SESSION_ID%7D", cs["id"])


def _payable(cs: Obj | None) -> Obj | Response:
    """The session, or the page saying why it cannot be paid (unknown, or no longer open)."""
    if cs is None or cs["object"] != "checkout.session":
        return page("Checkout session not found", "<p>Unknown session.</p>", 404)
    if cs["status"] != "open":
        return page("Checkout", f"<p id='status'>This session is {escape(cs['status'])}.</p>", 410)
    return cs


def _authentication_page(cs: Obj) -> Response:
    action = f"/c/pay/{cs['id']}/authenticate"
    return page(
        "Authenticate payment",
        "<p id='3ds'>Your bank requires authentication for this payment.</p>"
        + button(action, "Complete authentication")
        + button(action, "Fail authentication"),
    )


class CheckoutPage:
    def __init__(self, store: Store, sessions: CheckoutSessions, payments: CheckoutPayments) -> None:
        self.store = store
        self.sessions = sessions
        self.payments = payments

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("GET", "/c/pay/{id}", self.show, "page"),
            RouteSpec("POST", "/c/pay/{id}", self.submit, "page"),
            RouteSpec("POST", "/c/pay/{id}/authenticate", self.authenticate, "page"),
        ]

    def show(self, req: Request) -> Response:
        cs = _payable(self.store.find(req.path_params["id"]))
        if isinstance(cs, Response):
            return cs
        rows = "".join(
            f"<li>{escape(str(i['description']))}: {i['quantity'] or 'metered'} x "
            f"{i['price']['unit_amount']} {escape(i['price']['currency'])}</li>"
            for i in self.sessions.line_items_of(cs)
        )
        plan = self.store.side(cs["id"]).get("pricing_plan")
        if plan:
            rows += f"<li>Pricing plan {escape(plan)}</li>"
        action = f"/c/pay/{cs['id']}"
        body = (
            f"<p>Session <code>{escape(cs['id'])}</code>, total {cs['amount_total']} {escape(cs['currency'])}</p>"
            f"<ul>{rows}</ul>"
            + button(action, "Pay", {"card": "4242424242424242"})
            + button(action, "Decline", {"card": "4000000000000002"})
            + button(action, "Requires action", {"card": "4000002500003155"})
            + button(action, "Pay", {"card": "4000000000000341"}).replace(">Pay<", ">Pay (card fails later)<")
            + button(action, "Pay by bank debit (async)", {"card": "bank_debit"})
            + button(action, "Pay by bank debit (async, fails)", {"card": "bank_debit_fails"})
        )
        return page("Checkout", body)

    def submit(self, req: Request) -> Response:
        cs = _payable(self.store.find(req.path_params["id"]))
        if isinstance(cs, Response):
            return cs
        card = str(req.params.get("card") or CARD_ALIASES.get(str(req.params.get("action")), DEFAULT_CARD))
        payment = self.payments.pay(cs, CARD_ALIASES.get(card, card), req.params.get("email"))
        if payment.outcome == "unknown_card":
            return page("Checkout", "<p class='error'>Unknown test card.</p>", 400)
        if payment.outcome == "declined":
            return page(
                "Checkout",
                "<p class='error' id='error'>Your card was declined. (card_declined)</p>"
                + button(f"/c/pay/{cs['id']}", "Pay", {"card": DEFAULT_CARD}),
                402,
            )
        if payment.outcome == "action_required":
            return _authentication_page(cs)
        return self._completed(cs, payment)

    def authenticate(self, req: Request) -> Response:
        cs = self.store.find(req.path_params["id"])
        pending = self.store.side(cs["id"]).get("pending") if cs else None
        if cs is None or not pending or cs["status"] != "open":
            return page("Checkout", "<p>Nothing to authenticate.</p>", 400)
        payment = self.payments.authenticate(cs, pending, req.params.get("action") == "complete_authentication")
        if payment.outcome == "not_incomplete":
            return page("Checkout", f"<p id='status'>Subscription is {escape(payment.status)}.</p>", 410)
        if payment.outcome == "failed":
            return page(
                "Authenticate payment",
                "<p class='error' id='error'>Authentication failed. The subscription stays incomplete.</p>"
                + button(f"/c/pay/{cs['id']}/authenticate", "Complete authentication"),
                402,
            )
        return self._completed(cs, payment)

    @staticmethod
    def _completed(cs: Obj, payment: Payment) -> Response:
        """303 to success_url, once the completed event's deliveries had their first attempt."""
        return Response.redirect(success_redirect(cs), [payment.event_id])
