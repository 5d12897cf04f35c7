"""Stripe set up as code from an ops machine: the same reconciler the deploy's custom resource runs.

Run it where the functions' settings are set (``STRIPE_SECRET_ARN``, ``PLAN_CATALOG``, ``USAGE_METER_EVENT_NAMES``,
``PORTAL_RETURN_URL``, ``WEBHOOK_URL``, ``STRIPE_RESOURCE_OWNER`` = the stack name, ``TABLE_NAME``) with AWS
credentials that may read (and, to apply, write) the secret::

    python -m tollgate.commands.provision --plan                     # the diff; changes nothing
    python -m tollgate.commands.provision --apply                    # apply it
    python -m tollgate.commands.provision --rotate-webhook-secrets   # new endpoints and secrets; old ones retire
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tollgate.commands.provision",
        description="Plan or apply the Stripe side of the stack (products, prices, features, meters, portal, webhooks)",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plan", action="store_true", help="print what would change; change nothing")
    mode.add_argument("--apply", action="store_true", help="apply the plan")
    mode.add_argument(
        "--rotate-webhook-secrets",
        action="store_true",
        help="replace the webhook endpoints (new signing secrets); the old ones deliver for 72 h more",
    )
    parser.add_argument("--live", action="store_true", help="allow a live-mode key (else it is refused)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    from tollgate import errors
    from tollgate.bootstrap import container
    from tollgate.config import ProvisioningSettings

    root = container()
    inputs = ProvisioningSettings.from_settings(root.settings)
    if args.live:
        inputs = inputs.model_copy(update={"allow_live_mode": True})
    try:
        if args.plan:
            report = root.provisioner.plan(inputs)
        else:
            report = root.provisioner.apply(inputs, rotate=args.rotate_webhook_secrets)
    except errors.ProvisioningRefused as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return 2
    if args.json:
        json.dump(asdict(report), sys.stdout)
        sys.stdout.write("\n")
    else:
        verb = "applied" if report.applied else "plan"
        sys.stdout.write("".join(f"{line}\n" for line in (*report.changes, *(f"# {n}" for n in report.notes))))
        sys.stdout.write(f"{verb} for {report.owner}: {report.summary}\n")
    return 2 if "conflict" in report.summary else 0


if __name__ == "__main__":
    raise SystemExit(main())
