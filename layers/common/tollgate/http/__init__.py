"""The HTTP edge: API Gateway HTTP API (payload 2.0) events in, JSON responses out.

``resolver`` builds the Powertools resolver with the one domain-error -> status mapping; ``identity`` takes the
caller from the verified JWT claims; ``models`` holds the request bodies; ``webhook_request`` reads the exact bytes
Stripe signed. Nothing here decides a business rule: routes pass plain values to ``tollgate.services``.
"""
