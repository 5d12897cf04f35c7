"""The HTML the hosted pages are made of: a page, a one-button form."""

from __future__ import annotations

from html import escape

from devstack.stripe_emulator.routing import Response

STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}form{display:inline-block;margin:.3em}"


def page(title: str, body: str, status: int = 200) -> Response:
    return Response.html(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>",
        status=status,
    )


def button(action: str, label: str, fields: dict[str, str] | None = None, name: str = "action") -> str:
    hidden = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in (fields or {}).items())
    return (
        f"<form method='post' action='{escape(action)}'>{hidden}"
        f"<button type='submit' name='{escape(name)}' value='{escape(label.lower().replace(' ', '_'))}'>"
        f"{escape(label)}</button></form>"
    )
