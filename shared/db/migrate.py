"""Ordered SQL migrations from ``schemas/migrations``.

Each file ``NNNN_name.sql`` is applied once, in its own transaction, and recorded in
``schema_migrations`` with its SHA-256. Re-running is a no-op; a file whose content
changed after it was applied is refused with a clear error (write a new migration).

CLI: ``python -m shared.db.migrate apply|status [--dsn DSN]`` (DSN defaults to
``DATABASE_URL``). Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x61626677  # advisory lock: one runner at a time

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read the migration files in order; refuse gaps, duplicates and bad names."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"bad migration file name {path.name!r} (want NNNN_name.sql)")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise MigrationError(
                f"migration numbering gap or duplicate at {mig.version:04d}_{mig.name}"
            )
    return found


async def apply_migrations(
    conn: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply what is pending; return the migrations applied by this call."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_BOOKKEEPING)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {r["version"]: r for r in rows}
        done: list[Migration] = []
        for mig in migrations:
            row = applied.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} was edited after it was applied "
                        f"(checksum {mig.checksum[:12]} != recorded {row['checksum'][:12]}); "
                        "revert the edit and add a new migration instead"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        mig.version,
                        mig.name,
                        mig.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {mig.version:04d}_{mig.name} failed: {exc.__class__.__name__}: {exc}"
                ) from exc
            done.append(mig)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _main(command: str, dsn: str) -> int:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot connect to PostgreSQL at {_redact(dsn)}: {exc}", file=sys.stderr)
        return 2
    try:
        if command == "status":
            await conn.execute(_BOOKKEEPING)
            rows = await conn.fetch(
                "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1"
            )
            done = {r["version"] for r in rows}
            for mig in load_migrations():
                state = "applied" if mig.version in done else "pending"
                print(f"{mig.version:04d}_{mig.name}: {state}")
            return 0
        applied = await apply_migrations(conn)
        total = len(load_migrations())
        print(f"migrations: {len(applied)} applied, {total - len(applied)} already in place")
        return 0
    except MigrationError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await conn.close()


def _redact(dsn: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", dsn)


def main() -> int:
    parser = argparse.ArgumentParser(description="Apply the SQL migrations in schemas/migrations.")
    parser.add_argument("command", choices=["apply", "status"])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if not args.dsn:
        print("error: no database: set DATABASE_URL or pass --dsn", file=sys.stderr)
        return 2
    return asyncio.run(_main(args.command, args.dsn))


if __name__ == "__main__":
    sys.exit(main())
