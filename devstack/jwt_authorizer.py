"""API Gateway's JWT authorizer, checked in the order and with the outcomes the HTTP API documents.

A token passes only when: its header names an RSA algorithm and a ``kid`` present in the issuer's JWKS, the
signature verifies with that key, ``iss`` equals the configured issuer, ``aud`` (or ``client_id`` when there is no
``aud``) is one of the configured audiences, ``exp`` is in the future, ``nbf`` and ``iat`` are not, and - when the
route requires scopes - ``scope``/``scp`` holds at least one of them. Failures are 401 except a missing scope (403).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeIs

import jwt
from jwt.exceptions import PyJWTError

# API Gateway accepts only RSA-signed tokens; "none" and HMAC (the public-key-as-secret confusion) never pass.
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")


class AuthorizerDenied(Exception):
    """The request stops at the authorizer: ``status`` is what API Gateway answers (401 or 403)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    @property
    def www_authenticate(self) -> str:
        return f'Bearer scope="" error="{self.error}" error_description="{self.description}"'


def _unauthorized(description: str) -> AuthorizerDenied:
    return AuthorizerDenied(401, "invalid_token", description)


@dataclass(frozen=True)
class JwtAuthorizerConfig:
    """One ``JwtConfiguration`` of the HTTP API (issuer, audience) plus its identity source and default scopes."""

    name: str
    issuer: str
    audience: tuple[str, ...]
    identity_header: str = "authorization"
    scopes: tuple[str, ...] = ()


JwksSource = Callable[[str], Mapping[str, Any]]


@dataclass
class CachingJwks:
    """Fetches an issuer's JWKS over HTTP and caches it, refetching once when a token names an unknown ``kid``.

    ``url_for`` maps an issuer to its JWKS URL; locally the Cognito issuer's keys are served by moto.
    """

    url_for: Callable[[str], str]
    max_age_seconds: float = 3600.0
    _cache: dict[str, tuple[float, Mapping[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, issuer: str, refresh: bool = False) -> Mapping[str, Any]:
        with self._lock:
            cached = self._cache.get(issuer)
            if cached and not refresh and time.monotonic() - cached[0] < self.max_age_seconds:
                return cached[1]
        with urllib.request.urlopen(self.url_for(issuer), timeout=5) as response:  # noqa: S310 - local http URL
            keys: Mapping[str, Any] = json.loads(response.read())
        with self._lock:
            self._cache[issuer] = (time.monotonic(), keys)
        return keys


def _key_for(jwks: Mapping[str, Any], kid: str) -> Mapping[str, Any] | None:
    return next((k for k in jwks.get("keys", []) if k.get("kid") == kid), None)


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return [s for s in raw.split(" ") if s]
    if isinstance(raw, list):
        return [str(s) for s in raw]
    return []


def verify(
    authorization: str | None,
    config: JwtAuthorizerConfig,
    required_scopes: Sequence[str],
    jwks: JwksSource,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The verified claims, or AuthorizerDenied with the status API Gateway would answer."""
    token = _bearer_token(authorization)
    alg, key = _signing_key(token, config, jwks)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=jwt.PyJWK(dict(key), algorithm=alg).key,
            algorithms=[alg],
            # Time and audience rules are checked below exactly as API Gateway states them.
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except PyJWTError:
        raise _unauthorized("signature verification failed") from None
    if claims.get("iss") != config.issuer:
        raise _unauthorized("issuer mismatch")
    _check_audience(claims, config)
    _check_times(claims, now())
    if required_scopes and not set(required_scopes) & set(token_scopes(claims)):
        raise AuthorizerDenied(403, "insufficient_scope", "token lacks the route's scopes")
    return claims


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise _unauthorized("missing token")
    token = authorization.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def _signing_key(token: str, config: JwtAuthorizerConfig, jwks: JwksSource) -> tuple[str, Mapping[str, Any]]:
    """(alg, JWK) for the token's header: an RSA algorithm and a kid the issuer publishes (refetched once)."""
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise _unauthorized("malformed token") from None
    alg = header.get("alg")
    if alg not in RSA_ALGORITHMS:
        raise _unauthorized(f"unsupported algorithm {alg!s}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise _unauthorized("token has no kid")
    key = _key_for(jwks(config.issuer), kid)
    if key is None and isinstance(jwks, CachingJwks):
        key = _key_for(jwks(config.issuer, refresh=True), kid)
    if key is None:
        raise _unauthorized("kid not found in the issuer's JWKS")
    return str(alg), key


def _check_audience(claims: Mapping[str, Any], config: JwtAuthorizerConfig) -> None:
    """`aud` (any of them) must be an allowed audience; without `aud`, `client_id` must be."""
    audience = claims.get("aud")
    if audience is not None:
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(a in config.audience for a in audiences):
            raise _unauthorized("audience mismatch")
    elif claims.get("client_id") not in config.audience:
        raise _unauthorized("client_id mismatch")


def _is_time(value: Any) -> TypeIs[int | float]:
    return isinstance(value, int | float)


def _check_times(claims: Mapping[str, Any], current: float) -> None:
    exp = claims.get("exp")
    if not _is_time(exp) or exp <= current:
        raise _unauthorized("token expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_time(nbf) or nbf > current):
        raise _unauthorized("token not yet valid")
    iat = claims.get("iat")
    if iat is not None and (not _is_time(iat) or iat > current):
        raise _unauthorized("token issued in the future")


def claims_as_api_gateway_passes_them(claims: Mapping[str, Any]) -> dict[str, str]:
    """API Gateway hands claims to the integration as strings (arrays as "[a b]", booleans lower-case)."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {k: text(v) for k, v in claims.items()}
