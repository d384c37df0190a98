"""API keys: parsing the setting, hashing, lookup, scope rules, the CLI."""

from __future__ import annotations

import hashlib

import pytest

from shared.auth import (
    ApiKeyEntry,
    AuthSettings,
    KeyRing,
    Scope,
    Unauthorized,
    authenticate,
    hash_key,
    new_key,
    parse_entries,
)
from shared.auth.__main__ import main as cli
from shared.errors import ConfigurationError

pytestmark = pytest.mark.unit

H1 = hashlib.sha256(b"k1").hexdigest()
H2 = hashlib.sha256(b"k2").hexdigest()


def test_new_keys_are_long_random_and_prefixed() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("abf_") and len(k) >= 40 for k in keys)


def test_hash_is_sha256_hex() -> None:
    assert hash_key("k1") == H1 and len(H1) == 64


def test_parse_entries_with_spaces_and_empty_items() -> None:
    entries = parse_entries(f" ci:admin:{H1} ,, dash:READ:{H2.upper()} ,")
    assert entries == [
        ApiKeyEntry("ci", Scope.ADMIN, H1),
        ApiKeyEntry("dash", Scope.READ, H2),
    ]
    assert entries[0].render() == f"ci:admin:{H1}"
    assert parse_entries("") == [] and parse_entries(" , ") == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (f"ci:admin:{H1}:x", "principal:scope:sha256hex"),
        ("ci:admin", "principal:scope:sha256hex"),
        (f"ci:owner:{H1}", "unknown scope"),
        ("ci:admin:abc", "64 lower-case hex"),
        (f"c i:admin:{H1}", "principal"),
        (f":admin:{H1}", "principal"),
        (f"ci:admin:{H1},other:read:{H1}", "appears twice"),
    ],
)
def test_bad_entries_fail_fast(text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        KeyRing.parse(text)


def test_lookup_finds_the_entry_of_the_key_and_nothing_else() -> None:
    ring = KeyRing.parse(f"ci:admin:{H1},dash:read:{H2}")
    assert len(ring) == 2 and ring
    assert ring.lookup("k1") == ApiKeyEntry("ci", Scope.ADMIN, H1)
    assert ring.lookup("k2") is not None and ring.lookup("k2").principal == "dash"  # type: ignore[union-attr]
    assert ring.lookup("k3") is None
    assert ring.lookup("") is None
    assert ring.lookup("x" * 10_000) is None
    assert ring.lookup(H1) is None  # the hash is not the key


def test_lookup_among_many_keys() -> None:
    """One dict probe per lookup: every one of 5,000 keys finds its own entry."""
    keys = [new_key() for _ in range(5_000)]
    ring = KeyRing(
        ApiKeyEntry(f"p{i}", Scope.CLIENT if i % 2 else Scope.READ, hash_key(k))
        for i, k in enumerate(keys)
    )
    assert len(ring) == 5_000 and len(ring.entries) == 5_000
    for i, k in enumerate(keys):
        entry = ring.lookup(k)
        assert entry is not None and entry.principal == f"p{i}"
    assert ring.lookup(new_key()) is None
    with pytest.raises(ConfigurationError, match="appears twice"):
        KeyRing([ApiKeyEntry("a", Scope.READ, H1), ApiKeyEntry("b", Scope.ADMIN, H1)])


def test_several_keys_per_principal_for_rotation() -> None:
    ring = KeyRing.parse(f"ci:admin:{H1},ci:admin:{H2}")
    old, new = ring.lookup("k1"), ring.lookup("k2")
    assert old is not None and new is not None
    assert (old.principal, new.principal) == ("ci", "ci") and old.sha256 != new.sha256


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        (Scope.ADMIN, Scope.ADMIN, True),
        (Scope.ADMIN, Scope.READ, True),
        (Scope.ADMIN, Scope.CLIENT, True),
        (Scope.READ, Scope.READ, True),
        (Scope.READ, Scope.ADMIN, False),
        (Scope.READ, Scope.CLIENT, False),
        (Scope.CLIENT, Scope.CLIENT, True),
        (Scope.CLIENT, Scope.READ, False),
        (Scope.CLIENT, Scope.ADMIN, False),
    ],
)
def test_scope_rules(granted: Scope, required: Scope, allowed: bool) -> None:
    assert granted.allows(required) is allowed


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("Basic azE=", "malformed"),
        ("Bearer", "malformed"),
        ("Bearer  ", "malformed"),
        ("Bearer k1 k2", "malformed"),
        ("Bearer k3", "unknown API key"),
    ],
)
def test_authenticate_refuses(header: str | None, message: str) -> None:
    ring = KeyRing.parse(f"ci:admin:{H1}")
    with pytest.raises(Unauthorized, match=message) as info:
        authenticate(header, ring)
    assert info.value.status_code == 401 and info.value.code == "unauthorized"
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_authenticate_accepts_the_scheme_in_any_case() -> None:
    ring = KeyRing.parse(f"ci:admin:{H1}")
    for header in ("Bearer k1", "bearer k1", "BEARER   k1 "):
        p = authenticate(header, ring)
        assert (p.name, p.scope) == ("ci", Scope.ADMIN)


def test_no_keys_configured_refuses_everything() -> None:
    with pytest.raises(Unauthorized, match="no API key is configured"):
        authenticate("Bearer k1", KeyRing())


def test_settings_read_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", f"ci:client:{H1}")
    assert AuthSettings().keyring().lookup("k1") == ApiKeyEntry("ci", Scope.CLIENT, H1)
    monkeypatch.setenv("API_KEYS", "")
    assert not AuthSettings().keyring()


def test_cli_create_prints_a_key_and_its_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["create", "--principal", "ci-deployer", "--scope", "admin"]) == 0
    out = capsys.readouterr().out.splitlines()
    key = out[0].removeprefix("key:").strip()
    entry = out[1].removeprefix("entry:").strip()
    assert entry == f"ci-deployer:admin:{hash_key(key)}"
    assert KeyRing.parse(entry).lookup(key) is not None


def test_cli_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["hash", "k1"]) == 0
    assert capsys.readouterr().out.strip() == H1
