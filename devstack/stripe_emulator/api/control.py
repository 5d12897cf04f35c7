"""`/_emulator/*`: the control API (settings, reset, clock, faults, latency, request log, state, deliveries,
test cards, meter ledger and error reports, pricing-plan cancellation). No auth, no idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devstack.stripe_emulator.clock import Clock
from devstack.stripe_emulator.domain.meter_errors import MeterErrorReports
from devstack.stripe_emulator.domain.meters import Meters
from devstack.stripe_emulator.domain.payment_methods import PaymentMethods
from devstack.stripe_emulator.domain.pricing_plans import KIND as PRICING_PLAN_SUBSCRIPTION
from devstack.stripe_emulator.domain.pricing_plans import PricingPlans
from devstack.stripe_emulator.domain.settings import Settings
from devstack.stripe_emulator.errors import invalid, missing_param
from devstack.stripe_emulator.events import EventBus
from devstack.stripe_emulator.faults import Faults
from devstack.stripe_emulator.request_log import RequestLog
from devstack.stripe_emulator.routing import Request, RouteSpec
from devstack.stripe_emulator.store import Obj, Store, list_object


def _control(method: str, template: str, handler: Callable[[Request], Obj]) -> RouteSpec:
    return RouteSpec(method, template, handler, "control")


class ControlApi:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        faults: Faults,
        log: RequestLog,
        events: EventBus,
        settings: Settings,
        reset: Callable[[], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.faults = faults
        self.log = log
        self.events = events
        self.settings = settings
        self.reset_all = reset

    def routes(self) -> list[RouteSpec]:
        return [
            _control("GET", "/_emulator/settings", self.get_settings),
            _control("POST", "/_emulator/settings", self.set_settings),
            _control("POST", "/_emulator/reset", self.reset),
            _control("GET", "/_emulator/clock", self.get_clock),
            _control("POST", "/_emulator/clock/advance", self.advance_clock),
            _control("POST", "/_emulator/faults", self.add_fault),
            _control("GET", "/_emulator/faults", self.get_faults),
            _control("DELETE", "/_emulator/faults", self.clear_faults),
            _control("POST", "/_emulator/latency", self.set_latency),
            _control("GET", "/_emulator/requests", self.get_requests),
            _control("DELETE", "/_emulator/requests", self.clear_requests),
            _control("GET", "/_emulator/state", self.state),
            _control("GET", "/_emulator/state/{type}", self.state),
            _control("GET", "/_emulator/deliveries", self.deliveries),
        ]

    def get_settings(self, _req: Request) -> Obj:
        return self.settings.snapshot()

    def set_settings(self, req: Request) -> Obj:
        try:
            return self.settings.configure(**req.params)
        except (TypeError, ValueError) as exc:
            raise invalid(str(exc)) from None

    def reset(self, _req: Request) -> Obj:
        self.reset_all()
        return {"reset": True}

    def get_clock(self, _req: Request) -> Obj:
        return {"now": self.clock.now()}

    def advance_clock(self, req: Request) -> Obj:
        p = req.params
        if "to" in p:
            self.clock.advance_to(float(p["to"]))
        else:
            self.clock.advance(float(p.get("seconds", 0)) + 86400 * float(p.get("days", 0)))
        return {"now": self.clock.now()}

    def add_fault(self, req: Request) -> Obj:
        if not req.params.get("path"):
            raise missing_param("path")
        fault = self.faults.add_from_json(req.params)
        return {"added": fault.path, "faults": self.faults.snapshot()}

    def get_faults(self, _req: Request) -> Obj:
        return {"faults": self.faults.snapshot(), "latency_ms": self.faults.latency_ms}

    def clear_faults(self, _req: Request) -> Obj:
        self.faults.clear()
        return {"faults": []}

    def set_latency(self, req: Request) -> Obj:
        self.faults.latency_ms = int(req.params.get("ms", 0))
        return {"latency_ms": self.faults.latency_ms}

    def get_requests(self, req: Request) -> Obj:
        method = req.params.get("method")
        rows = self.log.select(req.params.get("path") or None, str(method).upper() if method else None)
        rows = [r for r in rows if r["kind"] != "control"]
        return list_object(rows, "/_emulator/requests")

    def clear_requests(self, _req: Request) -> Obj:
        self.log.clear()
        return {"cleared": True}

    def state(self, req: Request) -> Obj:
        kinds = [req.path_params["type"]] if "type" in req.path_params else sorted(self.store.by_type)
        return {k: [self.store.render(o) for o in self.store.all(k)] for k in kinds}

    def deliveries(self, _req: Request) -> Obj:
        return list_object([d.summary() for d in list(self.events.deliveries)], "/_emulator/deliveries")


class BillingControlApi:
    """Control routes that act on billing objects."""

    def __init__(
        self,
        store: Store,
        payment_methods: PaymentMethods,
        meters: Meters,
        meter_errors: MeterErrorReports,
        pricing_plans: PricingPlans,
    ) -> None:
        self.store = store
        self.payment_methods = payment_methods
        self.meters = meters
        self.meter_errors = meter_errors
        self.pricing_plans = pricing_plans

    def routes(self) -> list[RouteSpec]:
        return [
            _control("POST", "/_emulator/customers/{id}/card", self.set_card),
            _control("POST", "/_emulator/meter_errors/flush", self.flush_meter_errors),
            _control("GET", "/_emulator/meter_events", self.meter_events),
            _control("POST", "/_emulator/pricing_plan_subscriptions/{id}/cancel", self.cancel_pricing_plan),
        ]

    def set_card(self, req: Request) -> Obj:
        """Attach a test card (number or alias) and make it the customer's default."""
        cus = self.store.get(req.path_params["id"], "customer")
        card = req.params.get("card")
        if not card:
            raise missing_param("card")
        return self.store.render(self.payment_methods.attach_card(cus, str(card)))

    def flush_meter_errors(self, _req: Request) -> Obj:
        """Emit the pending meter error reports now."""
        reports = [self.store.render(e) for e in self.meter_errors.flush()]
        return list_object(reports, "/_emulator/meter_errors/flush")

    def meter_events(self, req: Request) -> Obj:
        """Raw accepted meter events (for oracles)."""
        customer: Any = req.params.get("customer")
        rows = [e for e in self.meters.meter_events if not customer or e["customer"] == customer]
        return list_object(rows, "/_emulator/meter_events")

    def cancel_pricing_plan(self, req: Request) -> Obj:
        """End a pricing-plan subscription (Stripe does it through v2 billing intents)."""
        ppsub = self.store.get(req.path_params["id"], PRICING_PLAN_SUBSCRIPTION)
        self.pricing_plans.cancel(ppsub)
        return self.store.render(ppsub)
