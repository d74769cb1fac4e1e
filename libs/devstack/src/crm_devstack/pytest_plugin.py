"""pytest fixtures giving every service's integration tests a real PostgreSQL and NATS.

Each server comes from, in this order: the URL in ``CRM_TEST_POSTGRES_URL`` /
``CRM_TEST_NATS_URL``; a testcontainers container when a Docker engine answers; the
embedded server from the wheels, in a temporary directory on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_devstack._util import free_port

POSTGRES_URL_ENV = "CRM_TEST_POSTGRES_URL"
NATS_URL_ENV = "CRM_TEST_NATS_URL"
POSTGRES_IMAGE = "postgres:18-alpine"
NATS_IMAGE = "nats:2-alpine"

_OWN_BASETEMP = pytest.StashKey[str]()

MakeDatabase = Callable[[str], Awaitable[str]]
"""``await make(prefix)`` creates a fresh database and returns its SQLAlchemy (asyncpg) URL."""


def pytest_configure(config: pytest.Config) -> None:
    # Each pytest session gets a temporary root of its own. pytest's shared default
    # (/tmp/pytest-of-<user>) is cleaned and re-chmodded by every new session, which pulled the data
    # directory from under the embedded PostgreSQL of a stack another session was still running.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="crm-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp
    for marker in (
        "unit: pure logic, no I/O",
        "integration: one service against real PostgreSQL and NATS",
        "e2e: the whole system as separate processes",
    ):
        config.addinivalue_line("markers", marker)


def pytest_unconfigure(config: pytest.Config) -> None:
    # A green session leaves nothing behind; a red one keeps its logs and data for a look.
    own = config.stash.get(_OWN_BASETEMP, None)
    if own and getattr(config, "_crm_exitstatus", 1) == 0:
        shutil.rmtree(own, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._crm_exitstatus = int(exitstatus)  # type: ignore[attr-defined]


def docker_available() -> bool:
    """True when testcontainers is installed and a Docker engine answers."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _testcontainers_installed() -> bool:
    try:
        import testcontainers.core.container  # noqa: F401
    except ImportError:
        return False
    return True


def asyncpg_url(url: str, database: str | None = None) -> str:
    """``url`` with the ``postgresql+asyncpg`` scheme and, if given, another database name."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    if database is not None:
        authority, _, path = rest.partition("/")
        query = path.partition("?")[2]
        rest = f"{authority}/{database}" + (f"?{query}" if query else "")
    return f"postgresql+asyncpg://{rest}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """SQLAlchemy (asyncpg) URL of the admin database ``postgres`` on a PostgreSQL server."""
    from_env = os.environ.get(POSTGRES_URL_ENV)
    if from_env:
        yield asyncpg_url(from_env)
        return
    if _testcontainers_installed() and docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(
            POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres", driver="asyncpg"
        ) as container:
            yield asyncpg_url(container.get_connection_url())
        return
    from crm_devstack.postgres import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix="crm-test-pg-"))
    server = EmbeddedPostgres(base / "data", free_port())
    try:
        server.start()
        yield server.url("postgres")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[str]:
    """``nats://`` URL of a NATS server with JetStream enabled, the CRM stream and the gateway's
    Idempotency-Key bucket provisioned (as the launcher's provisioner does: no service creates
    them). The embedded server runs with authentication on (the CRM permission table) and the URL
    carries its unrestricted test identity, so services under test and the tests' own clients
    connect with credentials."""
    from crm_devstack._util import run_sync
    from crm_kit.testing import provision

    with _nats_server() as url:
        run_sync(lambda: provision(url))
        yield url


@contextlib.contextmanager
def _nats_server() -> Iterator[str]:
    from_env = os.environ.get(NATS_URL_ENV)
    if from_env:
        yield from_env
        return
    if _testcontainers_installed() and docker_available():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container: Any = DockerContainer(NATS_IMAGE).with_command("-js").with_exposed_ports(4222)
        with container:
            wait_for_logs(container, "Server is ready", timeout=60)
            host = container.get_container_host_ip()
            port = container.get_exposed_port(4222)
            yield f"nats://{host}:{port}"
        return
    from crm_devstack.nats import EmbeddedNats

    base = Path(tempfile.mkdtemp(prefix="crm-test-nats-"))
    server = EmbeddedNats(base / "store", free_port())
    try:
        server.start()
        yield server.admin_url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_database(postgres_server: str) -> MakeDatabase:
    """Factory: ``url = await fresh_database("leads")`` creates ``leads_<10 hex>`` and returns its URL."""
    from crm_devstack.postgres import create_database

    async def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        await create_database(postgres_server, name)
        return asyncpg_url(postgres_server, name)

    return make
