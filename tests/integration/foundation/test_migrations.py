"""The migration runner on the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared.db.migrate import Migration, apply_migrations, load_migrations
from shared.errors import MigrationError
from tests.conftest import Infra

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_db(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    name = f"abflow_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(infra.admin_database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(
        urlunsplit(urlsplit(infra.admin_database_url)._replace(path=f"/{name}"))
    )
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_project_migrations_apply_from_empty_and_reapply_as_a_no_op(
    empty_db: asyncpg.Connection,
) -> None:
    migrations = load_migrations()
    assert migrations, "schemas/migrations is empty"
    applied = await apply_migrations(empty_db)
    assert [m.version for m in applied] == [m.version for m in migrations]
    assert await apply_migrations(empty_db) == []
    rows = await empty_db.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["checksum"]) for r in rows] == [
        (m.version, m.checksum) for m in migrations
    ]


async def test_an_edited_migration_is_refused(empty_db: asyncpg.Connection) -> None:
    first = [Migration(1, "t", "CREATE TABLE t (id int)")]
    await apply_migrations(empty_db, first)
    edited = [Migration(1, "t", "CREATE TABLE t (id bigint)")]
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await apply_migrations(empty_db, edited)


async def test_a_failing_migration_rolls_back_alone(empty_db: asyncpg.Connection) -> None:
    migs = [
        Migration(1, "ok", "CREATE TABLE a (id int)"),
        Migration(2, "bad", "CREATE TABLE b (id int); SELECT 1/0"),
    ]
    with pytest.raises(MigrationError, match="0002_bad failed"):
        await apply_migrations(empty_db, migs)
    assert await empty_db.fetchval("SELECT count(*) FROM schema_migrations") == 1
    assert await empty_db.fetchval("SELECT to_regclass('b')") is None
    assert await empty_db.fetchval("SELECT to_regclass('a')") == "a"


def test_file_names_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0003_c.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="gap"):
        load_migrations(tmp_path)
    (tmp_path / "0003_c.sql").rename(tmp_path / "3_c.sql")
    with pytest.raises(MigrationError, match="bad migration file name"):
        load_migrations(tmp_path)
