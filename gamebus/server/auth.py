"""Who may do what: tokens from the config, per-topic permissions.

With no tokens configured the broker runs in *open mode*: every client may
do everything, and the broker refuses to listen on anything but loopback
(see :func:`check_bind`), so open mode is never exposed to a network by
accident.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from gamebus.errors import AuthenticationFailed, ConfigError, NotAuthorized
from gamebus.server.config import BrokerConfig, TokenGrant

__all__ = ["Action", "Authorizer", "Principal", "check_bind"]

Action = Literal["produce", "consume", "admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client; ``grant`` is None in open mode (all allowed)."""

    name: str
    grant: TokenGrant | None

    def allowed(self, action: Action, topic: str) -> bool:
        grant = self.grant
        if grant is None or grant.admin:
            return True
        if action == "admin":
            return False
        patterns = grant.produce if action == "produce" else grant.consume
        return any(fnmatchcase(topic, p) for p in patterns)

    def require(self, action: Action, topic: str) -> None:
        if not self.allowed(action, topic):
            raise NotAuthorized(action, topic)


class Authorizer:
    def __init__(self, config: BrokerConfig) -> None:
        self._grants = config.tokens

    @property
    def open_mode(self) -> bool:
        return not self._grants

    def authenticate(self, token: str | None) -> Principal:
        if not self._grants:
            return Principal("anonymous", None)
        if token:
            for grant in self._grants:
                # Constant-time comparison: do not leak token prefixes by timing.
                if hmac.compare_digest(grant.token.encode(), token.encode()):
                    return Principal(grant.name, grant)
        raise AuthenticationFailed("missing or unknown token")


def check_bind(config: BrokerConfig) -> None:
    """Refuse to listen beyond loopback without auth."""
    if config.auth_enabled:
        return
    for host in (config.host, config.admin_host):
        if host == "localhost":
            continue
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"refusing to listen on {host} without auth: open mode is loopback-only; "
                "configure [[tokens]] in --config or bind 127.0.0.1"
            )
