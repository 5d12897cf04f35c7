"""One module per resource family; each exposes `register(emu)` adding its routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.stripe_emulator.app import StripeEmulator


def register_all(emu: StripeEmulator) -> None:
    from devstack.stripe_emulator import pages
    from devstack.stripe_emulator.resources import (
        catalog,
        checkout,
        control,
        customers,
        events_api,
        invoices,
        meters,
        portal,
        subscriptions,
        webhooks,
    )

    for module in (
        catalog,
        customers,
        checkout,
        portal,
        subscriptions,
        invoices,
        events_api,
        webhooks,
        meters,
        control,
        pages,
    ):
        module.register(emu)
