"""``python -m shared.auth``: make API keys.

    python -m shared.auth create --principal ci-deployer --scope admin
    python -m shared.auth hash KEY        (or the key on stdin: python -m shared.auth hash -)

``create`` prints the new key (give it to its holder; it is shown once) and the
``API_KEYS`` entry to append on every service (the entry holds only the key's hash).
"""

from __future__ import annotations

import argparse
import sys

from .keys import ApiKeyEntry, Scope, hash_key, new_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.auth", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="a new random key and its API_KEYS entry")
    create.add_argument("--principal", required=True, help="who holds the key (the audit actor)")
    create.add_argument("--scope", required=True, choices=[s.value for s in Scope])
    hash_ = sub.add_parser("hash", help="the SHA-256 of a key, as stored in API_KEYS")
    hash_.add_argument("key", help="the key, or - to read it from stdin")
    args = parser.parse_args(argv)
    out = sys.stdout
    if args.command == "create":
        key = new_key()
        entry = ApiKeyEntry(args.principal, Scope(args.scope), hash_key(key))
        out.write(f"key:   {key}\n")
        out.write(f"entry: {entry.render()}\n")
        out.write(
            "Append the entry to API_KEYS (comma-separated) on every service; the key "
            "itself is not stored anywhere.\n"
        )
    else:
        key = sys.stdin.readline().strip() if args.key == "-" else args.key
        out.write(hash_key(key) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
