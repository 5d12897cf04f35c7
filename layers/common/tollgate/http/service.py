"""The IAM service routes' side of HTTP: who called (an IAM principal of this account, as API Gateway verified it),
which user they ask about (the path, never a JWT), and the request bodies."""

from __future__ import annotations

import re
from typing import Annotated, Self

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tollgate import errors
from tollgate.domain.customer_accounts import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, CustomerDetails

# A JWT sub as the user routes accept it: 1-128 characters, none of them a control character.
_USER_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
# Enough to refuse what Stripe would refuse; the app backend owns verification of the address.
_EMAIL = r"^[^@\s]{1,256}@[^@\s]+\.[^@\s]+$"
_FEATURE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


def service_user_from(event: APIGatewayProxyEventV2) -> str:
    """The user a service route asks about, after checking that API Gateway's IAM authorizer let the request in
    and that the caller belongs to the API's own account. Fails closed on a missing authorizer context (a direct
    invoke or a route deployed without ``AWS_IAM``): identity is never taken from a header or the body."""
    context = event.raw_event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    iam = authorizer.get("iam") if isinstance(authorizer, dict) else None
    if not isinstance(iam, dict) or not iam.get("accountId"):
        raise errors.Unauthenticated()
    if isinstance(context, dict) and iam.get("accountId") != context.get("accountId"):
        raise errors.Forbidden()  # HTTP APIs admit no other account; if one ever appears, it is refused here too
    user_id = (event.path_parameters or {}).get("user_id", "")
    if not _USER_ID.match(user_id):
        raise errors.InvalidRequest("invalid user id")
    return user_id


def feature_from(event: APIGatewayProxyEventV2) -> str:
    feature = (event.path_parameters or {}).get("feature", "")
    if not _FEATURE.match(feature):
        raise errors.InvalidRequest("invalid feature key")
    return feature


class CustomerDetailsRequest(BaseModel):
    """``PUT /service/users/{user_id}/customer``: the details Stripe should hold (at least one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    email: Annotated[str | None, Field(max_length=MAX_EMAIL_LENGTH, pattern=_EMAIL)] = None
    name: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME_LENGTH)] = None

    @model_validator(mode="after")
    def _something_given(self) -> Self:
        if self.email is None and self.name is None:
            raise ValueError("give email, name or both")
        return self

    def details(self) -> CustomerDetails:
        return CustomerDetails(email=self.email, name=self.name)
