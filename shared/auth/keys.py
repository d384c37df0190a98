"""API keys: scopes, hashing, the configured key ring.

A key is a long random token (``abf_`` + 43 URL-safe characters, 256 bits). The
services never see keys at rest: the setting ``API_KEYS`` holds one entry per key,
``principal:scope:sha256hex``, separated by commas. A presented key is hashed with
SHA-256 and its digest looked up among the configured ones (see :class:`KeyRing`).
The keys are random and long, so an unsalted hash is enough: there is nothing to
guess from a dictionary, and a leaked hash does not give the key back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import ConfigurationError

__all__ = [
    "KEY_PREFIX",
    "ApiKeyEntry",
    "KeyRing",
    "Scope",
    "hash_key",
    "new_key",
    "parse_entries",
]

KEY_PREFIX = "abf_"
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_MAX_KEY_LENGTH = 512


class Scope(StrEnum):
    """What a key may do.

    - ``admin``: change schemas, versions, variants, experiments (every non-GET route of
      the control API, the lifecycle actions); implies ``read`` and ``client``;
    - ``read``: every GET of the control API, performance, results, experiment
      statuses and winners (and ``POST /api/v1/performance/compare``, a query);
    - ``client``: ``POST /api/v1/assign``, ``/api/v1/assign/batch``,
      ``GET /api/v1/sdk/payload`` (what an orchestrator or an SDK needs).
    """

    ADMIN = "admin"
    READ = "read"
    CLIENT = "client"

    @property
    def grants(self) -> frozenset[Scope]:
        """The scopes a key of this scope holds (itself and what it implies)."""
        return _GRANTS[self]

    def allows(self, required: Scope) -> bool:
        return required in _GRANTS[self]


_GRANTS: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.READ, Scope.CLIENT}),
    Scope.READ: frozenset({Scope.READ}),
    Scope.CLIENT: frozenset({Scope.CLIENT}),
}


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 of the key (lower-case hex), as stored in ``API_KEYS``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyEntry:
    """One configured key: who holds it, its scope, the SHA-256 of the key."""

    principal: str
    scope: Scope
    sha256: str

    def __post_init__(self) -> None:
        if not _PRINCIPAL.match(self.principal):
            raise ConfigurationError(
                f"API_KEYS: principal {self.principal!r} must be 1-64 characters of "
                "letters, digits and . _ @ - (starting with a letter or digit)"
            )
        if not _HEX.match(self.sha256):
            raise ConfigurationError(
                f"API_KEYS: the hash of {self.principal!r} must be 64 lower-case hex "
                "characters (python -m shared.auth hash KEY)"
            )

    def render(self) -> str:
        """The entry as written in ``API_KEYS``."""
        return f"{self.principal}:{self.scope.value}:{self.sha256}"


def parse_entries(text: str) -> list[ApiKeyEntry]:
    """``principal:scope:sha256hex`` entries separated by commas (whitespace and empty
    entries ignored); raises :class:`ConfigurationError` naming the bad entry."""
    entries: list[ApiKeyEntry] = []
    for n, raw in enumerate(text.split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 3:
            raise ConfigurationError(
                f"API_KEYS: entry {n} is not principal:scope:sha256hex "
                f"({len(parts)} fields separated by ':')"
            )
        principal, scope, digest = (p.strip() for p in parts)
        try:
            scope_ = Scope(scope.lower())
        except ValueError:
            raise ConfigurationError(
                f"API_KEYS: entry {n} ({principal}): unknown scope {scope!r} "
                f"(one of {', '.join(s.value for s in Scope)})"
            ) from None
        entries.append(ApiKeyEntry(principal, scope_, digest.lower()))
    return entries


class KeyRing:
    """The configured keys, by the SHA-256 of each. :meth:`lookup` hashes the presented
    key and looks the digest up (one dict probe, whatever the number of keys). Timing
    reveals at most how a guess's digest compares with stored digests, which says nothing
    about any key: keys are 256-bit random and SHA-256 cannot be steered to a prefix."""

    __slots__ = ("_by_digest",)

    def __init__(self, entries: Iterable[ApiKeyEntry] = ()) -> None:
        self._by_digest: dict[str, ApiKeyEntry] = {}
        for entry in entries:
            if entry.sha256 in self._by_digest:
                raise ConfigurationError(f"API_KEYS: the hash of {entry.principal!r} appears twice")
            self._by_digest[entry.sha256] = entry

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        return cls(parse_entries(text))

    @property
    def entries(self) -> Sequence[ApiKeyEntry]:
        return tuple(self._by_digest.values())

    def __len__(self) -> int:
        return len(self._by_digest)

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def lookup(self, key: str) -> ApiKeyEntry | None:
        """The entry of ``key``, or None for an unknown (or absurdly long) key."""
        if not key or len(key) > _MAX_KEY_LENGTH:
            return None
        return self._by_digest.get(hash_key(key))
