"""The composition root: builds every billing service and every route table once. Nothing else wires.

Collaborators are passed in constructors; the few reverse notifications (an invoice was paid, dunning gave up,
a bank debit settled, an event was emitted) are listener lists filled here, so no module imports one above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .api.catalog import PricesApi, PricingPlansApi, ProductsApi
from .api.checkout import CheckoutSessionsApi
from .api.control import BillingControlApi, ControlApi
from .api.customers import CustomersApi, PaymentMethodsApi
from .api.entitlements import EntitlementsApi
from .api.events import EventsApi
from .api.invoices import InvoicesApi
from .api.meter_events import MeterEventsApi
from .api.meters import MetersApi
from .api.portal import PortalApi
from .api.pricing_plan_subscriptions import PricingPlanSubscriptionsApi
from .api.subscriptions import SubscriptionsApi
from .api.test_clocks import TestClocksApi
from .api.webhooks import EventDestinationsApi, WebhookEndpointsApi
from .clock import Clock
from .domain.async_payments import AsyncPayments
from .domain.catalog import Catalog
from .domain.checkout_payments import CheckoutPayments
from .domain.checkout_sessions import CheckoutSessions
from .domain.customers import Customers
from .domain.dunning import Dunning
from .domain.entitlements import Entitlements
from .domain.invoice_lines import InvoiceLines
from .domain.invoices import Invoices
from .domain.meter_errors import MeterErrorReports
from .domain.meter_sessions import MeterSessions
from .domain.meters import Meters
from .domain.payment_methods import PaymentMethods
from .domain.pending_updates import PendingUpdates
from .domain.portal import PortalActions, PortalConfigurations
from .domain.pricing_plans import PricingPlans
from .domain.proration import Proration
from .domain.renewals import Renewals
from .domain.settings import Settings
from .domain.subscriptions import Subscriptions
from .domain.timeline import Timeline
from .events import EventBus
from .faults import Faults
from .pages.checkout_page import CheckoutPage
from .pages.portal_page import PortalPage
from .request_log import RequestLog
from .routing import Resource
from .schedule import BusinessTime
from .store import Store


@dataclass(frozen=True)
class Kernel:
    """What every service may use: state, time, events."""

    store: Store
    clock: Clock
    time: BusinessTime
    events: EventBus
    settings: Settings


@dataclass(frozen=True)
class Engine:
    """The billing engine's services."""

    payment_methods: PaymentMethods
    customers: Customers
    catalog: Catalog
    meters: Meters
    meter_sessions: MeterSessions
    meter_errors: MeterErrorReports
    lines: InvoiceLines
    invoices: Invoices
    subscriptions: Subscriptions
    proration: Proration
    pending_updates: PendingUpdates
    dunning: Dunning
    async_payments: AsyncPayments
    renewals: Renewals
    pricing_plans: PricingPlans
    entitlements: Entitlements
    checkout_sessions: CheckoutSessions
    checkout_payments: CheckoutPayments
    portal_configurations: PortalConfigurations
    portal_actions: PortalActions
    timeline: Timeline


def build_engine(k: Kernel) -> Engine:
    store, events, time, settings = k.store, k.events, k.time, k.settings
    payment_methods = PaymentMethods(store, events, time)
    catalog = Catalog(store, k.clock)
    meters = Meters(store, k.clock)
    meter_errors = MeterErrorReports(store, k.clock, events, settings, meters)
    lines = InvoiceLines(meters)
    invoices = Invoices(store, events, time, payment_methods)
    subscriptions = Subscriptions(store, events, time, invoices, lines)
    proration = Proration(time, catalog)
    pending_updates = PendingUpdates(store, events, time, invoices)
    dunning = Dunning(store, time, settings, invoices, subscriptions)
    async_payments = AsyncPayments(store, time, settings, invoices, subscriptions)
    renewals = Renewals(store, events, time, invoices, lines, subscriptions, dunning)
    pricing_plans = PricingPlans(store, events, time, settings, catalog, invoices)
    entitlements = Entitlements(store, events)
    customers = Customers(store, events, time, payment_methods)
    checkout_sessions = CheckoutSessions(store, k.clock, events, catalog)
    checkout_payments = CheckoutPayments(
        store, events, customers, payment_methods, invoices, lines, subscriptions, async_payments, pricing_plans
    )
    portal_actions = PortalActions(store, events, time, payment_methods, invoices, subscriptions, proration, dunning)
    timeline = Timeline(
        store,
        settings,
        subscriptions,
        renewals,
        pending_updates,
        dunning,
        async_payments,
        checkout_sessions,
        pricing_plans,
        meter_errors,
    )
    # Reverse notifications, in the order they run.
    invoices.paid_listeners.extend([pending_updates.on_invoice_paid, pricing_plans.on_invoice_paid])
    dunning.exhausted_listeners.append(pricing_plans.on_dunning_exhausted)
    async_payments.settled_listeners.append(checkout_payments.on_async_settled)
    events.listeners.append(entitlements.on_event)
    store.virtual_expanders[("checkout.session", "line_items")] = checkout_sessions.expand_line_items
    return Engine(
        payment_methods=payment_methods,
        customers=customers,
        catalog=catalog,
        meters=meters,
        meter_sessions=MeterSessions(k.clock, time),
        meter_errors=meter_errors,
        lines=lines,
        invoices=invoices,
        subscriptions=subscriptions,
        proration=proration,
        pending_updates=pending_updates,
        dunning=dunning,
        async_payments=async_payments,
        renewals=renewals,
        pricing_plans=pricing_plans,
        entitlements=entitlements,
        checkout_sessions=checkout_sessions,
        checkout_payments=checkout_payments,
        portal_configurations=PortalConfigurations(store, k.clock),
        portal_actions=portal_actions,
        timeline=timeline,
    )


def billing_resources(k: Kernel, e: Engine, tick: Callable[[], None]) -> list[Resource]:
    """The Stripe API, resource by resource."""
    store = k.store
    return [
        EntitlementsApi(store, e.entitlements),
        PricingPlanSubscriptionsApi(store),
        ProductsApi(store, e.catalog),
        PricesApi(store, e.catalog),
        PricingPlansApi(store),
        CustomersApi(store, k.events, e.customers, e.payment_methods, e.subscriptions, e.pricing_plans),
        PaymentMethodsApi(store, e.payment_methods),
        CheckoutSessionsApi(store, e.catalog, e.checkout_sessions),
        PortalApi(store, k.clock, e.portal_configurations),
        SubscriptionsApi(
            store,
            k.events,
            k.time,
            e.catalog,
            e.payment_methods,
            e.invoices,
            e.subscriptions,
            e.proration,
            e.pending_updates,
            e.dunning,
            e.renewals,
            tick,
        ),
        InvoicesApi(store, e.payment_methods, e.invoices, e.lines, e.subscriptions, e.proration),
        EventsApi(store),
        WebhookEndpointsApi(store, k.clock),
        EventDestinationsApi(store, k.clock, k.events.api_version),
        MetersApi(store, e.meters),
        MeterEventsApi(k.clock, k.settings, e.meters, e.meter_sessions, e.meter_errors),
        TestClocksApi(store, k.clock),
    ]


def control_and_page_resources(
    k: Kernel, e: Engine, faults: Faults, log: RequestLog, reset: Callable[[], None]
) -> list[Resource]:
    """`/_emulator/*` and the hosted pages."""
    return [
        ControlApi(k.store, k.clock, faults, log, k.events, k.settings, reset),
        BillingControlApi(k.store, e.payment_methods, e.meters, e.meter_errors, e.pricing_plans),
        CheckoutPage(k.store, e.checkout_sessions, e.checkout_payments),
        PortalPage(k.store, e.portal_actions),
    ]
