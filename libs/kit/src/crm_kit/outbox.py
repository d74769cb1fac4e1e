"""The outbox relay: publishes committed outbox rows to JetStream, then deletes them.

Safe with many replicas: each batch is claimed with FOR UPDATE SKIP LOCKED, so two relays
never publish the same row at once. A crash after publishing but before deleting republishes
the row; JetStream drops it by Nats-Msg-Id within the duplicate window, and consumers'
inboxes absorb it after that.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import any_, bindparam, delete, func, select

from crm_kit import metrics
from crm_kit.bus import EventBus
from crm_kit.db import Database
from crm_kit.failpoints import failpoint

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, db: Database, bus: EventBus, *, batch_size: int = 200, poll_seconds: float = 0.5) -> None:
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        table = db.tables.outbox
        oldest = (
            select(table.c.id).order_by(table.c.id).limit(bindparam("n")).with_for_update(skip_locked=True)
        ).scalar_subquery()
        # Built once: the oldest rows no other relay holds, deleted and returned.
        self._take = (
            delete(table)
            .where(table.c.id == any_(func.array(oldest)))
            .returning(table.c.id, table.c.subject, table.c.payload, table.c.headers, table.c.event_type)
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        db.on_events_committed(self._wake.set)

    async def publish_batch(self) -> int:
        """Publish up to batch_size rows; returns how many were published."""
        async with self.db.engine.connect() as conn, conn.begin():
            # Claimed and deleted in one statement; the delete commits only after every publish
            # was acknowledged (a failed publish rolls it back and the rows stay).
            rows = sorted((await conn.execute(self._take, {"n": self.batch_size})).all(), key=lambda r: r.id)
            if not rows:
                return 0
            # Sent in order on one connection; awaiting them together pipelines the acks.
            await asyncio.gather(
                *(self.bus.publish_raw(r.subject, r.payload, {k: str(v) for k, v in r.headers.items()}) for r in rows)
            )
            # Crash window: published, the delete not committed; a restart publishes them again
            # (same Nats-Msg-Id).
            failpoint("outbox.after_publish")
        for r in rows:
            metrics.EVENTS_PUBLISHED.labels(r.event_type).inc()
        return len(rows)

    async def measure_backlog(self) -> None:
        table = self.db.tables.outbox
        async with self.db.engine.connect() as conn:
            count, oldest = (await conn.execute(select(func.count(), func.min(table.c.created_at)))).one()
        metrics.OUTBOX_BACKLOG.set(count)
        metrics.OUTBOX_OLDEST_AGE.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)

    async def run(self) -> None:
        """Publish until stopped; woken at once by a commit, else polls (rows from other replicas)."""
        last_measure = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            # Cleared before publishing: a commit during the batch wakes the next round at once.
            self._wake.clear()
            try:
                published = await self.publish_batch()
                if loop.time() - last_measure > 5:
                    await self.measure_backlog()
                    last_measure = loop.time()
            except Exception:
                metrics.PUBLISH_ERRORS.inc()
                log.exception("outbox relay failed to publish a batch; retrying")
                published = 0
                await asyncio.sleep(1)
            if published >= self.batch_size:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop polling after one last flush of what is committed."""
        self._stopping.set()
        self._wake.set()
        try:
            while await self.publish_batch():
                pass
        except Exception:
            log.exception("outbox flush on shutdown failed; rows stay for the next start")
