"""Expand/contract, checked: the previous release's code keeps working on the new schema.

During a rolling upgrade the migration Job runs first, then old pods serve beside new ones on the
migrated database; a rollback leaves the new schema under the old code. So each migration may only
expand: the code before it must find every table and column it maps, with the same type and no
stricter null rule, and every column it does not know must be one its INSERTs can leave out
(nullable, or with a server default).

"The previous release" of a service is its code at the parent of the commit that added its newest
migration (the schema change most recently shipped; no release tags exist yet). That code is taken
from git, its models imported in a separate interpreter, and compared with a database migrated by
the current history (alembic's own comparison)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from crm_kit.migrations import alembic_config

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["leads", "sales", "customers", "orders", "support", "notifications", "reporting"]
pytestmark = pytest.mark.integration

# Runs in the old code's interpreter: alembic's comparison of the migrated database with the old
# models, as JSON lines (what the database has that the models lack, and the reverse).
COMPARE = """
import asyncio, importlib, json, sys
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

metadata = importlib.import_module(f"crm_{sys.argv[1]}.db").metadata

def describe(diff):
    if isinstance(diff, list):  # column modifications come grouped
        return [describe(d) for d in diff]
    op = diff[0]
    if op in ("add_table", "remove_table"):
        return {"op": op, "table": diff[1].name}
    if op in ("add_column", "remove_column"):
        column = diff[3]
        return {"op": op, "table": diff[2], "column": column.name, "nullable": column.nullable,
                "server_default": column.server_default is not None}
    if op in ("modify_type", "modify_nullable", "modify_default"):
        return {"op": op, "table": diff[2], "column": diff[3], "database": str(diff[5]), "code": str(diff[6])}
    return {"op": op}

# The bodies of the BEFORE INSERT triggers on a table: one that assigns NEW.<column> fills in a
# column an old INSERT leaves out.
TRIGGERS = text(
    "SELECT pg_get_functiondef(t.tgfoid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE c.relname = :table AND NOT t.tgisinternal AND t.tgtype & 2 = 2 AND t.tgtype & 4 = 4"
)

async def main():
    engine = create_async_engine(sys.argv[2], poolclass=pool.NullPool)
    async with engine.connect() as conn:
        diffs = await conn.run_sync(lambda sync: compare_metadata(
            MigrationContext.configure(sync, opts={"compare_type": True}), metadata))
        flat = []
        for diff in diffs:
            described = describe(diff)
            flat.extend(described if isinstance(described, list) else [described])
        for item in flat:
            if item["op"] == "remove_column":
                bodies = (await conn.execute(TRIGGERS, {"table": item["table"]})).scalars().all()
                item["filled_by_trigger"] = any(f"NEW.{item['column']} :=" in body for body in bodies)
    await engine.dispose()
    print(json.dumps(flat))

asyncio.run(main())
"""


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def previous_release(service: str) -> str | None:
    """The commit before the one that added the service's newest migration (None: only one)."""
    versions = f"services/{service}/migrations/versions/"
    added = git("log", "--format=%H", "--diff-filter=A", "--", versions).split()
    if len(added) < 2:
        return None
    return git("rev-parse", f"{added[0]}^").strip()


def export(commit: str, paths: list[str], into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, *paths], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def incompatible(diffs: list[dict[str, object]]) -> list[dict[str, object]]:
    """What would break the old code: a table or column it maps that is gone, a changed type, a
    column made NOT NULL, or a new NOT NULL column its INSERTs leave out with neither a default
    nor a BEFORE INSERT trigger that fills it in."""
    broken = []
    for diff in diffs:
        op = diff["op"]
        if op in ("add_table", "add_column", "modify_type"):
            broken.append(diff)
        elif op == "modify_nullable" and diff["database"] == "False":
            broken.append(diff)
        elif op == "remove_column" and not (diff["nullable"] or diff["server_default"] or diff["filled_by_trigger"]):
            broken.append(diff)
    return broken


@pytest.mark.parametrize("service", SERVICES)
async def test_the_previous_release_works_on_the_new_schema(service: str, fresh_database, tmp_path: Path) -> None:
    commit = previous_release(service)
    if commit is None:
        pytest.skip(f"{service} has one migration: no previous release of its schema")
    url = await fresh_database(f"{service}_n1")
    await asyncio.to_thread(command.upgrade, alembic_config(ROOT / "services" / service / "migrations", url), "head")

    old = tmp_path / "old"
    sources = [f"services/{service}/src", "libs/kit/src", "libs/contracts/src"]
    await asyncio.to_thread(export, commit, sources, old)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(old / path) for path in sources)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", COMPARE, service, url, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-3000:]
    diffs = json.loads(out)
    # The old code is the old code, not this tree's (the interpreter imported it from the export).
    assert incompatible(diffs) == [], f"{service} at {commit[:10]} would break on the new schema: {diffs}"


def test_the_check_catches_a_contracting_migration() -> None:
    """The classification itself: what an expand-only history never produces is reported."""

    def new(column: str, *, nullable: bool = False, default: bool = False, trigger: bool = False) -> dict[str, object]:
        return {
            "op": "remove_column",
            "table": "leads",
            "column": column,
            "nullable": nullable,
            "server_default": default,
            "filled_by_trigger": trigger,
        }

    dropped = {"op": "add_column", "table": "leads", "column": "phone", "nullable": True, "server_default": False}
    required, optional = new("region"), new("note", nullable=True)
    defaulted, filled = new("n", default=True), new("category", trigger=True)
    stricter = {"op": "modify_nullable", "table": "leads", "column": "city", "database": "False", "code": "True"}
    looser = {"op": "modify_nullable", "table": "leads", "column": "city", "database": "True", "code": "False"}
    everything = [dropped, required, optional, defaulted, filled, stricter, looser]
    assert incompatible(everything) == [dropped, required, stricter]


async def test_a_stage_written_by_a_release_before_forecast_categories_gets_one(fresh_database) -> None:
    """sales 0006: an old pod's stage (no forecast_category) gets the one 0003's back-fill gives."""
    url = await fresh_database("sales_categories")
    await asyncio.to_thread(command.upgrade, alembic_config(ROOT / "services" / "sales" / "migrations", url), "head")
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await connection.execute("INSERT INTO pipelines (id, name) VALUES ('p-old', 'old pod')")
        stages = [("s-1", 1, 20, "open"), ("s-2", 2, 60, "open"), ("s-3", 3, 90, "open"), ("s-4", 4, 100, "won")]
        await connection.executemany(
            "INSERT INTO pipeline_stages (id, pipeline_id, position, name, probability, outcome)"
            " VALUES ($1, 'p-old', $2, $1, $3, $4)",
            stages,
        )
        # The current code names its category, and keeps it.
        await connection.execute(
            "INSERT INTO pipeline_stages (id, pipeline_id, position, name, probability, outcome, forecast_category)"
            " VALUES ('s-5', 'p-old', 5, 's-5', 10, 'open', 'commit')"
        )
        rows = await connection.fetch(
            "SELECT id, forecast_category FROM pipeline_stages WHERE pipeline_id = 'p-old' ORDER BY position"
        )
    finally:
        await connection.close()
    assert [tuple(r) for r in rows] == [
        ("s-1", "pipeline"),
        ("s-2", "best_case"),
        ("s-3", "commit"),
        ("s-4", "closed"),
        ("s-5", "commit"),
    ]
