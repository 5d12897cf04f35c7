"""Invoice line items: a subscription item's period (licensed) or its usage (metered), and single lines."""

from __future__ import annotations

from devstack.stripe_emulator.ids import new_id
from devstack.stripe_emulator.store import Obj

from .meters import Meters


def line(
    sub: Obj | None,
    item: Obj | None,
    price: Obj,
    quantity: int,
    amount: int,
    start: int,
    end: int,
    description: str,
    proration: bool = False,
) -> Obj:
    return {
        "id": new_id("il", 24),
        "object": "line_item",
        "amount": amount,
        "currency": price.get("currency", "usd"),
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub["id"] if sub else None,
                "subscription_item": item["id"] if item else None,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": end, "start": start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price.get("product")},
            "type": "price_details",
            "unit_amount_decimal": str(price.get("unit_amount") or 0),
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": sub["id"] if sub else None,
        "subtotal": amount,
        "taxes": [],
    }


class InvoiceLines:
    def __init__(self, meters: Meters) -> None:
        self.meters = meters

    def period_lines(self, sub: Obj, start: int, end: int, usage_start: int | None = None) -> list[Obj]:
        """Lines for the period [start, end): licensed items in advance, metered usage of [usage_start, start)
        in arrears (none without `usage_start`)."""
        lines: list[Obj] = []
        for item in sub["items"]["data"]:
            if (item["price"].get("recurring") or {}).get("usage_type") == "metered":
                if usage_start is not None:
                    lines.append(self._usage_line(sub, item, usage_start, start))
                continue
            lines.append(self._licensed_line(sub, item, start, end))
        return lines

    def _usage_line(self, sub: Obj, item: Obj, usage_start: int, start: int) -> Obj:
        price = item["price"]
        qty = self.meters.usage_between(price["recurring"].get("meter"), sub["customer"], usage_start, start)
        amount = qty * int(price["unit_amount"] or 0)
        return line(
            sub, item, price, qty, amount, usage_start, start, f"{qty} x {price.get('nickname') or price['id']}"
        )

    @staticmethod
    def _licensed_line(sub: Obj, item: Obj, start: int, end: int) -> Obj:
        price = item["price"]
        qty = int(item["quantity"] or 1)
        amount = 0 if sub["status"] == "trialing" else qty * int(price["unit_amount"] or 0)
        desc = f"{qty} x {price.get('nickname') or price['product']}"
        if sub["status"] == "trialing":
            desc = f"Trial period for {price.get('nickname') or price['product']}"
        return line(sub, item, price, qty, amount, start, end, desc)
