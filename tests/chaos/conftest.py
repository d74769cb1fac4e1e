"""Shared set-up of the chaos suite: the seed (replayable) and the whole system on free ports.

Every random choice of a chaos test comes from `chaos_seed`: ``CRM_CHAOS_SEED`` when set, else a
fresh one. The seed is printed when the test starts and attached to every failure report, so
``CRM_CHAOS_SEED=<seed> pytest tests/chaos -m chaos`` replays the same schedule.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from crm_devstack.stack import Ports, Stack

SEED_ENV = "CRM_CHAOS_SEED"
SEED_KEY = pytest.StashKey[int]()

# The load driver talks to the gateway as one admin principal: lift the per-principal limit.
CHAOS_ENV: Mapping[str, str] = {
    "CRM_RATE_LIMIT_BURST": "1000000",
    "CRM_RATE_LIMIT_PER_MINUTE": "1000000",
}


def _seed_from_env() -> int:
    raw = os.environ.get(SEED_ENV, "").strip()
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise pytest.UsageError(f"{SEED_ENV} must be an integer, got {raw!r}") from None
    return random.SystemRandom().randrange(1, 2**31)


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's randomness (printed now, and again in the report if it fails)."""
    seed = _seed_from_env()
    request.node.stash[SEED_KEY] = seed
    print(f"\n[chaos] {request.node.nodeid}: seed {seed} (replay with {SEED_ENV}={seed})", flush=True)
    return seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    seed = item.stash.get(SEED_KEY, None)
    if seed is not None and report.failed:
        report.sections.append(("chaos seed", f"replay with {SEED_ENV}={seed}"))
    return report


@pytest.fixture(scope="session")
def migrated_snapshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer's stacks start from the databases the first one migrated (`Stack.migrated_snapshot`):
    each of these tests starts a whole system of its own, and migrating seven databases was half
    of that start (bench/README.md, "Test suite time")."""
    return tmp_path_factory.mktemp("migrated-snapshots")


@asynccontextmanager
async def running_stack(
    state_dir: Path, extra_env: Mapping[str, str] | None = None, *, migrated_snapshots: Path | None = None
) -> AsyncIterator[Stack]:
    """The whole system (the `make run` launcher) on free ports, with the chaos environment."""
    stack = Stack(
        state_dir,
        Ports.free(),
        extra_env={**CHAOS_ENV, **(extra_env or {})},
        migrated_snapshots=migrated_snapshots,
    )
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture
def chaos_stack(tmp_path: Path, migrated_snapshots: Path) -> StackFactory:
    """``async with chaos_stack(extra_env) as stack:`` — a fresh system under this test's tmp_path."""
    count = 0

    def start(extra_env: Mapping[str, str] | None = None) -> AbstractAsyncContextManager[Stack]:
        nonlocal count
        count += 1
        return running_stack(tmp_path / f"stack-{count}", extra_env, migrated_snapshots=migrated_snapshots)

    return start
