"""The caller's identity, taken only from the claims API Gateway's JWT authorizer verified."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from tollgate import errors


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in user, as API Gateway's JWT authorizer verified them."""

    user_id: str
    email: str | None
    scopes: frozenset[str]


def caller_from(event: APIGatewayProxyEventV2) -> Caller:
    """Identity comes only from the verified JWT claims; the body, query and custom headers never count.

    Fails closed when the authorizer context is missing (a direct invoke or a misrouted request).
    """
    context = event.raw_event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    jwt = authorizer.get("jwt") if isinstance(authorizer, dict) else None
    claims = jwt.get("claims") if isinstance(jwt, dict) else None
    if not isinstance(claims, dict):
        raise errors.Unauthenticated()
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise errors.Unauthenticated()
    email = claims.get("email")
    verified = claims.get("email_verified") in (True, "true")
    scopes_raw = jwt.get("scopes") if isinstance(jwt, dict) else None
    scopes = frozenset(s for s in (scopes_raw or []) if isinstance(s, str))
    return Caller(user_id=sub, email=email if isinstance(email, str) and verified else None, scopes=scopes)
