"""Relay client tokens: signed JWTs that say who a client is and what it may watch.

Claims: ``sub`` (who), ``role`` (``player``, ``spectator`` or ``analyst``),
``matches`` (a list of match ids, or ``"*"`` for all) and ``exp``. HS256 by
default; the key comes from the relay's config (the CLI reads it from a flag
or an environment variable, never this module).

Every failure maps to a WebSocket close code so that a browser, which never
sees an HTTP status, can still tell what went wrong: 4001 missing, forged or
malformed; 4002 expired; 4003 (raised later, per subscription) forbidden.
The clock is an argument (``now``), so expiry is testable without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qs

import jwt

from relay.protocol import CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_INVALID

__all__ = [
    "ROLES",
    "Claims",
    "Role",
    "TokenError",
    "issue_token",
    "token_from_request",
    "verify_token",
]

Role = Literal["player", "spectator", "analyst"]
ROLES: Final = ("player", "spectator", "analyst")
_MAX_MATCHES: Final = 1_000


class TokenError(Exception):
    """A token the relay refuses; ``close_code`` is what the client sees."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code, self.reason = close_code, reason


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: Role
    #: ``None`` means every match.
    matches: frozenset[str] | None
    exp: int

    def may_watch(self, match: str) -> bool:
        return self.matches is None or match in self.matches

    @property
    def may_read_alerts(self) -> bool:
        return self.role == "analyst"


def issue_token(
    *,
    key: str | bytes,
    sub: str,
    role: Role,
    matches: Iterable[str] | Literal["*"] = "*",
    exp: int | None = None,
    ttl_s: int = 3_600,
    algorithm: str = "HS256",
    now: float | None = None,
) -> str:
    """Sign a token (for tests, tools and game backends that hand tokens out)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": sub,
        "role": role,
        "matches": "*" if matches == "*" else list(matches),
        "iat": issued,
        "exp": issued + ttl_s if exp is None else exp,
    }
    return jwt.encode(claims, key, algorithm=algorithm)


def verify_token(
    token: str | None,
    *,
    key: str | bytes,
    algorithms: Iterable[str] = ("HS256",),
    now: float | None = None,
    leeway_s: float = 0.0,
) -> Claims:
    """Check the signature and claims of ``token``; raise :class:`TokenError`."""
    if not token:
        raise TokenError(CLOSE_TOKEN_INVALID, "token missing")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            options={"verify_exp": False, "require": ["sub", "role", "exp"]},
        )
    except jwt.InvalidTokenError as exc:
        raise TokenError(CLOSE_TOKEN_INVALID, f"token invalid: {type(exc).__name__}") from None
    claims = _claims(payload)
    current = time.time() if now is None else now
    if claims.exp + leeway_s <= current:
        raise TokenError(CLOSE_TOKEN_EXPIRED, "token expired")
    return claims


def _claims(payload: Mapping[str, Any]) -> Claims:
    sub, role, exp = payload.get("sub"), payload.get("role"), payload.get("exp")
    if not isinstance(sub, str) or not sub:
        raise TokenError(CLOSE_TOKEN_INVALID, "token invalid: bad sub")
    if role not in ROLES:
        raise TokenError(CLOSE_TOKEN_INVALID, "token invalid: bad role")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise TokenError(CLOSE_TOKEN_INVALID, "token invalid: bad exp")
    raw = payload.get("matches", [])
    matches: frozenset[str] | None
    if raw == "*":
        matches = None
    elif isinstance(raw, list) and len(raw) <= _MAX_MATCHES and all(isinstance(m, str) for m in raw):
        matches = frozenset(raw)
    else:
        raise TokenError(CLOSE_TOKEN_INVALID, "token invalid: matches must be a list or '*'")
    return Claims(sub, role, matches, int(exp))


def token_from_request(query: str, authorization: str | None) -> str | None:
    """The token from ``Authorization: Bearer ...`` or the ``token`` query parameter.

    Browsers cannot set headers on a WebSocket, hence the query parameter.
    """
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    values = parse_qs(query).get("token")
    return values[0] if values else None
