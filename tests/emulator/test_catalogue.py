"""The README's event catalogue matches what the emulator emits, and every catalogued type is exercised by a test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "devstack" / "stripe_emulator"
TESTS = Path(__file__).resolve().parent


def catalogued(section: str) -> set[str]:
    text = (EMULATOR / "README.md").read_text()
    block = text.split(f"<!-- catalogue:{section} -->")[1].split(f"<!-- /catalogue:{section} -->")[0]
    types: set[str] = set()
    for row in block.splitlines():
        first_cell = row.split("|")[1] if row.startswith("|") else ""
        types.update(re.findall(r"`([a-z0-9_.]+)`", first_cell))
    return types


def source_text(folder: Path, exclude: str | None = None) -> str:
    return "\n".join(p.read_text() for p in folder.rglob("*.py") if p.name != exclude)


def test_every_snapshot_type_emitted_by_the_code_is_catalogued_and_vice_versa() -> None:
    code = source_text(EMULATOR)
    emitted = set(re.findall(r'emit\(\s*"([a-z_.]+)"', code))
    emitted |= set(re.findall(r'self\.emit\(\s*"([a-z_.]+)"', code))
    assert emitted == catalogued("snapshot")


def test_every_catalogued_type_is_asserted_by_some_contract_test() -> None:
    tests = source_text(TESTS, exclude=Path(__file__).name)
    prefix = "v2.billing.pricing_plan_subscription."
    missing = [
        t
        for t in sorted(catalogued("snapshot") | catalogued("thin"))
        if t not in tests and not (t.startswith(prefix) and t.removeprefix(prefix) in tests)
    ]
    assert missing == []
