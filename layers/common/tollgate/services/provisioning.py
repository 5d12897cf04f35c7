"""Stripe set up as code, the use case: describe what the stack needs in Stripe, plan it against the account,
apply it (and, on the stack's deletion, archive what it owns).

The description comes from what the stack already knows: the plan catalog (products, prices, entitlement
features), the usage meter event names, the event types the webhook handles (the handler tables, so a new handler
is subscribed to by the next deploy), the webhook URL and the portal return URL. Run by the ``provisioner``
function as a CloudFormation custom resource on every deploy, by ``make provision``, and by the local stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tollgate import errors
from tollgate.config import PlanCatalog, ProvisioningSettings
from tollgate.domain import provisioning as p
from tollgate.domain.signatures import fingerprint
from tollgate.observability import logger
from tollgate.ports.storage import SigningSecretStore
from tollgate.ports.stripe import StripeAccount
from tollgate.services.webhook_handlers import SNAPSHOT_HANDLERS, THIN_HANDLERS


def feature_specs(catalog: PlanCatalog) -> tuple[p.FeatureSpec, ...]:
    named = {f.lookup_key: f.name for f in catalog.features}
    keys = p.names(k for plan in catalog.plans if plan.provisioned for k in plan.features)
    return tuple(p.FeatureSpec(k, named.get(k) or k.replace("_", " ").replace("-", " ").capitalize()) for k in keys)


def product_specs(catalog: PlanCatalog) -> tuple[p.ProductSpec, ...]:
    """One product per plan that describes its prices; plans naming a price id or a pricing plan are not ours."""
    return tuple(
        p.ProductSpec(
            key=plan.key,
            name=plan.name,
            description=plan.description,
            prices=tuple(
                p.PriceSpec(
                    lookup_key=price.lookup_key,
                    unit_amount=price.unit_amount,
                    currency=price.currency,
                    interval=price.interval,
                    interval_count=price.interval_count,
                    meter=price.meter,
                    nickname=price.nickname,
                )
                for price in plan.prices
            ),
            features=plan.features,
            min_quantity=plan.min_quantity,
            max_quantity=plan.max_quantity,
        )
        for plan in catalog.plans
        if plan.provisioned
    )


def endpoint_specs(
    webhook_url: str | None, api_version: str, eventbridge: p.EventBridgeTarget | None = None, *, webhook: bool = True
) -> tuple[p.EndpointSpec, ...]:
    """Where Stripe delivers exactly the types the handler tables hold: over HTTP, the webhook endpoint for the
    snapshot handlers (pinned to the SDK's API version) and an event destination for the thin ones; through
    EventBridge, one ``amazon_eventbridge`` destination per payload style (each gets its own partner event source)."""
    specs: list[p.EndpointSpec] = []
    if webhook and webhook_url:
        specs += [
            p.EndpointSpec("webhook_endpoint", webhook_url, p.names(SNAPSHOT_HANDLERS), api_version),
            p.EndpointSpec("event_destination", webhook_url, p.names(THIN_HANDLERS), None),
        ]
    if eventbridge is not None:
        specs += [
            p.EndpointSpec("event_destination", "", p.names(SNAPSHOT_HANDLERS), api_version, eventbridge),
            p.EndpointSpec("event_destination", "", p.names(THIN_HANDLERS), None, eventbridge),
        ]
    return tuple(specs)


def describe(inputs: ProvisioningSettings, api_version: str) -> p.StripeDescription:
    catalog = inputs.plan_catalog
    metered = {price.meter for plan in catalog.plans for price in plan.prices if price.meter}
    unknown = metered - set(inputs.meter_event_names)
    if unknown:
        raise errors.ConfigurationError(
            f"metered prices name meters the usage reporter does not send: {sorted(unknown)} "
            "(add them to UsageMeterEventNames)"
        )
    products = product_specs(catalog)
    return p.StripeDescription(
        owner=inputs.owner,
        features=feature_specs(catalog),
        meters=tuple(p.MeterSpec(name, name.replace("_", " ")) for name in inputs.meter_event_names),
        products=products,
        portal=p.PortalSpec(inputs.portal_return_url) if products else None,
        endpoints=endpoint_specs(
            inputs.webhook_url,
            api_version,
            _eventbridge_target(inputs),
            webhook=inputs.event_ingress != "eventbridge",
        ),
    )


def _eventbridge_target(inputs: ProvisioningSettings) -> p.EventBridgeTarget | None:
    if inputs.event_ingress == "webhook" or not inputs.aws_account_id or not inputs.aws_region:
        return None
    return p.EventBridgeTarget(inputs.aws_account_id, inputs.aws_region)


@dataclass(frozen=True, slots=True)
class ProvisioningReport:
    """What one run planned (and, unless it was a dry run, applied)."""

    owner: str
    applied: bool
    summary: str
    changes: tuple[str, ...]
    notes: tuple[str, ...] = ()
    description: str = ""  # the description's fingerprint
    portal_configuration_id: str | None = None
    webhook_endpoint_id: str | None = None
    event_destination_id: str | None = None
    secrets_added: int = 0
    secrets_removed: int = 0
    #: The partner event sources of the EventBridge destinations (the stack names its buses after them).
    snapshot_event_source: str | None = None
    thin_event_source: str | None = None

    def data(self) -> dict[str, str]:
        """Flat string values for a custom resource's ``Data`` (CloudFormation ``!GetAtt``s them)."""
        return {
            "Summary": self.summary,
            "Description": self.description,
            "Changes": str(len(self.changes)),
            "PortalConfigurationId": self.portal_configuration_id or "",
            "WebhookEndpointId": self.webhook_endpoint_id or "",
            "EventDestinationId": self.event_destination_id or "",
            "SnapshotEventSourceName": self.snapshot_event_source or "",
            "ThinEventSourceName": self.thin_event_source or "",
        }


@dataclass
class _Run:
    """The ids an apply learned: created objects (for Refs) and the endpoints and portal it ended with."""

    ids: dict[str, str] = field(default_factory=dict)
    secrets_added: int = 0
    event_sources: dict[str, str] = field(default_factory=dict)  # slot -> partner event source name


@dataclass(frozen=True)
class Provisioner:
    account: StripeAccount
    secrets: SigningSecretStore
    api_version: str
    key_is_live: Callable[[], bool]
    clock: Callable[[], float] = time.time

    # ---- the three operations --------------------------------------------------------------------------------

    def plan(self, inputs: ProvisioningSettings, *, rotate: bool = False) -> ProvisioningReport:
        """What an apply would change (read-only: no Stripe or secret write)."""
        description = describe(inputs, self.api_version)
        planned, account = self._plan(description, rotate)
        return self._report(description, planned, account, _Run(), applied=False)

    def apply(self, inputs: ProvisioningSettings, *, rotate: bool = False) -> ProvisioningReport:
        description = describe(inputs, self.api_version)
        self._refuse_live_mode(inputs.allow_live_mode)
        planned, account = self._plan(description, rotate)
        if planned.conflicts:
            raise errors.ProvisioningRefused("; ".join(planned.conflicts))
        run = self._execute(planned, account)
        removed = self.secrets.remove(planned.prune_fingerprints) if planned.prune_fingerprints else 0
        logger.info("stripe provisioned", owner=description.owner, summary=planned.summary())
        return self._report(description, planned, account, run, applied=True, removed=removed)

    def teardown(self, owner: str, *, allow_live_mode: bool) -> ProvisioningReport:
        """The stack is deleted: archive, deactivate or disable what it owns; delete nothing."""
        self._refuse_live_mode(allow_live_mode)
        account = self.account.observe(owner)
        planned = p.plan_teardown(owner, account)
        self._execute(planned, account)
        return ProvisioningReport(owner, True, planned.summary(), tuple(planned.lines()))

    # ---- steps -----------------------------------------------------------------------------------------------

    def _refuse_live_mode(self, allowed: bool) -> None:
        if self.key_is_live() and not allowed:
            raise errors.ProvisioningRefused(
                "the Stripe key is a live-mode key and live mode was not allowed (AllowStripeLiveMode / --live)"
            )

    def _plan(self, description: p.StripeDescription, rotate: bool) -> tuple[p.Plan, p.Account]:
        account = self.account.observe(description.owner)
        planned = p.plan(
            description,
            account,
            now=int(self.clock()),
            signing_secrets=self.secrets.fingerprints(),
            rotate=rotate,
        )
        return planned, account

    def _execute(self, planned: p.Plan, account: p.Account) -> _Run:
        owned = account.owned_ids(planned.owner)
        run = _Run()
        for change in planned.changes:
            if change.action in p.CHANGES_EXISTING and change.target not in owned:
                # The planner never does this; the applier refuses anyway, so an unowned object is never changed.
                raise errors.ProvisioningRefused(f"{change.line()}: {change.target} is not owned by {planned.owner}")
            self._one(change, planned.owner, run)
        return run

    def _one(self, change: p.Change, owner: str, run: _Run) -> None:
        params = p.resolve_refs(change.params, run.ids)
        parent = p.resolve_refs(change.parent, run.ids) if change.parent is not None else None
        executed = self.account.execute(change, params, parent, change.idempotency_key(owner))
        if change.creates:
            run.ids[change.creates] = executed.id
            if executed.event_source:
                run.event_sources[change.creates] = executed.event_source
        if executed.signing_secret:
            # The secret is shown once: into the stack's secret first, then its fingerprint onto the endpoint.
            self.secrets.add(executed.signing_secret)
            run.secrets_added += 1
            marks = {
                **change.params.get("metadata", {}),
                p.SECRET_FINGERPRINT_KEY: fingerprint(executed.signing_secret),
            }
            self.account.set_metadata(change.kind, executed.id, marks, f"{change.idempotency_key(owner)}:fingerprint")
        logger.info("stripe provisioning change", change=change.line(), object_id=executed.id)

    def _report(
        self,
        description: p.StripeDescription,
        planned: p.Plan,
        account: p.Account,
        run: _Run,
        *,
        applied: bool,
        removed: int = 0,
    ) -> ProvisioningReport:
        return ProvisioningReport(
            owner=description.owner,
            applied=applied,
            summary=planned.summary(),
            changes=tuple(c.line() for c in planned.changes),
            notes=(*planned.conflicts, *planned.notes),
            description=description.fingerprint(),
            portal_configuration_id=run.ids.get("portal") or _owned_portal(account, description.owner),
            webhook_endpoint_id=run.ids.get("webhook:snapshot")
            or _primary(account, description.owner, "webhook:snapshot"),
            event_destination_id=run.ids.get("webhook:thin") or _primary(account, description.owner, "webhook:thin"),
            secrets_added=run.secrets_added,
            secrets_removed=removed,
            snapshot_event_source=run.event_sources.get("eventbridge:snapshot")
            or _event_source(account, description.owner, "eventbridge:snapshot"),
            thin_event_source=run.event_sources.get("eventbridge:thin")
            or _event_source(account, description.owner, "eventbridge:thin"),
        )


def _owned_portal(account: p.Account, owner: str) -> str | None:
    owned = [c for c in account.portals if c.metadata.get(p.OWNER_KEY) == owner and c.active]
    return owned[0].id if owned else None


def _primary(account: p.Account, owner: str, slot: str) -> str | None:
    for endpoint in account.endpoints:
        marks: Mapping[str, Any] = endpoint.metadata
        mine = marks.get(p.OWNER_KEY) == owner and marks.get(p.SLOT_KEY) == slot
        if mine and endpoint.enabled and p.RETIRING_SINCE_KEY not in marks:
            return endpoint.id
    return None


def _event_source(account: p.Account, owner: str, slot: str) -> str | None:
    for endpoint in account.endpoints:
        marks: Mapping[str, Any] = endpoint.metadata
        mine = marks.get(p.OWNER_KEY) == owner and marks.get(p.SLOT_KEY) == slot
        if (
            mine
            and endpoint.enabled
            and p.RETIRING_SINCE_KEY not in marks
            and endpoint.event_source_status != "deleted"
        ):
            return endpoint.event_source
    return None


@dataclass
class ProvisionedPortal:
    """The portal configuration provisioning made for this stack, looked up once per execution environment and
    re-checked after ``ttl_seconds`` (the portal function uses it when no PORTAL_CONFIGURATION_ID is set)."""

    find: Callable[[], str | None]
    ttl_seconds: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _found: str | None = None
    _at: float | None = None

    def __call__(self) -> str | None:
        now = self.clock()
        if self._at is None or now - self._at >= self.ttl_seconds:
            self._found, self._at = self.find(), now
        return self._found


#: A first deploy creates the secret empty; the custom resource waits this long for the operator to put the key.
DEFAULT_KEY_WAIT_SECONDS = 600.0
PENDING = "pending: the stack's secret holds no Stripe API key yet"


@dataclass(frozen=True)
class StackProvisioning:
    """The deployment's side: what the CloudFormation custom resource does on create, update and delete.

    Create and update apply the description in the resource's properties (a rollback sends the previous
    properties, so it applies the previous description: a new price is archived again and the earlier one takes
    its lookup key back). Delete archives what the stack owns. Without an API key in the secret yet (a first
    deploy), it waits up to ``key_wait_seconds`` for one, then reports itself pending rather than failing the
    stack (``make provision ARGS=--apply`` finishes the job).
    """

    provisioner: Provisioner
    api_key_present: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    poll_seconds: float = 5.0

    def deploy(self, properties: Mapping[str, Any], *, key_wait_seconds: float) -> ProvisioningReport:
        inputs = ProvisioningSettings.from_properties(properties)
        if not self._await_api_key(key_wait_seconds):
            logger.warning("stripe provisioning pending: no API key", owner=inputs.owner)
            return ProvisioningReport(inputs.owner, False, PENDING + "; put it, then run make provision", ())
        return self.provisioner.apply(inputs)

    def remove(self, properties: Mapping[str, Any]) -> ProvisioningReport:
        owner = str(properties.get("Owner") or "")
        if not owner or not self.api_key_present():
            # Nothing was provisioned without a key (or the properties never were valid): nothing to archive.
            return ProvisioningReport(owner, False, "nothing to archive", ())
        allow_live = str(properties.get("AllowLiveMode", "false")).lower() == "true"
        return self.provisioner.teardown(owner, allow_live_mode=allow_live)

    def _await_api_key(self, wait_seconds: float) -> bool:
        deadline = self.clock() + max(0.0, wait_seconds)
        while not self.api_key_present():
            if self.clock() + self.poll_seconds > deadline:
                return False
            self.sleep(self.poll_seconds)
        return True
