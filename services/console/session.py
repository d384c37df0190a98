"""The console's login session: the API key sealed in a cookie.

The browser must not hold a usable key (a cookie can leak: a copied header, a backup of
the browser profile, a proxy log). So the cookie holds the key **encrypted and
authenticated** with AES-256-GCM under a server secret (``CONSOLE_SESSION_SECRET``):
``base64url(nonce ‖ ciphertext ‖ tag)`` of ``{"k": key, "u": name, "exp": epoch s}``.
A tampered, expired or foreign cookie opens to nothing, and the expiry is checked here,
not only by the browser. Any console replica with the same secret opens it; a new secret
ends every session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import time
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request

__all__ = ["SESSION_COOKIE", "Session", "SessionCodec", "session_of"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "abflow_console_session"
_AAD = b"abflow-console-session-v1"
_NONCE_BYTES = 12
_MAX_COOKIE_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Session:
    key: str
    name: str | None
    expires_at: float


class SessionCodec:
    """Seals and opens session cookies with a key derived from ``secret``."""

    def __init__(self, secret: str | None) -> None:
        if not secret:
            log.warning(
                "CONSOLE_SESSION_SECRET is not set: a random one is used, so logins end "
                "when this process stops and do not work on other replicas"
            )
            secret = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self._aead = AESGCM(hashlib.sha256(secret.encode("utf-8")).digest())

    def seal(self, key: str, name: str | None, ttl_s: float, now: float | None = None) -> str:
        expires = (time.time() if now is None else now) + ttl_s
        payload = orjson.dumps({"k": key, "u": name, "exp": expires})
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, payload, _AAD)
        return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def open(self, token: str | None, now: float | None = None) -> Session | None:
        """The session in ``token``, or None (absent, malformed, tampered, expired)."""
        if not token or len(token) > _MAX_COOKIE_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(raw) <= _NONCE_BYTES:
                return None
            data = orjson.loads(self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD))
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if not isinstance(data, dict):
            return None
        key, name, expires = data.get("k"), data.get("u"), data.get("exp")
        if not isinstance(key, str) or not isinstance(expires, int | float):
            return None
        if expires <= (time.time() if now is None else now):
            return None
        return Session(key, name if isinstance(name, str) and name else None, float(expires))


def session_of(request: Request) -> Session | None:
    """The request's session (the app's codec opens its cookie)."""
    codec: SessionCodec = request.app.state.sessions
    return codec.open(request.cookies.get(SESSION_COOKIE))
