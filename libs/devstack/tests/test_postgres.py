from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from crm_devstack._util import free_port
from crm_devstack.postgres import EmbeddedPostgres, PostgresError
from crm_devstack.pytest_plugin import MakeDatabase, asyncpg_url


@pytest.fixture
def base_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="crm-devstack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _fetchval(server: EmbeddedPostgres, database: str, sql: str) -> object:
    conn = await asyncpg.connect(server.dsn(database))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.integration
async def test_start_create_query_restart_keeps_data(base_dir: Path) -> None:
    server = EmbeddedPostgres(base_dir / "pg", free_port())
    try:
        server.start()
        assert (base_dir / "pg" / "PG_VERSION").exists()
        if os.geteuid() == 0:
            assert (base_dir / "pg").stat().st_uid != 0, "must not run as root"
        assert server.url("leads") == f"postgresql+asyncpg://postgres@127.0.0.1:{server.port}/leads"

        server.create_database("leads")
        server.create_database("leads")  # idempotent
        await server.acreate_database("leads")
        assert await _fetchval(server, "leads", "select 1") == 1
        databases = await _fetchval(server, "postgres", "select count(*) from pg_database where datname = 'leads'")
        assert databases == 1

        conn = await asyncpg.connect(server.dsn("leads"))
        await conn.execute("create table lead (id int primary key, name text)")
        await conn.execute("insert into lead values (1, 'דנה לוי')")
        await conn.close()

        server.stop()
        assert not server.running
        server.start()
        assert await _fetchval(server, "leads", "select name from lead where id = 1") == "דנה לוי"

        # A crash (SIGKILL) leaves a stale postmaster.pid; the next start recovers from the WAL.
        server.kill()
        assert (base_dir / "pg" / "postmaster.pid").exists()
        server.start()
        assert await _fetchval(server, "leads", "select count(*) from lead") == 1

        server.restart()
        assert await _fetchval(server, "leads", "select name from lead") == "דנה לוי"
    finally:
        server.stop()
    assert not server.running


@pytest.mark.integration
def test_start_failure_shows_the_log(base_dir: Path) -> None:
    port = free_port()
    first = EmbeddedPostgres(base_dir / "one", port)
    second = EmbeddedPostgres(base_dir / "two", port)  # same port: must fail to start
    try:
        first.start()
        second.startup_timeout = 10
        with pytest.raises(PostgresError, match="Log"):
            second.start()
    finally:
        second.stop()
        first.stop()


@pytest.mark.unit
def test_rejects_unsafe_database_names(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", 1)
    with pytest.raises(ValueError, match="not a valid database name"):
        server.create_database('x"; drop database postgres; --')


@pytest.mark.integration
def test_refuses_to_initdb_over_foreign_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.txt").write_text("keep me")
    server = EmbeddedPostgres(data, free_port())
    with pytest.raises(PostgresError, match="not a PostgreSQL data directory"):
        server.start()
    assert (data / "precious.txt").read_text() == "keep me"
    assert (data / "precious.txt").stat().st_uid == os.geteuid()


@pytest.mark.unit
def test_asyncpg_url_rewrites_scheme_and_database() -> None:
    assert asyncpg_url("postgresql://u:p@h:5/postgres") == "postgresql+asyncpg://u:p@h:5/postgres"
    assert asyncpg_url("postgresql+psycopg2://u@h:5/postgres?sslmode=disable", "leads_1") == (
        "postgresql+asyncpg://u@h:5/leads_1?sslmode=disable"
    )
    with pytest.raises(ValueError):
        asyncpg_url("nats://127.0.0.1:4222")


@pytest.mark.integration
async def test_fresh_database_fixture_creates_unique_databases(
    fresh_database: MakeDatabase, postgres_server: str
) -> None:
    first = await fresh_database("orders")
    second = await fresh_database("orders")
    assert first != second
    name = first.rsplit("/", 1)[1]
    assert name.startswith("orders_") and len(name) == len("orders_") + 10
    conn = await asyncpg.connect(first.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("select current_database()") == name
    finally:
        await conn.close()
    assert postgres_server.startswith("postgresql+asyncpg://")


@pytest.mark.integration
def test_pginstall_is_readable_by_others_after_start_prep(tmp_path: Path) -> None:
    from crm_devstack.postgres import pginstall_dir

    postgres_binary = pginstall_dir() / "bin" / "postgres"
    assert postgres_binary.exists()
    if os.geteuid() == 0:
        # Any earlier start() in this session made it world-executable; a fresh one must too.
        server = EmbeddedPostgres(tmp_path / "pg", free_port())
        server._prepare_filesystem()
        assert postgres_binary.stat().st_mode & stat.S_IXOTH
