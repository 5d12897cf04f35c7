"""Amounts as a customer reads them: Stripe's smallest-unit integers in the currency's units, prices with their
interval (``$9.00 per month``, ``$0.01 per unit, billed monthly by usage``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# https://docs.stripe.com/currencies#zero-decimal and the three-decimal ones.
ZERO_DECIMAL = frozenset(
    ("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf")
)
THREE_DECIMAL = frozenset(("bhd", "jod", "kwd", "omr", "tnd"))
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}


def minor_unit_digits(currency: str) -> int:
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def format_amount(amount: int | None, currency: str) -> str:
    """``900, "usd"`` -> ``$9.00``; ``500, "jpy"`` -> ``¥500``; an unknown symbol -> ``9.00 CHF``."""
    digits = minor_unit_digits(currency)
    value = Decimal(int(amount or 0)).scaleb(-digits)
    number = f"{value:,.{digits}f}"
    symbol = SYMBOLS.get(currency.lower())
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def format_recurring(price: dict[str, Any]) -> str:
    """A price as the page shows it: amount and interval, metered prices per unit."""
    recurring = price.get("recurring") or {}
    interval, count = recurring.get("interval"), int(recurring.get("interval_count") or 1)
    every = (f"every {count} {interval}s" if count > 1 else f"per {interval}") if interval else "once"
    amount = format_amount(price.get("unit_amount"), str(price.get("currency") or "usd"))
    if recurring.get("usage_type") == "metered":
        billed = f"{interval}ly" if interval in ("month", "year", "week") else every
        return f"{amount} per unit, billed {billed} by usage"
    return f"{amount} {every}"
