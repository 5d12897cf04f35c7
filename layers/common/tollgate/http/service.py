"""The IAM service routes' side of HTTP: who called (an IAM principal of this account, as API Gateway verified it),
which user they ask about (the path, never a JWT), and the request bodies."""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tollgate import errors
from tollgate.domain.customer_accounts import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, CustomerDetails

# A JWT sub as the user routes accept it: 1-128 characters, none of them a control character.
USER_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"
_USER_ID = re.compile(USER_ID_PATTERN)
# Enough to refuse what Stripe would refuse; the app backend owns verification of the address.
# Spelled so that JSON Schema's (ECMA) and pydantic's (Rust) regex agree: their \s differ (U+0085, U+FEFF), so
# both are excluded explicitly, with every control character.
_NOT_IN_EMAIL = r"[^@\s\x00-\x1f\x7f-\x9f\ufeff]"
_EMAIL = rf"^{_NOT_IN_EMAIL}{{1,256}}@{_NOT_IN_EMAIL}+\.{_NOT_IN_EMAIL}+$"
FEATURE_PATTERN = r"^[A-Za-z0-9_.:-]{1,80}$"
_FEATURE = re.compile(FEATURE_PATTERN)


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
    if not _USER_ID.fullmatch(user_id):
        raise errors.InvalidRequest("invalid user id")
    return user_id


def feature_from(event: APIGatewayProxyEventV2) -> str:
    feature = (event.path_parameters or {}).get("feature", "")
    if not _FEATURE.fullmatch(feature):
        raise errors.InvalidRequest("invalid feature key")
    return feature


def _details_schema(schema: dict[str, Any]) -> None:
    """The published schema states the validators' rules: at least one of the fields, each a string (null is not
    a detail: leave the field out)."""
    for prop in schema.get("properties", {}).values():
        text = next((branch for branch in prop.pop("anyOf", []) if branch.get("type") == "string"), None)
        if text is not None:
            prop.update(text)
        prop.pop("default", None)
    schema["minProperties"] = 1


class CustomerDetailsRequest(BaseModel):
    """``PUT /service/users/{user_id}/customer``: the details Stripe should hold (at least one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, json_schema_extra=_details_schema)

    email: Annotated[str | None, Field(max_length=MAX_EMAIL_LENGTH, pattern=_EMAIL)] = None
    name: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME_LENGTH)] = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(value is None for value in data.values()):
            raise ValueError("null is not a detail: leave the field out")
        return data

    @model_validator(mode="after")
    def _something_given(self) -> Self:
        if self.email is None and self.name is None:
            raise ValueError("give email, name or both")
        return self

    def details(self) -> CustomerDetails:
        return CustomerDetails(email=self.email, name=self.name)
