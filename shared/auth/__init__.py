"""Access control: API keys with scopes (``admin``, ``read``, ``client``).

Keys come from the ``API_KEYS`` setting (:class:`AuthSettings`), stored as SHA-256
hashes; the HTTP edge (:mod:`shared.http`) authenticates every ``/api/`` request and the
routers declare the scope they need (:func:`require`, :func:`require_by_method`).
``python -m shared.auth create|hash`` makes keys. See ``docs/security.md``.
"""

from .guards import (
    AUTH_RESPONSES,
    PRINCIPAL_KEY,
    ApiKeyMiddleware,
    Forbidden,
    Principal,
    ScopeGuard,
    Unauthorized,
    auth_responses,
    authenticate,
    document_scopes,
    principal_of,
    require,
    require_by_method,
    route_guard,
    scope_denied,
)
from .keys import KEY_PREFIX, ApiKeyEntry, KeyRing, Scope, hash_key, new_key, parse_entries
from .settings import AuthSettings

__all__ = [
    "AUTH_RESPONSES",
    "KEY_PREFIX",
    "PRINCIPAL_KEY",
    "ApiKeyEntry",
    "ApiKeyMiddleware",
    "AuthSettings",
    "Forbidden",
    "KeyRing",
    "Principal",
    "Scope",
    "ScopeGuard",
    "Unauthorized",
    "auth_responses",
    "authenticate",
    "document_scopes",
    "hash_key",
    "new_key",
    "parse_entries",
    "principal_of",
    "require",
    "require_by_method",
    "route_guard",
    "scope_denied",
]
