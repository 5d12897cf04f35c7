"""The whole product on 127.0.0.1: AWS stand-ins, the Stripe emulator, the HTTP API and the SQS poller.

``LocalStack`` is what ``make dev`` runs in the foreground and what the e2e tests start once per session. Every
local resource comes from template.yaml; the only local-specific inputs are endpoints and development credentials,
handed to the functions as configuration (``AWS_ENDPOINT_URL``, ``STRIPE_API_BASE``, ``STRIPE_METER_EVENTS_BASE``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import requests

from devstack.aws_resources import (
    CreatedResource,
    MotoServer,
    after_custom_resources,
    create_from_template,
    local_clients,
)
from devstack.cloudformation import CustomResourcePlayer, CustomResourceResponse, ResponseServer
from devstack.function_logs import LogView
from devstack.functions import FunctionHost, FunctionSpec, functions_from_template, lambda_environment
from devstack.http_api import HttpApiEmulator, http_api_from_template
from devstack.iam_authorizer import LocalPrincipals, Principal, invoke_patterns_from_template
from devstack.jwt_authorizer import CachingJwks
from devstack.parameters import InvalidParameters, parameter_problems, settings_problems
from devstack.sqs_poller import SqsPoller, sqs_sources_from_template
from devstack.stream_poller import StreamMapping, StreamPoller
from devstack.stripe_emulator.eventbridge_delivery import EventBridgeDelivery
from devstack.template import ROOT, TEMPLATE_PATH, Resolver, load_template, resources_of_type
from devstack.webapp_server import WebAppServer, frontend_port

if TYPE_CHECKING:
    from devstack.stripe_emulator.webhook_delivery import DeliveryFreedoms

log = logging.getLogger("devstack")

STATE_DIR = ROOT / ".devstack"
DEV_USER_EMAIL = "dev@example.com"
# The emulator's account starts empty but for what provisioning does not own (v2 pricing plans, which
# stripe-python 16.1.0 cannot create); everything else comes from the template's custom resource.
LOCAL_SEED = ROOT / "devstack" / "seed-local.json"
PROVISIONING_TYPE = "Custom::StripeProvisioning"
# moto's Cognito signs every pool's tokens with one published key: fine for a local issuer, never for real use.
MOTO_SIGNING_KID = "dummy"


@dataclass
class StackConfig:
    template_path: Path = TEMPLATE_PATH
    stack_name: str = "tollgate"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    api_port: int = 0
    stripe_port: int = 0
    aws_port: int = 0
    state_dir: Path | None = STATE_DIR
    webhook_retry_base_seconds: float = 5.0
    #: "stripe": events arrive as Stripe sends them (out of order, some twice, a little late) and Checkout redirects
    #: without waiting for the webhook; "serial": once each, in order, the redirect after the delivery.
    delivery: str = "stripe"
    prewarm: bool = False
    start_pollers: bool = True
    #: The functions' log level (POWERTOOLS_LOG_LEVEL) and what the terminal shows of their logs.
    log_level: str = "INFO"
    show_metrics: bool = False
    #: Serve the example web app (webapp/) at the first AllowedOrigins origin (make dev and the browser tests).
    serve_webapp: bool = False


def moto_signing_key() -> Any:
    from moto.utilities.utils import load_resource

    jwk = load_resource("cognitoidp/resources/jwks-private.json")
    jwk = jwk["keys"][0] if "keys" in jwk else jwk
    return jwt.PyJWK(jwk, algorithm="RS256").key


def emulator_delivery(delivery: str) -> tuple[DeliveryFreedoms, float]:
    """The emulator's delivery freedoms and Checkout redirect wait for a ``StackConfig.delivery`` mode."""
    from devstack.stripe_emulator.webhook_delivery import DeliveryFreedoms  # as lazy as the emulator itself

    if delivery == "stripe":
        # Stripe redirects to the success page at once; the page must wait for the webhook, not the emulator.
        return DeliveryFreedoms.like_stripe(), 0.0
    if delivery == "serial":
        return DeliveryFreedoms.serial(), 10.0
    raise ValueError(f"delivery must be 'stripe' or 'serial', not {delivery!r}")


class LocalStack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        emulator_delivery(self.config.delivery)  # an unknown mode stops the stack before anything starts
        self.template = load_template(self.config.template_path)
        self.log_view = LogView.named(self.config.log_level, show_metrics=self.config.show_metrics)
        # What `sam deploy` would refuse stops the start before anything runs, naming the parameter.
        problems = parameter_problems(self.template, self.config.parameter_overrides)
        if problems:
            raise InvalidParameters(problems)
        self.resolver = Resolver(
            self.template, stack_name=self.config.stack_name, parameter_overrides=self.config.parameter_overrides
        )
        self.moto = MotoServer(self.config.host, self.config.aws_port)
        self.resources: dict[str, CreatedResource] = {}
        self.emulator: Any = None
        self.functions: FunctionHost | None = None
        self.api: HttpApiEmulator | None = None
        self.pollers: list[SqsPoller] = []
        self.stream_pollers: list[StreamPoller] = []
        self.api_key = ""
        self.webhook_secrets: list[str] = []
        self.provisioning: CustomResourceResponse | None = None
        self.responses: ResponseServer | None = None
        self.dev_user: dict[str, str] = {}
        # The local IAM: one principal per service-caller policy of the template, holding exactly what it grants.
        self.principals = LocalPrincipals()
        self.service_callers: dict[str, Principal] = {}
        self.startup_seconds = 0.0
        self.webapp: WebAppServer | None = None
        # One clock for the stack: the emulator's offset from the wall clock, shared with every function worker.
        self._clock_dir = Path(tempfile.mkdtemp(prefix="tollgate-clock-"))
        self.clock_file = self._clock_dir / "offset"
        self._share_clock_offset(0.0)

    def _share_clock_offset(self, offset: float) -> None:
        """Write the offset atomically: a worker reading mid-write sees the old or the new value, never half."""
        staged = self.clock_file.with_suffix(".tmp")
        staged.write_text(f"{offset:.6f}\n", encoding="ascii")
        os.replace(staged, self.clock_file)

    def now(self) -> float:
        """The stack's time (the emulator's clock, which every function reads too)."""
        return float(self.emulator.clock.now()) if self.emulator is not None else time.time()

    # ---- facts for tests and scripts ------------------------------------------------------------------

    @property
    def aws_endpoint(self) -> str:
        return self.moto.endpoint

    @property
    def api_url(self) -> str:
        return self.api.url if self.api else ""

    @property
    def stripe_url(self) -> str:
        return str(self.emulator.url) if self.emulator else ""

    def ref(self, logical_id: str) -> Any:
        return self.resources[logical_id].ref

    @property
    def usage_queue_url(self) -> str:
        return str(self.ref("UsageQueue"))

    @property
    def dlq_url(self) -> str:
        return str(self.ref("UsageDeadLetterQueue"))

    @property
    def table_name(self) -> str:
        return str(self.ref("BillingTable"))

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS stand-ins."""
        return local_clients(self.aws_endpoint, self.resolver.region)(service)

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        from devstack.stripe_emulator import StripeEmulator

        self.moto.start()
        # What needs Stripe provisioning's results (the partner event buses) waits for it, as in CloudFormation.
        deferred = after_custom_resources(self.resolver.template["Resources"])
        clients = local_clients(self.aws_endpoint, self.resolver.region)
        self.resources = create_from_template(self.resolver, clients, skip=deferred)

        self.api_key = "sk" + "_test_" + secrets.token_hex(24)
        freedoms, checkout_wait_seconds = emulator_delivery(self.config.delivery)
        self.emulator = StripeEmulator(
            LOCAL_SEED,
            api_keys=(self.api_key,),
            webhook_retry_base_seconds=self.config.webhook_retry_base_seconds,
            delivery=freedoms,
            checkout_wait_seconds=checkout_wait_seconds,
        )
        self.emulator.clock.on_change(self._share_clock_offset)
        # Stripe's amazon_eventbridge destinations deliver to partner event sources on the moto server.
        self.emulator.events.sender.bridge = EventBridgeDelivery(
            lambda region: local_clients(self.aws_endpoint, region)("events")
        )
        self.emulator.start(self.config.host, self.config.stripe_port)

        # CloudFormation's response URLs for custom resources (the functions trust its certificate).
        self.responses = ResponseServer(self.config.host)
        specs = functions_from_template(self.resolver)
        self._check_function_settings(specs)
        self.functions = FunctionHost(specs, self.local_environment(), self.log_view)
        jwks = CachingJwks(url_for=self._jwks_url)
        self._create_service_callers()
        self.api = HttpApiEmulator(
            http_api_from_template(self.resolver),
            self.functions.invoke,
            jwks,
            principals=self.principals,
            region=self.resolver.region,
        )
        self.api.start(self.config.host, self.config.api_port)
        if self.config.serve_webapp:
            self._start_webapp()

        self._put_api_key()
        self._provision_stripe()
        self._associate_partner_sources(deferred, clients)
        if "UserPool" in self.resources:
            self.dev_user = self._create_dev_user()
        if self.config.start_pollers:
            self._start_pollers()
        if self.config.prewarm:
            # Cold starts happen in the background so the stack is usable at once; the first request may wait.
            threading.Thread(target=self.functions.prewarm, name="prewarm", daemon=True).start()
        if self.config.state_dir is not None:
            self.write_endpoints(self.config.state_dir / "endpoints.json")

    def stop(self) -> None:
        if self.webapp is not None:
            self.webapp.stop()
            self.webapp = None
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        for stream_poller in self.stream_pollers:
            stream_poller.stop()
        self.stream_pollers = []
        if self.api is not None:
            self.api.stop()
        if self.functions is not None:
            self.functions.stop()
        if self.emulator is not None:
            self.emulator.stop()
        if self.responses is not None:
            self.responses.stop()
            self.responses = None
        self.moto.stop()
        shutil.rmtree(self._clock_dir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- wiring ---------------------------------------------------------------------------------------------

    def local_environment(self) -> dict[str, str]:
        """The only differences between a local function and a deployed one: endpoints and fake credentials."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": self.resolver.region,
            "AWS_DEFAULT_REGION": self.resolver.region,
            "STRIPE_API_BASE": self.stripe_url,
            "STRIPE_METER_EVENTS_BASE": self.stripe_url,
            # No X-Ray daemon locally; tracing stays configured (Tracing: Active) but sends nothing.
            "POWERTOOLS_TRACE_DISABLED": "true",
            # Every function reads the Stripe emulator's clock (tollgate.adapters.clock).
            "CLOCK_OFFSET_FILE": str(self.clock_file),
            # INFO by default (the template says DEBUG outside prod); DEVSTACK_LOG_LEVEL=DEBUG for everything.
            "POWERTOOLS_LOG_LEVEL": self.config.log_level.upper(),
            # Powertools warns on every invocation that emits no metric; it says nothing a developer can act on.
            "PYTHONWARNINGS": "ignore:No application metrics to publish:UserWarning",
            # The local CloudFormation response URLs' certificate, trusted as Lambda trusts S3's.
            **({"SSL_CERT_FILE": str(self.responses.ca_file)} if self.responses is not None else {}),
        }

    def _check_function_settings(self, specs: Mapping[str, FunctionSpec]) -> None:
        """Each function's configuration as its cold start would parse it: a bad value stops the start here."""
        local = self.local_environment()
        problems = settings_problems(self.template, {lid: {**spec.environment, **local} for lid, spec in specs.items()})
        if problems:
            raise InvalidParameters(problems)

    def _jwks_url(self, issuer: str) -> str:
        # The template's Cognito issuer is https://cognito-idp.<region>.amazonaws.com/<pool>; moto serves its keys.
        pool_id = issuer.rstrip("/").rsplit("/", 1)[-1]
        return f"{self.aws_endpoint}/{pool_id}/.well-known/jwks.json"

    def _stripe(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = requests.request(
            method,
            self.stripe_url + path,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
            **kwargs,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def _put_api_key(self) -> None:
        """What an operator does after deploy: the API key into the stack's secret (here a development key)."""
        self.client("secretsmanager").put_secret_value(
            SecretId=self.ref("StripeSecret"), SecretString=json.dumps({"api_key": self.api_key})
        )

    def _provision_stripe(self) -> None:
        """What the deploy does: CloudFormation creates the provisioning custom resource, whose function sets the
        emulator's account up from the template (and adds the signing secrets to the secret)."""
        assert self.functions is not None
        assert self.responses is not None
        functions = self.functions
        for logical_id, spec in resources_of_type(self.resolver.template, PROVISIONING_TYPE).items():
            token = spec["Properties"]["ServiceToken"]["Fn::GetAtt"]
            function_id = token[0] if isinstance(token, list) else str(token).split(".", 1)[0]
            properties = self.resolver.resolve(spec.get("Properties") or {})
            properties["WebhookUrl"] = self._local_url(str(properties.get("WebhookUrl", "")))

            def invoke(event: dict[str, Any], fid: str = function_id) -> Any:
                return functions.invoke(fid, event)

            player = CustomResourcePlayer(
                invoke,
                self.responses,
                stack_name=self.config.stack_name,
                region=self.resolver.region,
            )
            response = player.create(logical_id, PROVISIONING_TYPE, properties)
            if not response.succeeded:
                raise RuntimeError(f"{logical_id} failed: {response.reason}")
            log.info("%s: %s", logical_id, response.reason)
            self.provisioning = response
            for name, value in response.data.items():
                self.resolver.attributes[(logical_id, name)] = value
        secret = json.loads(
            self.client("secretsmanager").get_secret_value(SecretId=self.ref("StripeSecret"))["SecretString"]
        )
        self.webhook_secrets = list(secret.get("webhook_secrets") or [])

    def _associate_partner_sources(self, deferred: set[str], clients: Any) -> None:
        """What the deploy does once provisioning answered: Stripe has created a partner event source per
        EventBridge destination; the buses named after them (and their rules and archives) are created, and the
        functions that name them in their environment get the values."""
        assert self.emulator is not None
        assert self.functions is not None
        bridge = self.emulator.events.sender.bridge
        if bridge is not None:
            bridge.ensure_sources(self.emulator.store)
        self.resources.update(create_from_template(self.resolver, clients, only=deferred))
        local = self.local_environment()
        for logical_id, spec in functions_from_template(self.resolver).items():
            pool = self.functions.pools.get(logical_id)
            environment = lambda_environment(spec, local)
            if pool is not None and pool.environment != environment:
                pool.spec, pool.environment = spec, environment

    def _local_url(self, url: str) -> str:
        """The template's public API URL (``https://<api>.execute-api.<region>.amazonaws.com/<stage>``) locally."""
        public = f"https://{self.ref('HttpApi')}.execute-api.{self.resolver.region}.amazonaws.com"
        stage = f"/{self.resolver.refs.get('Stage', '')}"
        if url.startswith(public + stage):
            return self.api_url + url[len(public + stage) :]
        return url

    def _start_pollers(self) -> None:
        self._start_queue_pollers()
        self._start_stream_pollers()

    def _start_stream_pollers(self) -> None:
        """Each DynamoDB stream event source mapping of the template, played by a StreamPoller."""
        assert self.functions is not None
        functions = self.functions
        sqs = self.client("sqs")
        queue_urls = {
            str(r.attributes.get("Arn")): str(r.ref) for r in self.resources.values() if r.type == "AWS::SQS::Queue"
        }
        for spec in resources_of_type(self.resolver.template, "AWS::Lambda::EventSourceMapping").values():
            props = self.resolver.resolve(spec.get("Properties") or {})
            if ":dynamodb:" not in str(props.get("EventSourceArn")):
                continue
            function_id = str(spec["Properties"]["FunctionName"]["Ref"]).removesuffix(".Alias")
            mapping = StreamMapping.from_event_properties(props)
            failure_queue = queue_urls.get(mapping.on_failure_arn or "")

            def send_failure(message: dict[str, Any], queue_url: str | None = failure_queue) -> None:
                if queue_url is not None:
                    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))

            def invoke(event: dict[str, Any], function_id: str = function_id) -> Any:
                return functions.invoke(function_id, event)

            poller = StreamPoller(
                self.client("dynamodbstreams"),
                str(props["EventSourceArn"]),
                mapping,
                invoke,
                send_failure=send_failure,
                region=self.resolver.region,
            )
            poller.start()
            self.stream_pollers.append(poller)

    def _start_queue_pollers(self) -> None:
        assert self.functions is not None
        sqs = self.client("sqs")
        for source in sqs_sources_from_template(self.resolver):
            # The mapping's concurrent batches each need their own execution environment, as in Lambda.
            pool = self.functions.pools[source.function_id]
            pool.max_concurrency = max(pool.max_concurrency, source.concurrency)
            queue = self.resources[source.queue_id]
            poller = SqsPoller(
                source,
                queue_url=str(queue.ref),
                queue_arn=str(queue.attributes["Arn"]),
                sqs=sqs,
                invoke=self.functions.invoke,
                region=self.resolver.region,
            )
            poller.start()
            self.pollers.append(poller)

    @property
    def webapp_url(self) -> str:
        return self.webapp.origin if self.webapp is not None else ""

    def _start_webapp(self) -> None:
        """The example app at the configured frontend origin, so Checkout's and the portal's URLs land on it."""
        assert self.api is not None
        assert self.api.spec.cors is not None
        origin = self.api.spec.cors.allow_origins[0]

        def issue(user_id: str | None, email: str | None) -> str:
            return self.token_for(user_id, email) if user_id else self.dev_token()

        self.webapp = WebAppServer({"api_url": self.api_url}, issue, dev_user_name=DEV_USER_EMAIL)
        self.webapp.start(self.config.host, frontend_port(origin), origin)

    # ---- identities -----------------------------------------------------------------------------------------

    def _create_dev_user(self) -> dict[str, str]:
        cognito = self.client("cognito-idp")
        password = "Dev-" + secrets.token_urlsafe(12) + "-9a"
        pool_id, client_id = self.ref("UserPool"), self.ref("UserPoolClient")
        user = cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=DEV_USER_EMAIL,
            UserAttributes=[{"Name": "email", "Value": DEV_USER_EMAIL}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )["User"]
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=DEV_USER_EMAIL, Password=password, Permanent=True)
        sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
        return {"email": DEV_USER_EMAIL, "password": password, "sub": sub, "pool_id": pool_id, "client_id": client_id}

    def _create_service_callers(self) -> None:
        """``reader`` holds ServiceReaderPolicy, ``admin`` both service policies (the app backend's two roles)."""
        reader = invoke_patterns_from_template(self.template, "ServiceReaderPolicy")
        admin = reader + invoke_patterns_from_template(self.template, "ServiceCustomerAdminPolicy")
        for role, patterns in (("reader", reader), ("admin", admin)):
            self.service_callers[role] = self.principals.create(
                self.resolver.account_id, f"local-service-{role}", patterns
            )

    def dev_token(self) -> str:
        """A real Cognito (moto) access token for the seeded development user."""
        return issue_dev_token(self.client("cognito-idp"), self.dev_user)

    def token_for(self, user_id: str, email: str | None = None, *, ttl_seconds: int = 3600) -> str:
        """An access token for any user id, signed with the local issuer's key and shaped like Cognito's."""
        assert self.api is not None
        config = next(iter(self.api.spec.authorizers.values()))
        return mint_access_token(
            config.issuer, config.audience[0], config.scopes, user_id, email=email, ttl_seconds=ttl_seconds
        )

    # ---- facts for scripts ----------------------------------------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        catalog = json.loads(str(self.resolver.refs.get("PlanCatalog") or '{"plans": []}'))
        meters = [m.strip() for m in str(self.resolver.refs.get("UsageMeterEventNames") or "").split(",") if m.strip()]
        return {
            "api_url": self.api_url,
            "webapp_url": self.webapp_url,
            # None with StripeEventIngress=eventbridge: the template registers no webhook route then.
            "webhook_url": f"{self.api_url}/webhooks/stripe" if self.resolver.condition("UsesWebhookIngress") else None,
            "stripe_url": self.stripe_url,
            "aws_endpoint": self.aws_endpoint,
            "region": self.resolver.region,
            "usage_queue_url": self.usage_queue_url,
            "usage_dlq_url": self.dlq_url,
            "table_name": self.table_name,
            "stripe_secret_arn": self.ref("StripeSecret"),
            "stripe_api_key": self.api_key,
            "webhook_signing_secrets": self.webhook_secrets,
            "dev_user": self.dev_user,
            "dev_token": self.dev_token() if self.dev_user else None,
            "jwt": self._jwt_facts(),
            "plan_keys": [p["key"] for p in catalog.get("plans", [])],
            "price_lookup_keys": [p.get("price_lookup_key") for p in catalog.get("plans", [])],
            "meter_event_names": meters,
            "stripe_provisioning": self.provisioning.data if self.provisioning else {},
            # SigV4 credentials for the IAM service routes (tollgate.adapters.service_client signs with them).
            "service_credentials": {
                role: {"access_key_id": p.access_key_id, "secret_access_key": p.secret_access_key}
                for role, p in self.service_callers.items()
            },
        }

    def _jwt_facts(self) -> dict[str, Any]:
        assert self.api is not None
        config = next(iter(self.api.spec.authorizers.values()))
        return {"issuer": config.issuer, "audience": list(config.audience), "scopes": list(config.scopes)}

    def write_endpoints(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        path.chmod(0o600)  # development credentials, still nobody else's business


def mint_access_token(
    issuer: str,
    client_id: str,
    scopes: tuple[str, ...] | list[str],
    user_id: str,
    *,
    email: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    """A Cognito-shaped access token signed with moto's key (which the local JWKS publishes).

    ``email`` adds ``email``/``email_verified`` claims, as a Cognito pre-token-generation trigger would.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": issuer,
        "client_id": client_id,
        "token_use": "access",
        "scope": " ".join(scopes),
        "auth_time": now,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "username": user_id,
    }
    if email is not None:
        claims.update({"email": email, "email_verified": True})
    return jwt.encode(claims, moto_signing_key(), algorithm="RS256", headers={"kid": MOTO_SIGNING_KID})


def issue_dev_token(cognito: Any, dev_user: dict[str, str]) -> str:
    tokens = cognito.admin_initiate_auth(
        UserPoolId=dev_user["pool_id"],
        ClientId=dev_user["client_id"],
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": dev_user["email"], "PASSWORD": dev_user["password"]},
    )["AuthenticationResult"]
    return str(tokens["AccessToken"])
