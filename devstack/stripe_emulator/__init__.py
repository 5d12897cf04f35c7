"""A stateful Stripe emulator speaking stripe-python 16.1.0's wire format (see `app.StripeEmulator`)."""

from __future__ import annotations

from .app import StripeEmulator
from .clock import Clock
from .faults import Faults
from .webhook_delivery import sign

__all__ = ["Clock", "Faults", "StripeEmulator", "sign"]
