"""FNV-1a and GrowthBook hash compatibility."""

from __future__ import annotations

import random

import pytest
from growthbook import core as gb_core

from shared.assignment import fnv1a32, gb_hash, in_namespace, make_hasher_v2

pytestmark = pytest.mark.unit


def slow_fnv1a32(units: list[int]) -> int:
    """FNV-1a 32 straight from the definition, over a list of integers."""
    h = 2166136261
    for u in units:
        h ^= u
        h = (h * 16777619) % 2**32
    return h


def utf16_units(s: str) -> list[int]:
    data = s.encode("utf-16-le", "surrogatepass")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 2166136261),
        ("a", 3826002220),  # 0xe40c292c, FNV spec test vector
        ("b", 0xE70C2DE5),
        ("foobar", 0xBF9CF968),  # FNV spec test vector
        ("chongo was here!\n", 0xD49930D5),
    ],
)
def test_fnv1a32_reference_values(text: str, expected: int) -> None:
    assert fnv1a32(text) == expected
    assert slow_fnv1a32([ord(c) for c in text]) == expected


def test_fnv1a32_continues_from_a_prefix_state() -> None:
    assert fnv1a32("seed" + "value") == fnv1a32("value", fnv1a32("seed"))
    assert fnv1a32("é中" + "x😀") == fnv1a32("x😀", fnv1a32("é中"))


# GrowthBook's shared SDK spec (cases.json "hash"): seed, value, version, expected.
GROWTHBOOK_HASH_CASES = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
    ("abc", "def", 99, None),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), GROWTHBOOK_HASH_CASES)
def test_gb_hash_spec_cases(seed: str, value: str, version: int, expected: float | None) -> None:
    assert gb_hash(seed, value, version) == expected
    if version == 2:
        assert make_hasher_v2(seed)(value) == expected


# (namespace id, unit, range, expected) from GrowthBook's cases.json "inNamespace"
@pytest.mark.parametrize(
    ("unit", "namespace", "expected"),
    [
        ("1", ("namespace1", 0, 0.4), False),
        ("1", ("namespace1", 0.4, 1), True),
        ("3", ("namespace2", 0, 0.4), True),
        ("3", ("namespace2", 0.4, 1), False),
        ("4", ("namespace2", 0, 0.4), True),
        ("2", ("namespace1", 0.4, 1), True),
    ],
)
def test_in_namespace_spec_cases(
    unit: str, namespace: tuple[str, float, float], expected: bool
) -> None:
    assert in_namespace(unit, namespace) is expected
    assert gb_core.inNamespace(unit, namespace) is expected


def test_v2_reference_implementation_matches_the_definition() -> None:
    def slow_v2(seed: str, value: str) -> float:
        n = slow_fnv1a32([ord(c) for c in str(slow_fnv1a32([ord(c) for c in seed + value]))])
        return (n % 10000) / 10000

    rnd = random.Random(7)
    for _ in range(300):
        value = "".join(rnd.choice("abcdef0123456789-_") for _ in range(rnd.randint(1, 40)))
        assert gb_hash("s", value, 2) == slow_v2("s", value)
        assert make_hasher_v2("s")(value) == slow_v2("s", value)


NON_ASCII_IDS = [
    "é",
    "ünïcødé-user",
    "用户-42",
    "Ωmega",
    "\u00ff\u0100\uffff",
    "emoji-😀",  # above U+FFFF: two UTF-16 code units
    "𝄞 clef",
    "\ud800lone-surrogate",
    "mixed-ascii-é-中-😀-end",
]


@pytest.mark.parametrize("unit", NON_ASCII_IDS)
def test_non_ascii_ids_hash_exactly_like_the_growthbook_sdk(unit: str) -> None:
    assert fnv1a32(unit) == gb_core.fnv1a32(unit)
    for seed in ("", "seed", "é-seed"):
        assert gb_hash(seed, unit, 2) == gb_core.gbhash(seed, unit, 2)
        assert gb_hash(seed, unit, 1) == gb_core.gbhash(seed, unit, 1)
        assert make_hasher_v2(seed)(unit) == gb_core.gbhash(seed, unit, 2)


def test_bmp_characters_hash_by_code_point() -> None:
    """Below U+10000 a UTF-16 code unit is the code point itself."""
    for unit in ("é", "用户-42", "\u00ff\u0100\uffff"):
        assert fnv1a32(unit) == slow_fnv1a32([ord(c) for c in unit])


def test_astral_characters_hash_as_utf16_surrogate_pairs() -> None:
    """Like GrowthBook's JS SDK and its current Python SDK (``charCodeAt``)."""
    assert fnv1a32("😀") == slow_fnv1a32([0xD83D, 0xDE00])
    assert fnv1a32("😀") == slow_fnv1a32(utf16_units("😀"))
    assert fnv1a32("😀") != slow_fnv1a32([ord("😀")])


def test_fast_hasher_matches_the_sdk_on_random_ids() -> None:
    rnd = random.Random(11)
    alphabet = "abcXYZ019-_:. é中😀"
    for i in range(5000):
        seed = f"seed-{i % 7}"
        value = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 24)))
        assert make_hasher_v2(seed)(value) == gb_core.gbhash(seed, value, 2)


@pytest.mark.parametrize("unit", ["u1767", "u15024", "u20619", "u28725"])
def test_short_intermediate_hash(unit: str) -> None:
    """Values whose intermediate hash has fewer than seven decimal digits."""
    assert fnv1a32("seed" + unit) < 1_000_000
    assert make_hasher_v2("seed")(unit) == gb_core.gbhash("seed", unit, 2)
