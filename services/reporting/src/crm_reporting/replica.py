"""The report builder's analytical copy: an embedded DuckDB holding the columns the builder's
catalogue reads of each fact table, kept current from PostgreSQL (which stays the system of
record), so company-wide reports over ten million facts answer in well under a second
(bench/README.md, "Report builder").

How it stays current. Every write to a fact table stamps the row with its transaction's id
(`changed_xid`, a trigger: migration 0017). A sync reads, in one REPEATABLE READ snapshot, the
rows stamped at or after the watermark, and moves the watermark to that snapshot's xmin: every
transaction below it had finished when the snapshot was taken, so it is in the copy, and one still
running then is read by the next sync, whatever order they commit in. Rows come over as CSV
(COPY, in pages of PAGE_ROWS along the primary key) and replace their earlier copy, in one DuckDB
transaction per sync. Facts are never deleted (a delete would need a tombstone here).

When it is read. The builder reads it once it is loaded (before: PostgreSQL), each report after
a catch-up, so a report sees every fact committed before it was asked for, as PostgreSQL would
show it; concurrent reports share one catch-up. A failed DuckDB write drops the copy (PostgreSQL
serves again) and the next periodic sync loads it anew. Each process loads its own at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as day_start
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
from prometheus_client import Gauge, Histogram
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Table

from crm_kit.db import Database, UnitOfWork
from crm_reporting import builder, builder_store
from crm_reporting.builder_store import TABLES

log = logging.getLogger(__name__)

# Rows per COPY page: a page's CSV is a few tens of MB at most, on the replica's own volume.
PAGE_ROWS = 500_000
LOAD_RETRY_SECONDS = 30.0

SYNC_SECONDS = Histogram(
    "crm_report_replica_sync_seconds",
    "Time to bring the report builder's DuckDB copy up to date (full: a load from scratch)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
READY = Gauge("crm_report_replica_ready", "1 while the report builder reads its DuckDB copy, 0 while PostgreSQL")
SYNCED_AT = Gauge("crm_report_replica_synced_timestamp_seconds", "When the DuckDB copy last caught up (Unix time)")


@dataclass(frozen=True)
class Copied:
    """One fact table as the replica keeps it: its primary key and the columns the catalogue reads,
    with their DuckDB types."""

    fact: builder.Fact
    table: Table
    key: tuple[str, ...]
    columns: dict[str, str]


def _duck_type(table: Table, name: str) -> str:
    kind = table.c[name].type
    for sql_type, duck_type in (
        (DateTime, "TIMESTAMPTZ"),
        (Boolean, "BOOLEAN"),
        (BigInteger, "BIGINT"),
        (Integer, "INTEGER"),
        (Float, "DOUBLE"),
        (Date, "DATE"),
    ):
        if isinstance(kind, sql_type):
            return duck_type
    return "VARCHAR"


def copied(fact: builder.Fact) -> Copied:
    table = TABLES[fact.name]
    key = tuple(c.name for c in table.primary_key.columns)
    names = [*key, fact.time_column, *fact.dimensions.values(), fact.rep_column, fact.team_column]
    names += [fact.currency_column, fact.skip_blank]
    for measure in builder.MEASURES.values():
        if measure.fact == fact.name:
            names += [n for p in measure.parts for n in (p.column, p.when.removeprefix("not "))]
    return Copied(fact, table, key, {n: _duck_type(table, n) for n in dict.fromkeys(names) if n})


COPIED = [copied(f) for f in builder.FACTS.values()]


# ---------------------------------------------------------------- reading


def q(name: str) -> str:
    """A catalogue name as a quoted identifier (a column may be called `at`)."""
    return f'"{name}"'


def _aggregate(part: builder.Part) -> str:
    value = f"count({q(part.column) if part.column else '*'})" if part.fn == "count" else f"sum({q(part.column)})"
    if part.when:
        value += f" FILTER (WHERE {'NOT ' + q(part.when[4:]) if part.when.startswith('not ') else q(part.when)})"
    return value if part.fn == "count" else f"coalesce({value}, 0)"


def statement(
    fact: builder.Fact, query: builder.Query, reach: builder.Reach, zone: ZoneInfo
) -> tuple[str, list[Any], builder.RowShape]:
    """The builder store's statement in DuckDB's SQL, from the same catalogue: its parameters and
    the shape of its rows. Names come from the catalogue only; every value is a parameter."""
    shape = builder.row_shape(fact, query)
    keys = [f"CAST(timezone('{zone.key}', {q(fact.time_column)}) AS DATE)"] if shape.by_day else []
    keys += [q(fact.dimensions[d]) for d in query.dimensions if d != builder.PERIOD]
    keys += [q(fact.currency_column)] if shape.money else []
    where: list[str] = []
    params: list[Any] = []
    if fact.skip_blank:
        where.append(f"{q(fact.skip_blank)} <> ''")
    if fact.time_column:
        where += [f"{q(fact.time_column)} >= ?", f"{q(fact.time_column)} < ?"]
        params += [
            datetime.combine(query.start, day_start(), zone),
            datetime.combine(query.end + timedelta(days=1), day_start(), zone),
        ]
    for name, values in query.filters.items():
        where.append(f"{q(fact.dimensions[name])} IN ({', '.join('?' * len(values))})")
        params += list(values)
    for column, value in ((fact.rep_column, reach.rep_id), (fact.team_column, reach.team_id)):
        if value:
            where.append(f"{q(column)} = ?")
            params.append(value)
    sql = f"SELECT {', '.join([*keys, *(_aggregate(p) for p in shape.parts)])} FROM {TABLES[fact.name].name}"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    sql += f" GROUP BY {', '.join(keys)}" if keys else ""
    return f"{sql} LIMIT {builder.MAX_DAY_ROWS + 1}", params, shape


def read(
    duck: duckdb.DuckDBPyConnection, query: builder.Query, reach: builder.Reach, zone: ZoneInfo
) -> list[builder.DayRow]:
    """The day rows of a report from a DuckDB holding the facts (blocking: run it in a thread)."""
    cursor = duck.cursor()
    try:
        found: list[builder.DayRow] = []
        for fact in builder.facts_of(query.measures):
            sql, params, shape = statement(fact, query, reach, zone)
            found += builder.day_rows_of(fact, shape, cursor.execute(sql, params).fetchall())
        return found
    finally:
        cursor.close()


# ---------------------------------------------------------------- copying


def _csv(path: Path, columns: dict[str, str]) -> str:
    # PostgreSQL's CSV quotes every value and leaves a NULL bare: "" is an empty string, not NULL.
    return (
        f"read_csv('{path}', header = false, auto_detect = false, delim = ',', quote = '\"', escape = '\"',"
        f" allow_quoted_nulls = false, columns = {columns!r})"
    )


class Replica:
    """The DuckDB copy of one process (module doc)."""

    def __init__(self, db: Database, directory: str = "", *, memory_limit: str = "256MB", threads: int = 0) -> None:
        self.db = db
        self._owned = not directory
        self.directory = Path(directory or tempfile.mkdtemp(prefix="crm-report-replica-"))
        self.memory_limit = memory_limit
        self.threads = threads
        self.duck: duckdb.DuckDBPyConnection | None = None
        self.watermark = 0
        self._lock = asyncio.Lock()
        # monotonic time the last finished catch-up began: a report asked before it needs no other
        self._caught_up_from = 0.0
        self._failed_loads = 0
        self._retry_at = 0.0

    @property
    def ready(self) -> bool:
        return self.duck is not None

    async def refresh(self) -> None:
        """The periodic job: load the copy when there is none, else catch it up. After a failed load
        the next waits LOAD_RETRY_SECONDS, doubling up to 10 minutes: a load reads every fact."""
        if self.duck is not None:
            await self.catch_up()
            return
        async with self._lock:
            if self.duck is not None or time.monotonic() < self._retry_at:
                return
            try:
                await self._load()
            except Exception:
                self._failed_loads += 1
                self._retry_at = time.monotonic() + min(600.0, LOAD_RETRY_SECONDS * 2 ** (self._failed_loads - 1))
                raise
            self._failed_loads = 0

    async def catch_up(self) -> None:
        """Every fact committed before this call is in the copy when it returns (one catch-up serves
        every report waiting for it)."""
        asked = time.monotonic()
        async with self._lock:
            if self.duck is None or self._caught_up_from >= asked:
                return
            begun = time.monotonic()
            await self._sync(self.duck, full=False)
            self._caught_up_from = begun

    async def day_rows(self, query: builder.Query, reach: builder.Reach, zone: ZoneInfo) -> list[builder.DayRow] | None:
        """The report's day rows from the copy, caught up; None while there is no copy."""
        await self.catch_up()
        duck = self.duck
        if duck is None:
            return None
        return await asyncio.to_thread(read, duck, query, reach, zone)

    def close(self) -> None:
        self._drop()
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- inside the lock

    def _drop(self) -> None:
        if self.duck is not None:
            with contextlib.suppress(duckdb.Error):
                self.duck.close()
        self.duck = None
        READY.set(0)
        for leftover in self.directory.glob("facts.duckdb*"):
            leftover.unlink(missing_ok=True)

    def _open(self) -> duckdb.DuckDBPyConnection:
        self._drop()
        self.directory.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": self.memory_limit,
            "preserve_insertion_order": False,
        }
        if self.threads:
            config["threads"] = self.threads
        duck = duckdb.connect(str(self.directory / "facts.duckdb"), config=config)
        duck.execute("SET TimeZone = 'UTC'")  # ICU is built into the wheel: no download
        for c in COPIED:
            columns = ", ".join(f"{q(name)} {kind}" for name, kind in c.columns.items())
            duck.execute(f"CREATE TABLE {c.table.name} ({columns})")
        return duck

    async def _load(self) -> None:
        started = time.perf_counter()
        duck = await asyncio.to_thread(self._open)
        try:
            await self._sync(duck, full=True)
        except BaseException:
            await asyncio.to_thread(duck.close)
            self._drop()
            raise
        self.duck = duck
        self._caught_up_from = time.monotonic()
        READY.set(1)
        rows = {c.table.name: duck.execute(f"SELECT count(*) FROM {c.table.name}").fetchone() for c in COPIED}
        log.info(
            "report replica loaded",
            extra={
                "seconds": round(time.perf_counter() - started, 2),
                "rows": {k: v[0] if v else 0 for k, v in rows.items()},
            },
        )

    async def _sync(self, duck: duckdb.DuckDBPyConnection, *, full: bool) -> None:
        """Copy what changed since the watermark (full: every row) in one snapshot, and apply it in
        one DuckDB transaction; a DuckDB failure drops the copy."""
        started = time.perf_counter()
        async with self.db.engine.connect() as conn:
            pg = (await conn.get_raw_connection()).driver_connection
            assert pg is not None, "the database driver hands out its connection"
            async with pg.transaction(isolation="repeatable_read", readonly=True):
                await pg.execute("SET LOCAL TIME ZONE 'UTC'")
                # The snapshot's horizon and, in the same statement, which tables changed since the
                # watermark: a catch-up with nothing to copy costs this one round trip.
                changed = await pg.fetchrow(self._changed_sql(full))
                horizon = int(changed[0])
                await asyncio.to_thread(duck.begin)
                try:
                    for c, touched in zip(COPIED, list(changed)[1:], strict=True):
                        if touched:
                            await self._copy_table(pg, duck, c, full)
                    await asyncio.to_thread(duck.commit)
                except duckdb.Error:
                    if duck is self.duck:
                        log.exception("report replica dropped: PostgreSQL serves the builder until it is loaded again")
                        self._drop()
                    raise
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        await asyncio.to_thread(duck.rollback)
                    raise
        self.watermark = horizon
        SYNC_SECONDS.labels("full" if full else "changes").observe(time.perf_counter() - started)
        SYNCED_AT.set_to_current_time()

    def _changed_sql(self, full: bool) -> str:
        tables = (
            f"{'true' if full else f'EXISTS (SELECT FROM {c.table.name} WHERE changed_xid >= {self.watermark})'}"
            for c in COPIED
        )
        return f"SELECT pg_snapshot_xmin(pg_current_snapshot())::text, {', '.join(tables)}"

    async def _copy_table(self, pg: Any, duck: duckdb.DuckDBPyConnection, c: Copied, full: bool) -> None:
        """The table's rows (changed since the watermark, or all) page by page along its key."""
        changed = [] if full else [f"changed_xid >= {self.watermark}"]
        key = ", ".join(q(k) for k in c.key)
        after: Sequence[Any] = ()
        page = 0
        while True:
            where = [*changed]
            if after:
                marks = ", ".join(f"${i + 1}" for i in range(len(after)))
                where.append(f"({key}) > ({marks})")
            condition = f" WHERE {' AND '.join(where)}" if where else ""
            last = await pg.fetchrow(
                f"SELECT {key} FROM {c.table.name}{condition} ORDER BY {key} OFFSET {PAGE_ROWS - 1} LIMIT 1", *after
            )
            if last is not None:
                marks = ", ".join(f"${len(after) + i + 1}" for i in range(len(c.key)))
                condition += f"{' AND' if where else ' WHERE'} ({key}) <= ({marks})"
            path = self.directory / f"{c.table.name}-{page}.csv"
            try:
                await pg.copy_from_query(
                    f"SELECT {', '.join(q(n) for n in c.columns)} FROM {c.table.name}{condition}",
                    *after,
                    *(tuple(last) if last is not None else ()),
                    output=str(path),
                    format="csv",
                    force_quote=True,
                )
                await asyncio.to_thread(_apply, duck, c, path, full)
            finally:
                path.unlink(missing_ok=True)
            if last is None:
                return
            after, page = tuple(last), page + 1


def _apply(duck: duckdb.DuckDBPyConnection, c: Copied, path: Path, full: bool) -> None:
    """One page into the copy: added (a load) or replacing the rows of the same keys."""
    rows = _csv(path, c.columns)
    if not full:
        same = " AND ".join(f"{c.table.name}.{q(k)} = page.{q(k)}" for k in c.key)
        keys = ", ".join(q(k) for k in c.key)
        duck.execute(f"DELETE FROM {c.table.name} USING (SELECT {keys} FROM {rows}) AS page WHERE {same}")
    duck.execute(f"INSERT INTO {c.table.name} SELECT * FROM {rows}")


def open_replica(db: Database, engine: str, directory: str, memory_limit: str, threads: int) -> Replica | None:
    """The configured copy (engine "duckdb"), or None: PostgreSQL serves the builder ("postgresql";
    the settings accept nothing else)."""
    return Replica(db, directory, memory_limit=memory_limit, threads=threads) if engine == "duckdb" else None


async def day_rows(
    replica: Replica | None, uow: UnitOfWork, query: builder.Query, reach: builder.Reach, zone: ZoneInfo
) -> list[builder.DayRow]:
    """A report's day rows: from the copy once it is loaded, else from PostgreSQL in uow."""
    found = await replica.day_rows(query, reach, zone) if replica is not None else None
    return found if found is not None else await builder_store.day_rows(uow, query, reach, zone)
