"""Alembic, one history per service: `upgrade` runs it; `run_env` is the whole env.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# The advisory lock every migration of a service's database holds for its whole transaction
# (an arbitrary constant: one history per database).
MIGRATION_LOCK = 7_283_350_001


def migrations_dir(package_file: str) -> Path:
    """A service's Alembic directory, given a module file of its package: inside the installed
    package (an image's non-editable install; the wheel carries it as crm_<name>/migrations), else
    beside src/ in the source tree (services/<name>/migrations)."""
    package = Path(package_file).resolve().parent
    installed = package / "migrations"
    return installed if installed.is_dir() else package.parents[1] / "migrations"


def alembic_config(migrations_dir: Path, url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(migrations_dir, url), revision)


def run_env(metadata: MetaData) -> None:
    """Body of a service's migrations/env.py."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            # One migration of a database at a time: a second (a retried hook Job while the first
            # attempt still runs, two upgrades started together) waits here until the first
            # commits, then reads the version it left and has nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())


def create_messaging_tables() -> None:
    """Create the chassis' outbox, inbox and dead-letter tables (call in a service's first migration).

    The definitions are `crm_kit.tables`, so every service has the same messaging schema; a change
    there ships with a new helper and a migration in each service, never by editing this one.
    """
    from alembic import op

    from crm_kit.tables import MessagingTables

    tables = MessagingTables(MetaData())
    for table in (tables.outbox, tables.inbox, tables.dead_letters):
        table.create(op.get_bind())


def drop_messaging_tables() -> None:
    from alembic import op

    for name in ("dead_letters", "inbox", "outbox"):
        op.drop_table(name)


def create_audit_table() -> None:
    """Create the chassis' audit_log table (its definition is `crm_kit.tables`)."""
    from alembic import op

    from crm_kit.tables import MessagingTables

    MessagingTables(MetaData()).audit_log.create(op.get_bind())


def drop_audit_table() -> None:
    from alembic import op

    op.drop_table("audit_log")


def add_dead_letter_dedup_index() -> None:
    """One open dead letter per (consumer, event id) (`crm_kit.tables`): copies an earlier
    version recorded when a consumer died between recording a letter and terminating the message
    are the same letter again, so all but the first of them go before the unique index is built.
    A database created after this (0001 builds the tables from today's definitions) has it already."""
    from alembic import op

    from crm_kit.tables import DEAD_LETTER_DEDUP_INDEX

    op.execute(
        """
        DELETE FROM dead_letters d USING dead_letters first
        WHERE d.replayed_at IS NULL AND first.replayed_at IS NULL
          AND d.consumer = first.consumer AND d.event_id = first.event_id AND d.id > first.id
        """
    )
    op.execute(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {DEAD_LETTER_DEDUP_INDEX} "
        "ON dead_letters (consumer, event_id) WHERE replayed_at IS NULL"
    )


def drop_dead_letter_dedup_index() -> None:
    from alembic import op

    from crm_kit.tables import DEAD_LETTER_DEDUP_INDEX

    op.execute(f"DROP INDEX IF EXISTS {DEAD_LETTER_DEDUP_INDEX}")
