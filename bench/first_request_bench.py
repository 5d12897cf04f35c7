"""Cold start as a user feels it: init **plus the first typical request**, per function, as a ratio to F.

Moving work from init into the first request gains nothing here, which is why this benchmark exists beside
``coldstart_bench`` (init only). Each sample is a fresh interpreter that imports ``app`` from the build (Lambda's
``/var/task`` then ``/opt/python``, as in coldstart_bench) and calls ``app.handler`` once with a typical event,
against the local stack (moto server for DynamoDB and Secrets Manager, the Stripe emulator), started once per run:

- webhook: a signed snapshot ``customer.subscription.updated`` for a known customer (no Stripe fetch);
- checkout: a returning user's ``POST /checkout/sessions`` (their customer exists; one Stripe call);
- usage: an SQS batch of 10 usage records (ledger claims, one meter event stream request, the settle write).

Beside them, each function's **unavoidable floor** in the same run: importing boto3 and building exactly the AWS
clients that function's request uses, plus ``stripe`` and a ``StripeClient`` where the request calls Stripe, plus
Powertools Logger and Metrics: what any implementation of that function pays before its own code runs. CPU time is
the child's; the local servers' work is not in it (in AWS it happens in DynamoDB and Stripe too).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.coldstart_bench import BUILD, FLOOR, LAYER, lambda_environment, prepared_paths
from bench.harness import BenchOptions, Scenario, markdown_table, measure, summarise
from devstack.functions import functions_from_template
from devstack.stack import LocalStack, StackConfig

TITLE = "Cold start: init + first typical request per function, ratio to F = import boto3; boto3.client('dynamodb')"
ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
FUNCTIONS = ("WebhookFunction", "CheckoutFunction", "UsageFunction")
BENCH_USER = "bench-returning-user"
SUBSCRIBER = "bench-subscriber"  # the webhook's events make this one's subscription active (not BENCH_USER's)

# The child's harness around the handler: a Lambda context and the typical event, built in the child so every sample
# is a new event (a fresh Stripe event id, fresh usage ids, a fresh Idempotency-Key).
CONTEXT = """
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; invoked_function_arn = "arn:aws:lambda:us-east-1:0:function:b"
    aws_request_id = "bench-request"
    def get_remaining_time_in_millis(self): return 15000
"""

WEBHOOK_EVENT = """
import hashlib, hmac, json, time, uuid
payload = json.loads(PAYLOAD)
payload["id"] = "evt_" + uuid.uuid4().hex[:24]
payload["created"] = int(time.time())
body = json.dumps(payload)
stamp = str(int(time.time()))
signature = hmac.new(SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
event = json.loads(HTTP_EVENT)
event["body"] = body
event["headers"]["stripe-signature"] = f"t={stamp},v1={signature}"
"""

CHECKOUT_EVENT = """
import json, uuid
event = json.loads(HTTP_EVENT)
event["headers"]["idempotency-key"] = uuid.uuid4().hex
"""

USAGE_EVENT = """
import json, time, uuid
now = int(time.time()) - 5
records = []
for i in range(10):
    body = {"schema_version": 1, "usage_id": "bench-" + uuid.uuid4().hex, "event_name": METER,
            "user_id": USER, "value": i + 1, "occurred_at": now}
    records.append({"messageId": str(uuid.uuid4()), "receiptHandle": uuid.uuid4().hex, "body": json.dumps(body),
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(now * 1000),
                                   "SenderId": "AIDABENCH", "ApproximateFirstReceiveTimestamp": str(now * 1000)},
                    "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:usage", "awsRegion": "us-east-1"})
event = {"Records": records}
"""

CALL = """
import app
answer = app.handler(event, Context())
assert CHECK(answer), answer
"""

# What each function's typical request cannot do without: the AWS clients it uses, each making one call like the
# request's (the first call on a client loads its endpoint rules and opens a connection), and one Stripe call where
# the request makes one, plus Powertools Logger and Metrics.
FLOOR_CODE = """
import boto3
secret = boto3.client("secretsmanager").get_secret_value(SecretId=SECRET_ARN)["SecretString"]
boto3.client("dynamodb").put_item(TableName=TABLE, Item={"pk": {"S": "BENCH#floor"}, "sk": {"S": "floor"}})
from aws_lambda_powertools import Logger, Metrics
Logger(service="floor"); Metrics(namespace="floor")
"""
FLOOR_STRIPE = """
import json, stripe
client = stripe.StripeClient(json.loads(secret)["api_key"], base_addresses={"api": STRIPE_URL})
client.v1.customers.retrieve(CUSTOMER)
"""
CALLS_STRIPE = {"WebhookFunction": False, "CheckoutFunction": True, "UsageFunction": True}


def floor_code(function: str, constants: dict[str, str]) -> str:
    prelude = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return prelude + FLOOR_CODE + (FLOOR_STRIPE if CALLS_STRIPE[function] else "")


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def typical_events(stack: LocalStack) -> dict[str, tuple[str, dict[str, str], str]]:
    """Per function: (event-building code, constants it uses, the check on the answer)."""
    customer = _returning_customer(stack, SUBSCRIBER)
    subscription = _load("stripe/customer.subscription.updated.json")
    subscription["data"]["object"]["customer"] = customer
    webhook_http = _load("apigw/stripe_webhook.json")
    checkout_http = _load("apigw/http_api_jwt.json")
    checkout_http["body"] = json.dumps({"plan": stack.endpoints()["plan_keys"][0]})
    checkout_http["isBase64Encoded"] = False
    checkout_http["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = BENCH_USER
    meters = stack.endpoints()["meter_event_names"]
    return {
        "WebhookFunction": (
            WEBHOOK_EVENT,
            {
                "PAYLOAD": json.dumps(subscription),
                "SECRET": stack.webhook_secrets[0],
                "HTTP_EVENT": json.dumps(webhook_http),
            },
            "lambda a: a['statusCode'] == 200",
        ),
        "CheckoutFunction": (
            CHECKOUT_EVENT,
            {"HTTP_EVENT": json.dumps(checkout_http)},
            "lambda a: a['statusCode'] == 200",
        ),
        "UsageFunction": (
            USAGE_EVENT,
            {"METER": meters[0], "USER": BENCH_USER},
            "lambda a: a['batchItemFailures'] == []",
        ),
    }


def _returning_customer(stack: LocalStack, user_id: str) -> str:
    """A user who checked out once (their customer exists and is linked), without a live subscription."""
    import requests

    token = stack.token_for(user_id)
    plan = stack.endpoints()["plan_keys"][0]
    answer = requests.post(
        f"{stack.api_url}/checkout/sessions",
        headers={"Authorization": f"Bearer {token}"},
        json={"plan": plan},
        timeout=30,
    )
    answer.raise_for_status()
    customer = stack.emulator.store.get(answer.json()["id"], "checkout.session")["customer"]
    return str(customer)


def run(options: BenchOptions) -> str:
    if not (BUILD / LAYER / "python").is_dir():
        raise SystemExit("no .aws-sam/build: run `make build` (or `make bench`, which builds first)")
    config = StackConfig(state_dir=None, start_pollers=False, log_level="ERROR")
    with LocalStack(config) as stack, prepared_paths(list(FUNCTIONS)) as (overlay, _, _):
        specs = functions_from_template(stack.resolver)
        local = stack.local_environment()
        local.pop("POWERTOOLS_TRACE_DISABLED", None)  # as deployed: Tracing is Active
        events = typical_events(stack)
        floor_constants = {
            "SECRET_ARN": str(stack.ref("StripeSecret")),
            "TABLE": stack.table_name,
            "STRIPE_URL": stack.stripe_url,
            "CUSTOMER": _returning_customer(stack, BENCH_USER),
        }
        base_env = {**lambda_environment("floor", BUILD, {}), **local}
        layer = str(BUILD / LAYER / "python")
        scenarios = [Scenario(FLOOR, 'import boto3\nboto3.client("dynamodb")', (str(overlay), layer), base_env, "F")]
        for function in FUNCTIONS:
            spec = specs[function]
            task_root = BUILD / function
            env = {**lambda_environment(function, task_root, dict(spec.environment)), **local}
            # A returning user's checkouts are a burst of one user here; the per-user limit is not what is measured.
            env["SESSION_RATE_LIMIT_PER_MINUTE"] = "1000"  # its maximum
            build_event, constants, check = events[function]
            prelude = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
            code = CONTEXT + prelude + build_event + CALL.replace("CHECK", f"({check})")
            paths = (str(task_root), str(overlay), layer)
            scenarios.append(
                Scenario(
                    f"floor: {function}'s unavoidable work", floor_code(function, floor_constants), paths, env, "floor"
                )
            )
            scenarios.append(Scenario(f"{function}: init + first request", code, paths, env, "typical request"))
        if options.only:
            scenarios = [s for s in scenarios if options.only in s.name or s.name == FLOOR]
        started = time.monotonic()
        samples = measure(scenarios, options)
        elapsed = time.monotonic() - started
    rows = summarise(scenarios, samples, FLOOR)
    header = (
        f"{options.rounds} rounds after {options.warmups} warm-ups ({elapsed:.0f} s), fresh interpreter per sample, "
        "against the local stack (moto server, Stripe emulator) on 127.0.0.1; the servers' CPU is not counted."
    )
    return header + "\n\n" + markdown_table(rows)
