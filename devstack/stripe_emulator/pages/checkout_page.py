"""The hosted Checkout page `/c/pay/{id}`: pay, decline, requires action (then authenticate), bank debit."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from devstack.stripe_emulator.domain.checkout_payments import CheckoutPayments, Payment
from devstack.stripe_emulator.domain.checkout_sessions import CheckoutSessions
from devstack.stripe_emulator.domain.payment_methods import CARD_ALIASES
from devstack.stripe_emulator.routing import Request, Response, RouteSpec
from devstack.stripe_emulator.store import Obj, Store

from .html import button, notice, page
from .money import format_amount, format_recurring

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


def _item_row(item: Obj) -> str:
    seats = f" &times; {item['quantity']}" if (item["quantity"] or 1) > 1 else ""
    return f"<li>{escape(str(item['description']))}{seats}: {escape(format_recurring(item['price']))}</li>"


def _cancel_link(cs: Obj) -> str:
    """Stripe's back link: to the session's cancel_url (the session stays open until it expires)."""
    url = str(cs.get("cancel_url") or "")
    if not url:
        return ""
    return f"<p><a id='cancel' href='{escape(url)}'>&larr; Cancel and return to {escape(urlsplit(url).netloc)}</a></p>"


def _authentication_page(cs: Obj, error: str | None = None) -> Response:
    action = f"/c/pay/{cs['id']}/authenticate"
    return page(
        "Authenticate payment",
        (notice(error, "error") if error else "")
        + "<p id='3ds'>Your bank requires authentication for this payment (a 3D Secure test page).</p>"
        + button(action, "Complete authentication", element_id="complete-authentication")
        + button(action, "Fail authentication", element_id="fail-authentication")
        + _cancel_link(cs),
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
        return self._form(cs)

    def _form(self, cs: Obj, error: str | None = None) -> Response:
        """What the customer buys and pays today, one button per test card, each saying what it does."""
        side = self.store.side(cs["id"])
        trial_days = side.get("trial_days")
        rows = "".join(_item_row(item) for item in self.sessions.line_items_of(cs))
        if side.get("pricing_plan"):
            rows += f"<li>Pricing plan {escape(str(side['pricing_plan']))}</li>"
        currency = str(cs.get("currency") or "usd")
        due = format_amount(cs["amount_total"], currency)
        trial = (
            f"<p id='trial'>{trial_days}-day free trial: nothing is charged today; the first payment is due when"
            f" the trial ends.</p>"
            if trial_days
            else ""
        )
        verb = "Start trial" if trial_days else f"Subscribe and pay {due}"
        action = f"/c/pay/{cs['id']}"
        body = (
            (notice(error, "error") if error else "")
            + f"<ul id='items'>{rows}</ul>{trial}<p id='due'>Due today: <strong>{escape(due)}</strong></p>"
            + button(action, verb, {"card": DEFAULT_CARD}, value="pay", element_id="pay")
            + "<h2>Other test cards</h2>"
            + button(
                action,
                "Try a card that is declined (…0002)",
                {"card": "4000000000000002"},
                value="decline",
                element_id="pay-declined",
            )
            + button(
                action,
                f"{verb} with a card that requires authentication (…3155)",
                {"card": "4000002500003155"},
                value="requires_action",
                element_id="pay-requires-action",
            )
            + button(
                action,
                "Start trial with a card whose charges fail later (…0341)"
                if trial_days
                else "Try a card whose charges fail (…0341): declined",
                {"card": "4000000000000341"},
                value="decline_on_charge",
                element_id="pay-fails-later",
            )
        )
        if not side.get("pricing_plan"):
            body += button(
                action,
                f"{verb} by bank debit (settles in a few days)",
                {"card": "bank_debit"},
                value="bank_debit",
                element_id="pay-bank-debit",
            )
            body += button(
                action,
                f"{verb} by bank debit that fails when it settles",
                {"card": "bank_debit_fails"},
                value="bank_debit_fails",
                element_id="pay-bank-debit-fails",
            )
        body += f"<p class='muted'>Session <code>{escape(cs['id'])}</code></p>" + _cancel_link(cs)
        return page("Checkout", body)

    def submit(self, req: Request) -> Response:
        cs = _payable(self.store.find(req.path_params["id"]))
        if isinstance(cs, Response):
            return cs
        card = str(req.params.get("card") or CARD_ALIASES.get(str(req.params.get("action")), DEFAULT_CARD))
        payment = self.payments.pay(cs, CARD_ALIASES.get(card, card), req.params.get("email"))
        if payment.outcome == "unknown_card":
            return page("Checkout", notice("Unknown test card.", "error"), 400)
        if payment.outcome == "declined":
            # The page again, with the reason on top: the customer picks another card (Stripe's behaviour).
            return self._form(cs, "Your card was declined (card_declined). Nothing was charged; try another card.")
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
            return _authentication_page(
                cs, "Authentication failed: nothing was charged and the subscription stays incomplete."
            )
        return self._completed(cs, payment)

    @staticmethod
    def _completed(cs: Obj, payment: Payment) -> Response:
        """303 to success_url, once the completed event's deliveries had their first attempt."""
        return Response.redirect(success_redirect(cs), [payment.event_id])
