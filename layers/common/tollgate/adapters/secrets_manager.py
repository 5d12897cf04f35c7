"""Stripe credentials, read from Secrets Manager through Powertools parameters with a cache.

The secret holds JSON ``{"api_key": "...", "webhook_secrets": ["...", ...]}``. More than one signing secret is
allowed so an endpoint's secret can be rolled without dropping deliveries. Values never reach logs or reprs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tollgate.domain.signatures import fingerprint
from tollgate.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


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


def forget_cached_secrets() -> None:
    """The next read fetches the secret again (after a SnapStart restore: never serve the snapshot's copy)."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    provider = DEFAULT_PROVIDERS.get("secrets")
    if provider is not None:
        provider.clear_cache()


def prepare_secrets_provider() -> None:
    """Builds the secrets provider and its client now (before a SnapStart snapshot) instead of on the first read."""
    _share_the_default_session()


def _share_the_default_session() -> None:
    """Powertools' default secrets provider builds its client on a boto3 session of its own, which loads botocore's
    endpoint and model data a second time (about a third of F on a cold start). Registered once, before its first
    use, a provider on the functions' shared session and client settings reads the same secret the same way."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    if "secrets" not in DEFAULT_PROVIDERS:
        from tollgate.adapters.aws import secretsmanager_client

        DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=secretsmanager_client())


def load_stripe_secrets(secret_arn: str, max_age_seconds: int, force_fetch: bool = False) -> StripeSecrets:
    """Fetch (or reuse) the Stripe secret. Raises ConfigurationError with no secret material in the message."""
    _share_the_default_session()
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


class SecretsManagerSigningSecrets:
    """``ports.storage.SigningSecretStore`` on the stack's secret: each change reads the current value (never the
    cache) and writes a new version holding every other field as it was."""

    def __init__(self, client: Callable[[], SecretsManagerClient], secret_arn: str) -> None:
        self._client = client
        self._secret_arn = secret_arn

    def current(self) -> dict[str, Any]:
        """The secret's JSON object; an empty dict while no value has been put (a fresh deploy)."""
        from botocore.exceptions import ClientError

        from tollgate.adapters.aws import aws_errors, error_code

        try:
            with aws_errors("secretsmanager.get_secret_value"):
                raw = self._client().get_secret_value(SecretId=self._secret_arn).get("SecretString") or "{}"
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}
            raise ConfigurationError("the Stripe secret could not be read") from None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigurationError("the Stripe secret is not valid JSON") from None
        if not isinstance(value, dict):
            raise ConfigurationError("the Stripe secret must be a JSON object")
        return value

    def api_key_present(self) -> bool:
        key = self.current().get("api_key")
        return isinstance(key, str) and key.startswith(("sk_", "rk_"))

    def _secrets(self, value: dict[str, Any]) -> list[str]:
        listed = value.get("webhook_secrets") or []
        return [listed] if isinstance(listed, str) else [str(s) for s in listed]

    def fingerprints(self) -> frozenset[str]:
        return frozenset(fingerprint(s) for s in self._secrets(self.current()))

    def add(self, secret: str) -> None:
        value = self.current()
        kept = [s for s in self._secrets(value) if s != secret]
        self._put({**value, "webhook_secrets": [secret, *kept]})

    def remove(self, fingerprints: frozenset[str]) -> int:
        value = self.current()
        secrets = self._secrets(value)
        kept = [s for s in secrets if fingerprint(s) not in fingerprints]
        if len(kept) != len(secrets):
            self._put({**value, "webhook_secrets": kept})
        return len(secrets) - len(kept)

    def _put(self, value: dict[str, Any]) -> None:
        from tollgate.adapters.aws import aws_errors

        with aws_errors("secretsmanager.put_secret_value"):
            self._client().put_secret_value(SecretId=self._secret_arn, SecretString=json.dumps(value))
