"""Stripe credentials, read from Secrets Manager through Powertools parameters with a cache.

The secret holds JSON ``{"api_key": "...", "webhook_secrets": ["...", ...]}``. More than one signing secret is
allowed so an endpoint's secret can be rolled without dropping deliveries. Values never reach logs or reprs.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tollgate.errors import ConfigurationError


class StripeSecrets(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    api_key: SecretStr
    webhook_secrets: Annotated[tuple[SecretStr, ...], Field(default=())]

    @field_validator("api_key")
    @classmethod
    def _looks_like_a_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith(("sk_", "rk_")):
            raise ValueError("api_key must be a Stripe secret (sk_) or restricted (rk_) key")
        return value

    def key_is_live(self) -> bool:
        """Live keys (secret or restricted) carry ``_live_`` after their two-letter prefix."""
        return self.api_key.get_secret_value()[2:8] == "_live_"

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def load_stripe_secrets(secret_arn: str, max_age_seconds: int, force_fetch: bool = False) -> StripeSecrets:
    """Fetch (or reuse) the Stripe secret. Raises ConfigurationError with no secret material in the message."""
    try:
        raw = parameters.get_secret(secret_arn, transform="json", max_age=max_age_seconds, force_fetch=force_fetch)
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError("the Stripe secret is not valid JSON") from None
    except parameters.exceptions.GetParameterError:
        raise ConfigurationError("the Stripe secret could not be read") from None
    if not isinstance(raw, dict):
        raise ConfigurationError("the Stripe secret must be a JSON object")
    try:
        return StripeSecrets.model_validate(raw)
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
        raise ConfigurationError(f"the Stripe secret is incomplete or malformed: {fields}") from None
