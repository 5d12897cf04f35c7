"""Proration: resolve an item change, credit unused time at the old price, charge the rest at the new one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from devstack.stripe_emulator.errors import invalid
from devstack.stripe_emulator.schedule import BusinessTime
from devstack.stripe_emulator.store import Obj

from .catalog import Catalog
from .invoice_lines import line
from .periods import period_end
from .subscriptions import item_by_id, plan_of

# One item change: (existing item or None, new price, new quantity).
Change = tuple[Obj | None, Obj, int]


def _interval(price: Obj) -> Any:
    return (price.get("recurring") or {}).get("interval")


class Proration:
    def __init__(self, time: BusinessTime, catalog: Catalog) -> None:
        self.time = time
        self.catalog = catalog

    def plan(self, sub: Obj, item_params: list[dict[str, Any]], proration_date: int | None) -> tuple[list[Change], int]:
        """Resolve `items[...]` into changes and the proration date (now unless given)."""
        now = self.time.now()
        pdate = now if proration_date is None else int(proration_date)
        changes = [self._change(sub, i, spec) for i, spec in enumerate(item_params)]
        for item, _, _ in changes:
            if item is not None and not item["current_period_start"] <= pdate <= item["current_period_end"]:
                raise invalid(
                    "proration_date must be within the subscription's current billing period.",
                    param="proration_date",
                )
        return changes, pdate

    def _change(self, sub: Obj, i: int, spec: dict[str, Any]) -> Change:
        item = item_by_id(sub, spec["id"]) if spec.get("id") else None
        if spec.get("id") and item is None:
            raise invalid(f"No such subscription item: '{spec['id']}'", param=f"items[{i}][id]")
        if item is None and len(sub["items"]["data"]) == 1 and not spec.get("id") and spec.get("price"):
            raise invalid(
                "Pass items[0][id] to change an existing item's price (adding items is not emulated).",
                param=f"items[{i}][id]",
            )
        price = self.catalog.price(spec["price"], f"items[{i}][price]") if spec.get("price") else item["price"]  # type: ignore[index]
        qty = (
            int(spec["quantity"]) if spec.get("quantity") not in (None, "") else int((item or {}).get("quantity") or 1)
        )
        return item, price, qty

    def lines(self, sub: Obj, changes: list[Change], pdate: int) -> list[Obj]:
        """Credit and debit lines per changed licensed item (each rounded); none while trialing."""
        if sub["status"] == "trialing":
            return []
        lines: list[Obj] = []
        for item, price, qty in changes:
            if item is None:
                continue
            old_price, old_qty = item["price"], int(item["quantity"] or 1)
            if old_price["id"] == price["id"] and old_qty == qty:
                continue
            if (old_price.get("recurring") or {}).get("usage_type") == "metered":
                continue
            lines.extend(_credit_and_debit(sub, item, price, qty, pdate))
        return lines

    @staticmethod
    def apply(sub: Obj, changes: list[Change], pdate: int) -> None:
        """Put the new prices and quantities on the items; an interval change restarts the period at `pdate`,
        except during a trial, whose period is the trial itself: it still ends at `trial_end` (then bills the new
        price's first full period), as on Stripe."""
        for item, price, qty in changes:
            if item is None:
                continue
            interval_changed = _interval(item["price"]) != _interval(price) and sub["status"] != "trialing"
            item["price"] = copy.deepcopy(price)
            item["plan"] = plan_of(price)
            if item["quantity"] is not None:
                item["quantity"] = qty
            if interval_changed:
                item["current_period_start"] = pdate
                item["current_period_end"] = period_end(pdate, price)
                sub["billing_cycle_anchor"] = pdate


def _credit_and_debit(sub: Obj, item: Obj, price: Obj, qty: int, pdate: int) -> list[Obj]:
    old_price, old_qty = item["price"], int(item["quantity"] or 1)
    start, end = item["current_period_start"], item["current_period_end"]
    frac = (end - pdate) / (end - start) if end > start else 0.0
    credit = -round(int(old_price["unit_amount"] or 0) * old_qty * frac)
    if _interval(old_price) == _interval(price):
        debit = round(int(price["unit_amount"] or 0) * qty * frac)
        new_end = end
    else:
        debit = int(price["unit_amount"] or 0) * qty
        new_end = period_end(pdate, price)
    day = datetime.fromtimestamp(pdate, UTC).strftime("%d %b %Y")
    return [
        line(
            sub,
            item,
            old_price,
            old_qty,
            credit,
            pdate,
            end,
            f"Unused time on {old_qty} x {old_price['product']} after {day}",
            proration=True,
        ),
        line(
            sub,
            item,
            price,
            qty,
            debit,
            pdate,
            new_end,
            f"Remaining time on {qty} x {price['product']} after {day}",
            proration=True,
        ),
    ]
