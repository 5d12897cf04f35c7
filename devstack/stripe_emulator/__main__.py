"""`python -m devstack.stripe_emulator --port 12111`: run the emulator standalone on 127.0.0.1."""

from __future__ import annotations

import argparse
import secrets
import signal
import threading

from .app import DEFAULT_SEED, StripeEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Stateful Stripe emulator (loopback only)")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--seed", default=str(DEFAULT_SEED))
    parser.add_argument("--webhook-retry-base-seconds", type=float, default=5.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--public-url", default=None)
    parser.add_argument(
        "--api-key", action="append", default=[], help="a key the account accepts (repeatable; default: a new one)"
    )
    args = parser.parse_args()
    keys = tuple(args.api_key) or ("sk" + "_test_" + secrets.token_hex(24),)
    emu = StripeEmulator(
        api_keys=keys,
        seed_path=args.seed,
        webhook_retry_base_seconds=args.webhook_retry_base_seconds,
        latency_ms=args.latency_ms,
        public_url=args.public_url,
    )
    url = emu.start(port=args.port)
    print(f"stripe emulator listening on {url}", flush=True)
    if not args.api_key:
        print(f"API key: {keys[0]}", flush=True)  # generated for this run only: a local test key, not a secret
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
