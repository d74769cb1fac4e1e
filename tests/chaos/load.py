"""The chaos suite's load driver: every lead's whole journey through the gateway, retried until done.

A journey is capture (fixed request_id) → convert → close won with items → wait for the order →
ship. Journeys start at a steady rate (open loop: a slow or dead system does not slow the
starts down), each as its own task. Every step is retried with capped, jittered back-off on
connection errors, timeouts, 429 and 5xx, because the gateway or a backend may be dead at any
moment; the answers a retry can legitimately get are accepted (capture with the same request_id
returns the same lead, convert returns the lead's deal, 409 on close means it is closed, 409 on
ship means it shipped). Anything else, or a step still failing after `step_timeout`, is a
journey given up — counted, never silent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

SOURCES = ("radio", "tv", "website", "referral", "exhibition", "press", "telemarketing")
LOCALES = ("he-IL", "en-US", "fa-IR")
ITEMS = [
    {
        "sku": "SOFA-3",
        "description": "ספה תלת-מושבית",
        "quantity": 1,
        "unit_price": {"amount_minor": 459900, "currency_code": "ILS"},
    },
    {
        "sku": "PILLOW",
        "description": "כרית נוי",
        "quantity": 2,
        "unit_price": {"amount_minor": 5000, "currency_code": "ILS"},
    },
]
# Statuses a step retries: the gateway or a backend is down, slow or restarting.
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class GaveUp(Exception):
    """A step of a journey could not be completed: an unexpected answer, or retries ran out."""


@dataclass
class Journey:
    """One lead's way through the system, and what the driver learned on the way."""

    index: int
    request_id: str
    phone: str
    source: str
    locale: str
    lead_id: str = ""
    phone_e164: str = ""
    deal_id: str = ""
    order_id: str = ""
    shipped: bool = False
    failure: str = ""


@dataclass
class LoadStats:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    # Retried answers and errors by step (e.g. "close 503", "ship ClientConnectorError").
    retries: Counter[str] = field(default_factory=Counter)
    # Answers that mean "done before" on a retry (409 on close or ship, a replayed capture).
    already_done: Counter[str] = field(default_factory=Counter)
    started: int = 0
    completed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "journeys_started": self.started,
            "journeys_completed": self.completed,
            "requests": self.requests,
            "statuses": dict(sorted(self.statuses.items())),
            "retries": sum(self.retries.values()),
            "retries_by_cause": dict(self.retries.most_common()),
            "already_done": dict(self.already_done),
            "seconds": round(self.seconds, 1),
        }


class LoadDriver:
    """Runs `total` journeys against the gateway at `rate` journey starts per second."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        seed: int,
        total: int,
        rate: float,
        step_timeout: float = 240.0,
        order_timeout: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.seed = seed
        self.total = total
        self.rate = rate
        self.step_timeout = step_timeout
        self.order_timeout = order_timeout
        self.stats = LoadStats()
        rng = random.Random(f"load:{seed}")
        # Unique phone numbers (customers match people by phone): one contiguous seeded block.
        first = rng.randrange(0, 10_000_000 - total)
        self.journeys = [
            Journey(
                index=i,
                request_id=f"chaos-{seed}-{i}",
                phone=f"052-{first + i:07d}",
                source=rng.choice(SOURCES),
                locale=rng.choice(LOCALES),
            )
            for i in range(total)
        ]
        self._jitter = random.Random(f"jitter:{seed}")
        self._session: aiohttp.ClientSession | None = None
        self.started_at = 0.0

    @property
    def given_up(self) -> list[Journey]:
        return [j for j in self.journeys if j.failure]

    async def run(self) -> None:
        """Start every journey on schedule and wait for all of them to finish (or give up)."""
        # The pool is the driver's concurrency limit: a request waits its turn for a connection
        # (no timeout on that wait, or a backlog of journeys turns into a storm of retries), while
        # connecting and reading have their own bounds (a dead or hung gateway).
        connector = aiohttp.TCPConnector(limit=64)
        timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=3, sock_read=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self.headers) as session:
            self._session = session
            loop = asyncio.get_running_loop()
            self.started_at = loop.time()
            tasks: list[asyncio.Task[None]] = []
            for journey in self.journeys:
                delay = self.started_at + journey.index / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._journey(journey), name=f"journey-{journey.index}"))
                self.stats.started += 1
            await asyncio.gather(*tasks)
            self.stats.seconds = loop.time() - self.started_at
            self._session = None

    async def _journey(self, j: Journey) -> None:
        try:
            await self._capture(j)
            await self._convert(j)
            await self._close(j)
            await self._wait_for_order(j)
            await self._ship(j)
        except GaveUp as exc:
            j.failure = str(exc)
            return
        except Exception as exc:  # a bug in the driver must not pass as a quiet success either
            j.failure = f"driver error: {exc!r}"
            return
        self.stats.completed += 1

    # ------------------------------------------------------------------ steps

    async def _capture(self, j: Journey) -> None:
        body = {
            "full_name": f"לקוח כאוס {j.index}",
            "phone_number": j.phone,
            "source": j.source,
            "locale": j.locale,
            "request_id": j.request_id,
        }
        _, payload, _ = await self._call("capture", "POST", "/api/v1/leads", json=body, done=(200, 201))
        j.lead_id = payload["id"]
        j.phone_e164 = payload["phone_number"]

    async def _convert(self, j: Journey) -> None:
        status, payload, _ = await self._call(
            "convert", "POST", f"/api/v1/leads/{j.lead_id}/convert", json={"title": "סלון"}, done=(200, 201, 409)
        )
        if status == 409:
            # Converted by an earlier attempt whose answer was lost: the lead knows its deal.
            self.stats.already_done["convert 409"] += 1
            _, lead, _ = await self._call("read lead", "GET", f"/api/v1/leads/{j.lead_id}", done=(200,))
            j.deal_id = lead["deal_id"]
        else:
            j.deal_id = payload["id"]
        if not j.deal_id:
            raise GaveUp(f"journey {j.index}: lead {j.lead_id} has no deal after convert")

    async def _close(self, j: Journey) -> None:
        status, _, _ = await self._call(
            "close",
            "POST",
            f"/api/v1/deals/{j.deal_id}/close",
            json={"outcome": "won", "items": ITEMS},
            done=(200, 409),
        )
        if status == 409:
            self.stats.already_done["close 409"] += 1

    async def _wait_for_order(self, j: Journey) -> None:
        deadline = time.monotonic() + self.order_timeout
        interval = 0.3
        while True:
            _, payload, _ = await self._call("orders", "GET", "/api/v1/orders", params={"deal_id": j.deal_id})
            orders = payload["orders"]
            if len(orders) > 1:
                raise GaveUp(f"journey {j.index}: deal {j.deal_id} has {len(orders)} orders")
            if orders:
                j.order_id = orders[0]["id"]
                return
            if time.monotonic() > deadline:
                raise GaveUp(f"journey {j.index}: no order for deal {j.deal_id} within {self.order_timeout:.0f} s")
            await asyncio.sleep(interval * (0.5 + self._jitter.random()))
            interval = min(3.0, interval * 1.5)

    async def _ship(self, j: Journey) -> None:
        eta = (datetime.now(UTC) + timedelta(days=1 + j.index % 9)).date().isoformat()
        status, _, _ = await self._call(
            "ship",
            "POST",
            f"/api/v1/orders/{j.order_id}/ship",
            json={"carrier": "UPS", "tracking_number": f"1Z{j.index:08d}", "estimated_delivery_date": eta},
            done=(200, 409),
        )
        if status == 409:
            self.stats.already_done["ship 409"] += 1
        j.shipped = True

    # ------------------------------------------------------------------ HTTP with retries

    async def _call(
        self,
        step: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        done: tuple[int, ...] = (200,),
    ) -> tuple[int, Any, int]:
        """Send until the answer is one of `done`; returns (status, JSON body, tries).

        Retries connection errors, timeouts and RETRYABLE statuses with back-off until
        step_timeout; any other status gives up at once (a real error, not chaos)."""
        assert self._session is not None
        deadline = time.monotonic() + self.step_timeout
        tries = 0
        last = ""
        while True:
            tries += 1
            self.stats.requests += 1
            retry_after = 0.0
            try:
                async with self._session.request(method, self.base_url + path, json=json, params=params) as response:
                    status = response.status
                    self.stats.statuses[f"{step} {status}"] += 1
                    if status in done:
                        body = await response.json(content_type=None) if status < 300 else None
                        return status, body, tries
                    text = (await response.text())[:500]
                    if status not in RETRYABLE:
                        raise GaveUp(f"{step} {method} {path}: unexpected {status}: {text}")
                    last = f"{status} {text}"
                    self.stats.retries[f"{step} {status}"] += 1
                    if status == 429:
                        retry_after = float(response.headers.get("Retry-After", "1"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = repr(exc)
                self.stats.retries[f"{step} {type(exc).__name__}"] += 1
            if time.monotonic() > deadline:
                raise GaveUp(f"{step} {method} {path}: still failing after {self.step_timeout:.0f} s: {last}")
            backoff = min(4.0, 0.2 * 2 ** min(tries - 1, 5))
            await asyncio.sleep(max(retry_after, backoff * (0.5 + self._jitter.random())))
