"""The HTTP API: one class per Stripe resource, one method per route, each listing its routes in `routes()`.

Handlers parse and validate parameters, call the billing engine (`domain/`) and render Stripe's JSON.
"""
