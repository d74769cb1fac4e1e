"""`make bench-search`: finding a customer among a million (issue 18's measure).

An embedded PostgreSQL (the one `make run` starts) with the customers service's schema, grown to
each size (default 100k and 1M customers: Hebrew and Persian names from `people.py`, so common
names are common — a family name is shared by thousands — with Israeli and Iranian numbers and an
e-mail for one in five), rows and their search words written with COPY, the words computed by the
service's own `domain.name_words`. At each size the service's real search
(`crm_customers.queries.search_customers` after `domain.parse_search`, in its own unit of work,
one at a time) runs for a sample of what agents type:

- `full_name`: a customer's name, words swapped;
- `misspelt`: the same with Arabic letter shapes (ي ك) and a vowel letter added — another spelling;
- `family_name`: a family name alone (thousands of matches: the ranking's worst case);
- `prefix`: a first name and the first two letters of a family name (while typing);
- `phone_local`: a number as typed locally (050-123-4567, 0912 123 4567);
- `email`: an address in capitals.

Each kind's first query is EXPLAINed (ANALYZE) and its plan's node types reported, so a
sequential scan of the words would show. Writes `bench/results/search-<date>-<commit>.json` and
prints a Markdown table. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import asyncpg  # noqa: E402
from loadgen import latency_summary, plan_nodes, write_result  # noqa: E402
from people import People, Person  # noqa: E402
from service_db import header, service_database  # noqa: E402
from sqlalchemy import event  # noqa: E402

from crm_customers import domain, queries  # noqa: E402
from crm_customers.db import messaging  # noqa: E402
from crm_customers.main import MIGRATIONS_DIR  # noqa: E402
from crm_kit.db import Database  # noqa: E402

KINDS = ("full_name", "misspelt", "family_name", "prefix", "phone_local", "email")
_ARABIC_SHAPES = str.maketrans({"ی": "ي", "ک": "ك"})


def local_form(e164: str) -> str:
    """+972501234567 → 050-123-4567; +989121234567 → 0912 123 4567 (as people type them)."""
    if e164.startswith("+972"):
        national = "0" + e164[4:]
        return f"{national[:3]}-{national[3:6]}-{national[6:]}"
    national = "0" + e164[3:]
    return f"{national[:4]} {national[4:7]} {national[7:]}"


def misspell(name: str) -> str:
    """Another spelling with the same consonants: Arabic letter shapes, and a vowel letter (alef,
    vav) after the first letter of the last word."""
    *first, last = name.translate(_ARABIC_SHAPES).split()
    return " ".join([*first, last[0] + ("ا" if "\u0600" <= last[0] <= "\u06ff" else "ו") + last[1:]])


class Directory:
    """The customers table and its search words, grown with COPY."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.people = People(seed=18, returning=0.0, look_alike=0.0)
        self.rows = 0
        self.sample: list[tuple[str, str, str]] = []  # (full name, phone, email) of existing customers
        self._words: dict[str, list[domain.NameWord]] = {}

    def _e164(self, person: Person, n: int) -> str:
        # Unique by row number, in the person's market: +97250xxxxxxx or +98912xxxxxxx.
        return f"+97250{n:07d}" if person.phone_number.startswith("05") else f"+98912{n:07d}"

    async def grow_to(self, size: int) -> float:
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        while self.rows < size:
            batch = min(50_000, size - self.rows)
            customers, words = [], []
            for i in range(batch):
                n = self.rows + i
                person = self.people.next_new()
                customer_id = str(uuid.UUID(int=n + 1))
                phone = self._e164(person, n)
                email = f"c{n}@example.co.il" if n % 5 == 0 else ""
                created = now - timedelta(seconds=size - n)  # older rows first, a second apart
                customers.append((customer_id, person.full_name, phone, email, "he-IL", created))
                spelled = self._words.get(person.full_name)
                if spelled is None:
                    spelled = self._words[person.full_name] = domain.name_words(person.full_name)
                words += [(customer_id, p, w.word, w.skeleton, created) for p, w in enumerate(spelled, start=1)]
                if n % 997 == 0:
                    self.sample.append((person.full_name, phone, email))
            await self.conn.copy_records_to_table(
                "customers",
                records=customers,
                columns=["id", "full_name", "phone_number", "email", "locale", "created_at"],
            )
            await self.conn.copy_records_to_table(
                "customer_name_words",
                records=words,
                columns=["customer_id", "position", "word", "skeleton", "created_at"],
            )
            self.rows += batch
        await self.conn.execute("ANALYZE customers; ANALYZE customer_name_words")
        return time.perf_counter() - t0


def queries_of(kind: str, rng: random.Random, sample: list[tuple[str, str, str]]) -> Callable[[], str]:
    def make() -> str:
        name, phone, email = rng.choice(sample)
        words = name.split()
        if kind == "full_name":
            return " ".join(reversed(words))
        if kind == "misspelt":
            return misspell(name)
        if kind == "family_name":
            return words[-1]
        if kind == "prefix":
            return f"{words[0]} {words[1][:2]}"
        if kind == "phone_local":
            return local_form(phone)
        return (email or rng.choice([e for _, _, e in sample if e])).upper()

    return make


async def measure(
    db: Database, conn: asyncpg.Connection, size: int, samples: int, sample: list[tuple[str, str, str]]
) -> dict[str, Any]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    out: dict[str, Any] = {}
    rng = random.Random(size)
    for kind in KINDS:
        make = queries_of(kind, rng, sample)
        timings: list[float] = []
        found: list[int] = []
        plan: list[str] = []
        for i in range(samples):
            typed = make()
            if i == 0:
                event.listen(db.engine.sync_engine, "before_cursor_execute", record)
            t0 = time.perf_counter()
            async with db.unit_of_work() as uow:
                matches = await queries.search_customers(uow, domain.parse_search(typed), limit=20)
            timings.append((time.perf_counter() - t0) * 1000)
            found.append(len(matches))
            if i == 0:
                event.remove(db.engine.sync_engine, "before_cursor_execute", record)
                plan = await explain(conn, statements)
                statements.clear()
        out[kind] = {
            **latency_summary(timings),
            "matches_mean": round(sum(found) / len(found), 1),
            "none_found": sum(1 for f in found if f == 0),
            "plan_nodes": plan,
            "example": make(),
        }
    return out


async def explain(conn: asyncpg.Connection, statements: list[tuple[str, Any]]) -> list[str]:
    """The node types of the executed plans of every statement the search sent (SQLAlchemy's
    asyncpg dialect sends $1-style placeholders with a positional tuple: replayed as they were)."""
    nodes: list[str] = []
    for statement, parameters in statements:
        plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *list(parameters or ()))
        nodes += plan_nodes(json.loads(plan)[0]["Plan"])
    return nodes


async def run(sizes: list[int], samples: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with service_database("customers", MIGRATIONS_DIR, messaging, source="/bench/search") as (db, conn):
        directory = Directory(conn)
        for size in sizes:
            seconds = await directory.grow_to(size)
            words = await conn.fetchval("SELECT count(*) FROM customer_name_words")
            results[str(size)] = {
                "grow_seconds": round(seconds, 1),
                "name_words": words,
                "kinds": await measure(db, conn, size, samples, list(directory.sample)),
            }
    return {**header(), "samples_per_kind": samples, "sizes": results}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| customers | query | p50 ms | p95 ms | p99 ms | max ms | matches (mean) | plan |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, at in result["sizes"].items():
        for kind, figures in at["kinds"].items():
            plan = ", ".join(dict.fromkeys(n for n in figures["plan_nodes"] if "Scan" in n))
            lines.append(
                f"| {int(size):,} | {kind} | {figures['p50_ms']} | {figures['p95_ms']} | {figures['p99_ms']} "
                f"| {figures['max_ms']} | {figures['matches_mean']} | {plan} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated customer counts")
    parser.add_argument("--samples", type=int, default=200, help="queries per kind and size")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    result = asyncio.run(run([int(s) for s in args.sizes.split(",")], args.samples))
    return write_result(result, args.results_dir, "search", table(result))


if __name__ == "__main__":
    main()
