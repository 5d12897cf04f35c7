"""The HTML the hosted pages are made of: a page, a one-button form, a notice."""

from __future__ import annotations

from html import escape

from devstack.stripe_emulator.routing import Response

STYLE = (
    "body{font-family:sans-serif;max-width:40em;margin:2em auto}form{display:block;margin:.4em 0}"
    ".notice{background:#e8f5ee;padding:.6em}.error{background:#fde8ec;padding:.6em}.muted{color:#697386}"
    "button{padding:.4em .8em}"
)


def page(title: str, body: str, status: int = 200) -> Response:
    # The empty icon keeps the browser from asking for /favicon.ico (a 404 in every page's console).
    return Response.html(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}"
        "</body></html>",
        status=status,
    )


def button(
    action: str,
    label: str,
    fields: dict[str, str] | None = None,
    name: str = "action",
    value: str | None = None,
    element_id: str | None = None,
) -> str:
    """A form with one submit button; ``value`` defaults to the label in snake case (what the handlers read)."""
    hidden = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in (fields or {}).items())
    submitted = value if value is not None else label.lower().replace(" ", "_")
    ident = f" id='{escape(element_id)}'" if element_id else ""
    return (
        f"<form method='post' action='{escape(action)}'>{hidden}"
        f"<button type='submit'{ident} name='{escape(name)}' value='{escape(submitted)}'>"
        f"{escape(label)}</button></form>"
    )


def notice(text: str, kind: str = "notice") -> str:
    return f"<p class='{escape(kind)}' id='{escape(kind)}' role='status'>{escape(text)}</p>"
