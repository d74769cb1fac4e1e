from __future__ import annotations

import fcntl
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from crm_devstack._util import port_accepts
from crm_devstack.demo_data import DEMO_CATALOG, DEMO_LEADS
from crm_devstack.stack import BACKEND_SERVICES, Ports, Stack, StackError, grpc_serving, run

FAKES = Path(__file__).parent / "fakes"


@pytest.fixture
def fake_services() -> Iterator[dict[str, str]]:
    """PYTHONPATH with ``crm_<name>`` stand-ins for every service, to test the launcher alone."""
    root = Path(tempfile.mkdtemp(prefix="crm-fake-services-"))
    for name in (*BACKEND_SERVICES, "gateway"):
        package = root / f"crm_{name}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(f"from devstack_fakes import main\n\nmain({name!r})\n")
    yield {"PYTHONPATH": f"{root}:{FAKES}"}
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="crm-stack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.unit
def test_ports() -> None:
    defaults = Ports()
    assert (defaults.gateway, defaults.sms, defaults.postgres, defaults.nats) == (8080, 8090, 5433, 4222)
    assert [defaults.grpc(s) for s in BACKEND_SERVICES] == [50051, 50056, 50052, 50053, 50057, 50054, 50055]
    assert [defaults.metrics(s) for s in BACKEND_SERVICES] == [9101, 9107, 9102, 9103, 9109, 9104, 9105]
    free = Ports.free()
    values = [getattr(free, name) for name in free.__dataclass_fields__]
    assert len(set(values)) == len(values)
    with pytest.raises(ValueError):
        defaults.grpc("gateway")


@pytest.mark.unit
def test_service_environment(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports())
    env = stack._service_env("orders")
    assert env["CRM_SERVICE_NAME"] == "orders"
    assert env["CRM_ENVIRONMENT"] == "development"
    assert env["CRM_DATABASE_URL"] == "postgresql+asyncpg://postgres@127.0.0.1:5433/orders"
    # NATS without credentials in the URL: each service connects as its own user.
    assert env["CRM_NATS_URL"] == "nats://127.0.0.1:4222"
    assert env["CRM_NATS_USER"] == "orders"
    assert env["CRM_NATS_PASSWORD"] == stack.nats.users.passwords["orders"] != stack.nats.users.passwords["leads"]
    assert (env["CRM_GRPC_PORT"], env["CRM_METRICS_PORT"]) == ("50053", "9103")
    assert env["CRM_LEADS_ADDR"] == "127.0.0.1:50051"
    assert env["CRM_REPORTING_ADDR"] == "127.0.0.1:50055"
    assert env["CRM_SMS_BASE_URL"] == "http://127.0.0.1:8090"
    assert env["CRM_SMS_API_KEY"] == "dev-sms-key"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert (env["CRM_GRPC_HOST"], env["CRM_METRICS_HOST"]) == ("127.0.0.1", "127.0.0.1")
    command, gateway_env = stack._command("gateway")
    assert (gateway_env["CRM_HTTP_HOST"], gateway_env["CRM_METRICS_HOST"]) == ("127.0.0.1", "127.0.0.1")
    sms_command, _ = stack._command("sms")
    assert sms_command[sms_command.index("--host") + 1] == "127.0.0.1"
    mail_command, _ = stack._command("mail")
    assert mail_command[mail_command.index("--host") + 1] == "127.0.0.1"
    assert (env["CRM_SMTP_HOST"], env["CRM_SMTP_PORT"], env["CRM_SMTP_SECURITY"]) == ("127.0.0.1", "8025", "none")
    assert command == [sys.executable, "-m", "crm_gateway", "serve"]
    assert gateway_env["CRM_HTTP_PORT"] == "8080"
    assert gateway_env["CRM_CUSTOMERS_ADDR"] == "127.0.0.1:50052"
    assert gateway_env["CRM_NATS_USER"] == "gateway"
    assert stack.database_url("leads").endswith("/leads")


@pytest.mark.unit
def test_a_migrated_snapshot_is_per_migration_history_and_never_for_images(tmp_path: Path) -> None:
    """Two stacks of one checkout share a snapshot; none without a directory or with a launcher
    (processes from images migrate themselves); a snapshot is restored only into a data
    directory never initialised."""
    snapshots = tmp_path / "snapshots"
    first = Stack(tmp_path / "a", Ports.free(), migrated_snapshots=snapshots)
    second = Stack(tmp_path / "b", Ports.free(), migrated_snapshots=snapshots)
    snapshot = first.migrated_snapshot()
    assert snapshot is not None and snapshot.parent == snapshots and snapshot == second.migrated_snapshot()
    assert Stack(tmp_path / "c", Ports.free()).migrated_snapshot() is None
    launcher = Stack(tmp_path / "d", Ports.free(), migrated_snapshots=snapshots, launcher=lambda c, e: (c, e))
    assert launcher.migrated_snapshot() is None
    assert not first._restore(snapshot)  # nothing saved yet
    snapshot.mkdir(parents=True)
    (snapshot / "PG_VERSION").write_text("18\n")
    assert first._restore(snapshot) and (first.postgres.data_dir / "PG_VERSION").read_text() == "18\n"
    assert not first._restore(snapshot)  # initialised now: never overwritten


@pytest.mark.unit
def test_run_refuses_when_already_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (tmp_path / "run.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert run(tmp_path, demo=False) == 1
    assert "CRM is already running" in capsys.readouterr().err


@pytest.mark.integration
async def test_stack_lifecycle(fake_services: dict[str, str], state_dir: Path) -> None:
    stack = Stack(state_dir, Ports.free(), extra_env=fake_services, ready_timeout=60)
    try:
        await stack.start()
        assert set(stack.processes) == {*BACKEND_SERVICES, "gateway", "console", "sms", "mail"}
        assert stack.exited() == {}
        for service in BACKEND_SERVICES:
            assert await grpc_serving(stack.grpc_address(service))
            conn = await asyncpg.connect(stack.database_url(service).replace("+asyncpg", ""))
            assert await conn.fetchval("select service from migrated") == service
            await conn.close()
        assert (state_dir / "logs" / "leads.log").read_text().count("leads: serving") == 1

        await stack.load_demo_data()
        await stack.load_demo_data()  # idempotent: no new leads, 409s tolerated
        async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
            leads = (await http.get("/api/v1/leads")).json()
            closed = (await http.get("/api/v1/deals/closed")).json()
            price_lists = (await http.get("/api/v1/price-lists")).json()
            desk = (await http.get("/api/v1/tickets")).json()
            dana_lead = next(lead for lead in leads if lead["request_id"] == DEMO_LEADS[0]["request_id"])
            dana = (await http.get(f"/api/v1/customers/customer-of-{dana_lead['id']}/consents")).json()
            assert (await http.get(f"{stack.sms_url}/messages")).json() == []
            assert (await http.get(f"{stack.mail_url}/messages")).json() == []
        assert sorted(lead["request_id"] for lead in leads) == sorted(d["request_id"] for d in DEMO_LEADS)
        assert len(closed) == 1
        # Run twice, still one ILS and one IRR list, each pricing every demo product.
        assert sorted(p["currency_code"] for p in price_lists) == ["ILS", "IRR"]
        assert {len(p["items"]) for p in price_lists} == {len(DEMO_CATALOG)}
        # Run twice, still the demo tickets once each, in queues the demo agent works.
        assert sorted(t["request_id"] for t in desk["tickets"]) == ["demo-ticket-1", "demo-ticket-2"]
        assert desk["queues"] == ["billing", "complaints", "general"]
        # Run twice, the sofa buyer's yes to advertising recorded once per channel.
        assert sorted(r["channel"] for r in dana["records"]) == ["email", "sms"]

        await stack.kill_process("orders")
        assert "orders" in stack.exited()
        assert not await grpc_serving(stack.grpc_address("orders"))
        await stack.restart_process("orders")
        assert await grpc_serving(stack.grpc_address("orders"))

        await stack.kill_process("postgres")
        await stack.restart_process("postgres")
        conn = await asyncpg.connect(stack.database_url("orders").replace("+asyncpg", ""))
        assert await conn.fetchval("select count(*) from migrated") == 1
        await conn.close()
    finally:
        await stack.stop()
    assert stack.processes == {}
    assert not stack.postgres.running and not stack.nats.running
    assert not port_accepts(stack.ports.gateway)
    assert not port_accepts(stack.ports.leads)


@pytest.mark.integration
async def test_failed_migration_fails_loudly_and_cleans_up(fake_services: dict[str, str], state_dir: Path) -> None:
    env = {**fake_services, "FAKE_FAIL_MIGRATE": "customers"}
    stack = Stack(state_dir, Ports.free(), extra_env=env, ready_timeout=60)
    with pytest.raises(StackError, match=r"migration of customers failed(.|\n)*exploded on purpose"):
        await stack.start()
    assert stack.processes == {}
    assert not stack.postgres.running and not stack.nats.running


@pytest.mark.integration
async def test_crashing_service_fails_fast_with_its_log(fake_services: dict[str, str], state_dir: Path) -> None:
    env = {**fake_services, "FAKE_CRASH": "notifications"}
    stack = Stack(state_dir, Ports.free(), extra_env=env, ready_timeout=60)
    started = time.monotonic()
    with pytest.raises(StackError, match=r"notifications exited with code 2(.|\n)*crashing on purpose"):
        await stack.start()
    assert time.monotonic() - started < 30
    assert stack.processes == {}
    assert not stack.postgres.running
