"""Generates the HTTP API's OpenAPI document from the checkout and portal handlers (``make openapi``).

Writes ``docs/openapi.json`` (for readers and client generators) and the layer's copy that the checkout function
serves at ``GET /openapi.json``; ``--check`` only reports whether either differs from the handlers (what
tests/contract/test_openapi_document.py asserts).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from tollgate.http.openapi import openapi_document, render

ROOT = Path(__file__).resolve().parent.parent
#: The functions behind the customer-facing HTTP API (the webhook's route is Stripe's, documented in webhooks.md).
API_FUNCTIONS = ("functions.checkout.app", "functions.portal.app")
COMMITTED = (ROOT / "docs" / "openapi.json", ROOT / "layers" / "common" / "tollgate" / "http" / "openapi.json")


def generate() -> dict[str, Any]:
    return openapi_document(*(importlib.import_module(name).app for name in API_FUNCTIONS))


def stale_copies(text: str) -> list[Path]:
    return [path for path in COMMITTED if not path.exists() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a committed copy differs; write nothing")
    args = parser.parse_args(argv)
    text = render(generate())
    stale = stale_copies(text)
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from the handlers: run make openapi", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
