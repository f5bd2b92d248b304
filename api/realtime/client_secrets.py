"""Ephemeral realtime keys (`ek_…`): a browser gets one from the app server instead of the real API key.

OpenAI's shape: GA `POST /v1/realtime/client_secrets` returns `{value, expires_at, session}`; beta
`POST /v1/realtime/sessions` (and `/transcription_sessions`) return the session with `client_secret: {value,
expires_at}`. A key is short-lived, single-use (consumed when a call or socket is opened with it) and valid on the
realtime endpoints only (middleware/auth.py). The session config given with the key is what the call starts with.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "ek_"
MAX_KEYS = 10_000  # outstanding keys at most; the oldest unused are dropped beyond it


@dataclass
class ClientSecret:
    value: str
    expires_at: int
    session: dict[str, Any] = field(default_factory=dict)


class EphemeralKeyError(LookupError):
    """The key is unknown, expired or already used: a 401 with this message."""


class ClientSecretStore:
    """Issued ephemeral keys, in memory (one server process), each redeemable once before it expires."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._keys: dict[str, ClientSecret] = {}

    def issue(self, ttl_seconds: int, session: dict[str, Any] | None = None) -> ClientSecret:
        self._drop_expired()
        while len(self._keys) >= MAX_KEYS:
            self._keys.pop(next(iter(self._keys)))
        secret = ClientSecret(PREFIX + secrets.token_urlsafe(24), int(self._clock()) + int(ttl_seconds),
                              dict(session or {}))
        self._keys[secret.value] = secret
        return secret

    def is_live(self, value: str) -> bool:
        secret = self._keys.get(value)
        return secret is not None and secret.expires_at > self._clock()

    def redeem(self, value: str) -> ClientSecret:
        """The key's secret, consumed: a second redeem of the same key fails."""
        secret = self._keys.pop(value, None)
        if secret is None:
            raise EphemeralKeyError("The ephemeral key is unknown or was already used (each key opens one session).")
        if secret.expires_at <= self._clock():
            raise EphemeralKeyError("The ephemeral key has expired.")
        return secret

    def _drop_expired(self) -> None:
        now = self._clock()
        for value in [v for v, s in self._keys.items() if s.expires_at <= now]:
            del self._keys[value]
