"""tollgate: the shared package behind the billing backend's Lambda functions.

Handlers in ``functions/*/app.py`` parse a request, make one call into this package and shape the answer.
Everything else - configuration, observability, Stripe and AWS adapters, domain rules - lives here.
"""
