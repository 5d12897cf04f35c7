"""``python -m devstack`` (= ``make dev``): the whole product on 127.0.0.1 in the foreground; Ctrl-C stops it.

``python -m devstack token [--user-id ID] [--email E]`` prints a fresh access token for the running stack: the
seeded development user's (issued by the local Cognito) or one for any user id.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from devstack.function_logs import LEVELS
from devstack.instance_lock import AlreadyRunning, InstanceLock
from devstack.parameters import InvalidParameters, read_overrides
from devstack.stack import STATE_DIR, LocalStack, StackConfig

# DEVSTACK_STATE_DIR: a stack with its own state (and its own ports) beside the checkout's usual one.
STATE = Path(os.environ["DEVSTACK_STATE_DIR"]).resolve() if os.environ.get("DEVSTACK_STATE_DIR") else STATE_DIR
ENDPOINTS_FILE = STATE / "endpoints.json"
LOCK_FILE = STATE / "devstack.lock"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class _ShortNames(logging.Formatter):
    """``devstack.fn.WebhookFunction`` -> ``webhook``; ``devstack.api`` -> ``api``: a name a reader recognises."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("devstack.").removeprefix("fn.").removesuffix("Function")
        record.short_name = name.lower() if name != "devstack" else "stack"
        return super().format(record)


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ShortNames("%(asctime)s %(short_name)-12s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    # One access line per API request and the functions' own logs are what a developer watches.
    logging.getLogger("devstack.api").setLevel(logging.INFO)
    logging.getLogger("devstack.fn").setLevel(logging.INFO if not verbose else logging.DEBUG)
    logging.getLogger("devstack.sqs").setLevel(logging.INFO)


def banner(stack: LocalStack, endpoints_file: Path) -> str:
    facts = stack.endpoints()
    lines = [
        "",
        "tollgate local stack is up (127.0.0.1 only, no AWS or Stripe account involved)",
        f"  Example web app  {facts['webapp_url']}   <- open this in a browser to start (README: 'Local development')",
        f"  API              {facts['api_url']}",
        f"  Stripe emulator  {facts['stripe_url']}   (hosted Checkout/Portal pages, /_emulator/* controls)",
        f"  AWS (moto)       {facts['aws_endpoint']}",
        f"  usage queue      {facts['usage_queue_url']}",
        f"  webhook URL      {facts['webhook_url']}   (registered with the emulator)"
        if facts["webhook_url"]
        else "  webhook URL      none (StripeEventIngress=eventbridge: Stripe delivers to the partner event buses)",
        f"  plans            {', '.join(facts['plan_keys'])}   meters: {', '.join(facts['meter_event_names'])}",
        f"  dev user         {facts['dev_user'].get('email', '-')}",
        "",
        "  A token for the dev user (valid 60 min; print a fresh one with `.venv/bin/python -m devstack token`):",
        f"  export TOKEN={facts['dev_token']}",
        "",
        f"  Everything above as JSON: {endpoints_file}",
        "  Try it: README.md, section 'Local development' (curl journey).",
        f"  Started in {stack.startup_seconds:.1f} s. Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    _configure_logging(args.verbose)
    log_level = os.environ.get("DEVSTACK_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in LEVELS:
        print(f"DEVSTACK_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {log_level!r}", file=sys.stderr)
        return 2
    delivery = os.environ.get("DEVSTACK_DELIVERY", "stripe").strip().lower() or "stripe"
    if delivery not in ("stripe", "serial"):
        print(f"DEVSTACK_DELIVERY must be stripe or serial, not {delivery!r}", file=sys.stderr)
        return 2
    try:
        overrides = read_overrides(os.environ)
    except InvalidParameters as exc:
        return _refuse(exc)
    config = StackConfig(
        delivery=delivery,
        parameter_overrides=overrides,
        log_level=log_level,
        show_metrics=os.environ.get("DEVSTACK_METRICS", "") not in ("", "0", "false"),
        host="127.0.0.1",
        api_port=args.api_port,
        stripe_port=args.stripe_port,
        aws_port=args.aws_port,
        state_dir=ENDPOINTS_FILE.parent,
        webhook_retry_base_seconds=args.webhook_retry_seconds,
        prewarm=True,
        serve_webapp=True,
    )
    # Before anything binds a port or writes under .devstack/: a second stack in this checkout would collide with
    # the first's ports or take over (and on exit delete) its endpoints.json.
    try:
        lock = InstanceLock.acquire(LOCK_FILE, {"api": args.api_port, "stripe": args.stripe_port, "aws": args.aws_port})
    except AlreadyRunning as exc:
        print(f"the local stack did not start: {exc}", file=sys.stderr)
        return 1
    try:
        return _serve(config, lock)
    finally:
        lock.release()


def _serve(config: StackConfig, lock: InstanceLock) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops the stack even when started with SIGINT ignored (a background job of a script, a test runner's
    # worker): Python keeps an inherited SIG_IGN, and the stack would then only die by SIGKILL, leaving its files.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stack = LocalStack(config)
        stack.start()
    except InvalidParameters as exc:
        return _refuse(exc)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(
            f"could not start the local stack: {exc} (ports busy? set DEVSTACK_*_PORT; the web app's port is the"
            " first AllowedOrigins origin's: DEVSTACK_PARAMS=AllowedOrigins=http://localhost:PORT)",
            file=sys.stderr,
        )
        return 1
    try:
        lock.update(_bound_ports(stack))
        print(banner(stack, ENDPOINTS_FILE), flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping the local stack ...", file=sys.stderr, flush=True)
        # First, so no client finds a stack that is going away, and the file goes even if stopping fails or is cut
        ENDPOINTS_FILE.unlink(missing_ok=True)
        stack.stop()
    return 0


def _bound_ports(stack: LocalStack) -> dict[str, int]:
    """The ports the running stack listens on (the requested ones may have been 0)."""
    facts = stack.endpoints()
    urls = {"api": facts["api_url"], "stripe": facts["stripe_url"], "aws": facts["aws_endpoint"]}
    return {name: int(urlsplit(str(url)).port or 0) for name, url in urls.items()}


def _refuse(exc: InvalidParameters) -> int:
    print(
        "the local stack did not start: invalid template parameters (DEVSTACK_PARAMS / DEVSTACK_PARAMS_FILE)",
        file=sys.stderr,
    )
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def token(args: argparse.Namespace) -> int:
    from devstack.aws_resources import local_clients
    from devstack.stack import issue_dev_token, mint_access_token

    if not ENDPOINTS_FILE.exists():
        print("the local stack is not running: start it with `make dev`", file=sys.stderr)
        return 1
    facts = json.loads(ENDPOINTS_FILE.read_text())
    if args.user_id:
        jwt_facts = facts["jwt"]
        print(
            mint_access_token(
                jwt_facts["issuer"], jwt_facts["audience"][0], jwt_facts["scopes"], args.user_id, email=args.email
            )
        )
        return 0
    cognito = local_clients(facts["aws_endpoint"], facts["region"])("cognito-idp")
    print(issue_dev_token(cognito, facts["dev_user"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--api-port", type=int, default=_port("DEVSTACK_API_PORT", 3000))
    parser.add_argument("--stripe-port", type=int, default=_port("DEVSTACK_STRIPE_PORT", 12111))
    parser.add_argument("--aws-port", type=int, default=_port("DEVSTACK_AWS_PORT", 5055))
    parser.add_argument("--webhook-retry-seconds", type=float, default=5.0, help="first webhook retry backoff")
    parser.add_argument("-v", "--verbose", action="store_true", help="log everything devstack does")
    commands = parser.add_subparsers(dest="command")
    token_parser = commands.add_parser("token", help="print a fresh access token for the running stack")
    token_parser.add_argument("--user-id", help="mint a token for this user id instead of the dev user")
    token_parser.add_argument("--email", help="with --user-id: add a verified email claim")
    args = parser.parse_args(argv)
    return token(args) if args.command == "token" else run(args)


if __name__ == "__main__":
    sys.exit(main())
