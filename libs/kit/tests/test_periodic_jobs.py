"""A service's periodic jobs: run at once and then every interval, or (wait_first) only after the
first interval; a failing run does not stop the next; shutdown ends the loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from crm_kit.service import Service

pytestmark = pytest.mark.unit


class Job:
    def __init__(self, *, fail: bool = False) -> None:
        self.runs = 0
        self.fail = fail
        self.ran = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        self.ran.set()
        if self.fail:
            raise RuntimeError("a failing run")

    async def until(self, runs: int) -> None:
        while self.runs < runs:
            self.ran.clear()
            await asyncio.wait_for(self.ran.wait(), timeout=30)


def start(job: Job, interval: float, wait_first: bool) -> tuple[SimpleNamespace, asyncio.Task[None]]:
    owner = SimpleNamespace(_stopping=asyncio.Event())
    return owner, asyncio.create_task(Service._run_job(owner, "test-job", interval, job, wait_first))  # type: ignore[arg-type]


async def stop(owner: SimpleNamespace, task: asyncio.Task[None]) -> None:
    owner._stopping.set()
    await asyncio.wait_for(task, timeout=30)


async def test_a_job_runs_at_once_and_then_every_interval() -> None:
    job = Job()
    owner, task = start(job, 0.01, wait_first=False)
    await job.until(3)
    await stop(owner, task)


async def test_wait_first_skips_the_run_at_start_and_shutdown_ends_the_wait() -> None:
    job = Job()
    owner, task = start(job, 3600, wait_first=True)
    await asyncio.sleep(0.05)
    await stop(owner, task)
    assert job.runs == 0
    started = Job()
    owner, task = start(started, 3600, wait_first=False)
    await started.until(1)
    await stop(owner, task)
    assert started.runs == 1


async def test_a_failing_run_does_not_stop_the_next() -> None:
    job = Job(fail=True)
    owner, task = start(job, 0.01, wait_first=False)
    await job.until(2)
    await stop(owner, task)
