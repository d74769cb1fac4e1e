"""The answer of /readyz, shared: a probe is public and unauthenticated, so each request must not
fan out a health check to every backend. The result is reused for `ttl_seconds` (2 s by default:
shorter than any probe period, so Kubernetes still sees a change within one probe), and while a
check runs every other request waits for that one instead of starting its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class SharedReadiness:
    """At most one backend health sweep per `ttl_seconds`, and at most one in flight."""

    def __init__(
        self,
        check: Callable[[], Awaitable[list[str]]],
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._result: list[str] | None = None
        self._checked_at = float("-inf")
        self._in_flight: asyncio.Future[list[str]] | None = None

    async def not_ready(self) -> list[str]:
        """Names of the backends not serving, as of at most `ttl_seconds` ago."""
        if self._result is not None and self.clock() - self._checked_at < self.ttl_seconds:
            return list(self._result)
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._sweep())
        # shield: one probe timing out must not cancel the sweep the others wait for.
        return list(await asyncio.shield(self._in_flight))

    async def _sweep(self) -> list[str]:
        started = self.clock()
        try:
            result = await self.check()
        finally:
            self._in_flight = None
        self._result, self._checked_at = result, started
        return result
