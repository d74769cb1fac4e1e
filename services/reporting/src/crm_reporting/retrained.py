"""The one model cache of reporting: a model (lead scoring, cross-sell rules, the churn model,
customer value's quintiles) learned from the database and relearned in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from crm_kit.db import Database, UnitOfWork

log = logging.getLogger(__name__)

Model = TypeVar("Model")


class Retrained(Generic[Model]):
    """A model trained from the database, relearned in the background on the first request
    `refresh_seconds` after the last training (one training at a time, off the event loop): only
    the very first request waits for a training; later ones get the model in hand while a newer one
    is learned (at 200,000 buyers the cross-sell read and learning take about 10 s, bench/README.md).
    `load` reads what it learns from (one statement); `train` returns the model or raises
    `too_little`, which is kept as the model (what it says). A failed relearning is logged and the model in hand
    stays until the next request tries again."""

    def __init__(
        self,
        db: Database,
        *,
        refresh_seconds: float,
        load: Callable[[UnitOfWork], Awaitable[Any]],
        train: Callable[[Any], Any],
        too_little: type[Exception],
    ) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self._load = load
        self._train = train
        self._too_little = too_little
        self._trained: tuple[float, datetime, Model] | None = None
        self._lock = asyncio.Lock()
        self._relearning: asyncio.Task[None] | None = None

    def _fresh(self) -> bool:
        return self._trained is not None and time.monotonic() - self._trained[0] < self.refresh_seconds

    async def _learn(self) -> None:
        async with self._lock:
            if not self._fresh():
                async with self.db.unit_of_work() as uow:
                    data = await self._load(uow)
                try:
                    model = await asyncio.to_thread(self._train, data)
                except self._too_little as exc:
                    model = exc
                self._trained = (time.monotonic(), datetime.now(UTC), cast(Model, model))

    async def _relearn(self) -> None:
        try:
            await self._learn()
        except Exception:
            log.exception("relearning a model failed; the one in hand still answers")

    async def current(self) -> tuple[datetime, Model]:
        if self._trained is None:
            await self._learn()
        elif not self._fresh() and (self._relearning is None or self._relearning.done()):
            self._relearning = asyncio.create_task(self._relearn())
        assert self._trained is not None
        return self._trained[1], self._trained[2]
