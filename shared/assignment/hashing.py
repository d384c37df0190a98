"""GrowthBook-compatible hashing (FNV-1a 32-bit, hash versions 1 and 2).

Bit-for-bit compatible with the official GrowthBook SDKs (checked against the
``growthbook`` Python package, ``growthbook.core``):

* :func:`fnv1a32` hashes a string's **UTF-16 code units**, like the JavaScript
  SDK's ``charCodeAt`` loop and the Python SDK's ``fnv1a32``. For every character of
  the Basic Multilingual Plane (all of ASCII, Latin, CJK, ...) the code unit *is* the
  Unicode code point; a character above U+FFFF (an emoji, say) counts as its two
  surrogate code units. Lone surrogates count as themselves.
* :func:`gb_hash` version 2 is ``fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000``
  and version 1 is ``fnv1a32(value + seed) % 1000 / 1000``; any other version gives
  ``None`` (the SDK skips the experiment then).

The hot path is :func:`make_hasher_v2`: FNV-1a is sequential, so the state after the
seed prefix is computed once and each call only walks the unit id (a tight loop over
its bytes when it is ASCII) and the at most ten digits of the intermediate hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

__all__ = [
    "FNV32_OFFSET_BASIS",
    "FNV32_PRIME",
    "fnv1a32",
    "gb_hash",
    "in_namespace",
    "make_hasher_v2",
]

FNV32_OFFSET_BASIS: Final = 2166136261  # 0x811C9DC5
FNV32_PRIME: Final = 16777619  # 0x01000193


def _utf16_code_units(s: str) -> Iterator[int]:
    """The UTF-16 code units of ``s`` (surrogates passed through, as "surrogatepass")."""
    for ch in s:
        c = ord(ch)
        if c < 0x10000:
            yield c
        else:
            c -= 0x10000
            yield 0xD800 | (c >> 10)
            yield 0xDC00 | (c & 0x3FF)


def fnv1a32(s: str, state: int = FNV32_OFFSET_BASIS) -> int:
    """32-bit FNV-1a of ``s``, continuing from ``state``.

    ``fnv1a32(a + b) == fnv1a32(b, fnv1a32(a))``, which lets a caller hash a constant
    prefix (a seed) once.
    """
    h = state
    if s.isascii():
        for b in s.encode():
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
        return h
    for u in _utf16_code_units(s):
        h = ((h ^ u) * 16777619) & 0xFFFFFFFF
    return h


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash(seed, value, version)``: a bucket in [0, 1), or None for an
    unknown version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(value, fnv1a32(seed)))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(seed, fnv1a32(value)) % 1000) / 1000
    return None


def in_namespace(unit_id: str, namespace: tuple[str, float, float]) -> bool:
    """GrowthBook's ``inNamespace``: hash v1 of ``unit_id`` with seed ``"__" + id`` lies
    in ``[start, end)``."""
    namespace_id, start, end = namespace
    n = gb_hash("__" + namespace_id, unit_id, 1)
    return n is not None and start <= n < end


def make_hasher_v2(seed: str) -> Callable[[str], float]:
    """A function computing ``gb_hash(seed, value, 2)`` with the seed prefix precomputed.

    This is the assignment hot path: two tight loops, one over the value's bytes
    (ASCII) or UTF-16 code units, one over the intermediate hash's decimal digits.
    """
    seed_state = fnv1a32(seed)

    def hash_v2(value: str) -> float:
        h = seed_state
        if value.isascii():
            for b in value.encode():
                h = ((h ^ b) * 16777619) & 0xFFFFFFFF
        else:
            for u in _utf16_code_units(value):
                h = ((h ^ u) * 16777619) & 0xFFFFFFFF
        n = 2166136261
        for b in str(h).encode():
            n = ((n ^ b) * 16777619) & 0xFFFFFFFF
        return (n % 10000) / 10000

    return hash_v2
