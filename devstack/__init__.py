"""The local stack: the whole product offline (AWS stand-ins on moto, an API Gateway HTTP API emulator running each
function in its own worker process, an SQS poller, and the Stripe emulator). ``python -m devstack`` is ``make dev``.

Nothing here is deployed: it lives outside the layer and only configuration (endpoint and base-address variables)
separates a local run from a real one.
"""
