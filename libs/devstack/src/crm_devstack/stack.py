"""The whole CRM on one machine: embedded PostgreSQL and NATS, the fake SMS provider, the SMTP
sink, and every service as its own process. Used by ``make run`` (``python -m crm_devstack run``) and the e2e tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crm_devstack._util import free_ports, log_tail, pid_alive, process_cmdline, stop_child, terminate_pid
from crm_devstack.demo_data import (
    DEMO_COMPANY,
    DEMO_CONVERSIONS,
    DEMO_LEADS,
    DEMO_WON_DEAL,
    create_demo_campaigns,
    create_demo_catalog,
    create_demo_consents,
    create_demo_service_desk,
)
from crm_devstack.nats import EmbeddedNats
from crm_devstack.postgres import EmbeddedPostgres
from crm_kit.dev_issuer import DevIssuer
from crm_kit.migrations import migrations_dir
from crm_kit.nats_access import PROVISIONER

BACKEND_SERVICES: tuple[str, ...] = (
    "leads",
    "sales",
    "customers",
    "orders",
    "support",
    "notifications",
    "reporting",
)
"""Backend services, each with its own database, gRPC port and metrics port."""
Launcher = Callable[[list[str], dict[str, str]], tuple[list[str], dict[str, str]]]
"""Turns a process's command line and environment into the ones actually run (e.g.
`crm_devstack.images.ImageLauncher`: the service from its container image)."""
DATABASES: tuple[str, ...] = BACKEND_SERVICES
GATEWAY = "gateway"
CONSOLE = "console"
SMS = "sms"
MAIL = "mail"
POSTGRES = "postgres"
NATS = "nats"
SMS_API_KEY = "dev-sms-key"
# What the fake SMS provider signs its callbacks (delivery receipts, replies) with.
SMS_CALLBACK_SECRET = "dev-sms-callback-secret"
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A part of the stack failed to start or to stop."""


@dataclass(frozen=True)
class Ports:
    """Every TCP port the stack listens on (all bound to 127.0.0.1)."""

    gateway: int = 8080
    console: int = 8081
    sms: int = 8090
    # The local SMTP sink: SMTP, and HTTP to read what it received.
    mail_smtp: int = 8025
    mail: int = 8026
    postgres: int = 5433
    nats: int = 4222
    leads: int = 50051
    customers: int = 50052
    orders: int = 50053
    notifications: int = 50054
    reporting: int = 50055
    sales: int = 50056
    support: int = 50057
    leads_metrics: int = 9101
    customers_metrics: int = 9102
    orders_metrics: int = 9103
    notifications_metrics: int = 9104
    reporting_metrics: int = 9105
    gateway_metrics: int = 9106
    sales_metrics: int = 9107
    console_metrics: int = 9108
    support_metrics: int = 9109

    @classmethod
    def free(cls) -> Ports:
        """Ports that are free right now (for tests running next to other stacks)."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**dict(zip(names, free_ports(len(names)), strict=True)))

    def grpc(self, service: str) -> int:
        """gRPC port of a backend service."""
        _check_backend(service)
        port: int = getattr(self, service)
        return port

    def metrics(self, service: str) -> int:
        """Prometheus metrics port of a backend service, the gateway or the console."""
        if service not in (GATEWAY, CONSOLE):
            _check_backend(service)
        port: int = getattr(self, f"{service}_metrics")
        return port


def _check_backend(service: str) -> None:
    if service not in BACKEND_SERVICES:
        raise ValueError(f"unknown backend service {service!r}; expected one of {', '.join(BACKEND_SERVICES)}")


class Stack:
    """Starts, watches and stops the whole system with its state in ``state_dir``.

    Layout of ``state_dir``: ``pg/`` (PostgreSQL data), ``nats/`` (JetStream store),
    ``logs/<name>.log`` (one log per process), ``run/<name>.pid`` (to clean up after a
    launcher that was killed), ``attachments/`` (the support service's object store).
    """

    PROCESS_NAMES: ClassVar[tuple[str, ...]] = (*BACKEND_SERVICES, GATEWAY, CONSOLE, SMS, MAIL)

    def __init__(
        self,
        state_dir: Path,
        ports: Ports | None = None,
        *,
        ready_timeout: float = 90.0,
        stop_timeout: float = 10.0,
        python: str = sys.executable,
        extra_env: Mapping[str, str] | None = None,
        launcher: Launcher | None = None,
        migrated_snapshots: Path | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.launcher = launcher
        # Tests that start many stacks: a directory of PostgreSQL data directories, each the
        # databases just migrated by one migration history (`migrated_snapshot`).
        self.migrated_snapshots = migrated_snapshots
        self.ports = ports if ports is not None else Ports()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.python = python
        self.extra_env = dict(extra_env or {})
        self.logs_dir = self.state_dir / "logs"
        self.run_dir = self.state_dir / "run"
        self.postgres = EmbeddedPostgres(self.state_dir / "pg", self.ports.postgres)
        self.nats = EmbeddedNats(self.state_dir / "nats", self.ports.nats)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ addresses

    @property
    def dev_issuer_key_file(self) -> Path:
        """The development token issuer's signing key (created on first start; never committed)."""
        return self.state_dir / "dev-issuer" / "signing-key.pem"

    def token(self, role: str = "admin", *, subject: str = "", team_id: str = "", ttl_seconds: int = 3600) -> str:
        """A bearer token from the development issuer for the demo user of role."""
        issuer = DevIssuer.load_or_create(self.dev_issuer_key_file)
        return issuer.mint_demo(role, subject=subject, team_id=team_id, ttl_seconds=ttl_seconds)

    def auth_headers(
        self, role: str = "admin", *, subject: str = "", team_id: str = "", ttl_seconds: int = 3600
    ) -> dict[str, str]:
        token = self.token(role, subject=subject, team_id=team_id, ttl_seconds=ttl_seconds)
        return {"Authorization": f"Bearer {token}"}

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def console_url(self) -> str:
        """The console as a browser reaches it (localhost: the issuer's redirect URIs name it)."""
        return f"http://localhost:{self.ports.console}"

    @property
    def console_session_key_file(self) -> Path:
        """The console's cookie-sealing key (created on first start; never committed)."""
        return self.state_dir / "console" / "session-key"

    @property
    def sms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sms}"

    @property
    def sms_receipts_url(self) -> str:
        return f"{self.gateway_url}/api/v1/public/sms-callbacks/receipts"

    @property
    def mail_url(self) -> str:
        """The SMTP sink's HTTP side: what it received (`/messages` as JSON, `/` for a person)."""
        return f"http://127.0.0.1:{self.ports.mail}"

    @property
    def nats_url(self) -> str:
        """NATS as its unrestricted admin (tests and tools); the services connect as their own
        users (`crm_kit.nats_access`), with the credentials the launcher gives each."""
        return self.nats.admin_url

    def database_url(self, name: str) -> str:
        """SQLAlchemy (asyncpg) URL of a service's database."""
        return self.postgres.url(name)

    def grpc_address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports.grpc(service)}"

    def log_path(self, name: str) -> Path:
        if name == POSTGRES:
            return self.postgres.log_path
        if name == NATS:
            return self.nats.log_path
        return self.logs_dir / f"{name}.log"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start everything and wait until every process is ready; on failure stop what was started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._stop_leftovers)
        snapshot = self.migrated_snapshot()
        # Only a data directory initialised by this start holds nothing but the migrations.
        fresh = not (self.postgres.data_dir / "PG_VERSION").exists()
        restored = snapshot is not None and await asyncio.to_thread(self._restore, snapshot)
        await asyncio.gather(asyncio.to_thread(self.postgres.start), asyncio.to_thread(self.nats.start))
        # No service may create or change the stream or the gateway's bucket: the provisioner does.
        await self._provision()
        self._spawn(SMS)
        self._spawn(MAIL)
        if not restored:
            for database in DATABASES:
                await self.postgres.acreate_database(database)
            await asyncio.gather(*(self._migrate(service) for service in BACKEND_SERVICES))
            if snapshot is not None and fresh:
                await asyncio.to_thread(self._save, snapshot)
        for service in BACKEND_SERVICES:
            self._spawn(service)
        await self._wait_ready((*BACKEND_SERVICES, SMS, MAIL))
        self._spawn(GATEWAY)
        await self._wait_ready((GATEWAY,))
        self._spawn(CONSOLE)
        await self._wait_ready((CONSOLE,))

    def migrated_snapshot(self) -> Path | None:
        """Where this stack's freshly migrated databases are kept for the next stack (None: no
        snapshots, or processes from images, which must migrate themselves): one data directory
        per migration history, named by the digest of every backend's Alembic directory, so a
        new migration makes a new snapshot. The migrations themselves are tested on their own
        (tests/migrations) and by every stack that finds no snapshot."""
        if self.migrated_snapshots is None or self.launcher is not None:
            return None
        digest = hashlib.sha256(str(self.postgres.install_dir).encode())
        for service in BACKEND_SERVICES:
            spec = importlib.util.find_spec(f"crm_{service}")
            if spec is None or not spec.submodule_search_locations:
                raise StackError(f"crm_{service} is not installed: no migrations to snapshot")
            directory = migrations_dir(str(Path(next(iter(spec.submodule_search_locations))) / "__init__.py"))
            for file in sorted(directory.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    digest.update(f"{service}/{file.relative_to(directory)}".encode() + b"\0" + file.read_bytes())
        return self.migrated_snapshots / digest.hexdigest()[:24]

    def _restore(self, snapshot: Path) -> bool:
        """Copy the snapshot into a data directory never initialised; False if there is none."""
        if not snapshot.is_dir() or (self.postgres.data_dir / "PG_VERSION").exists():
            return False
        shutil.copytree(snapshot, self.postgres.data_dir, symlinks=True, dirs_exist_ok=True)
        return True

    def _save(self, snapshot: Path) -> None:
        """Keep the migrated data directory as the snapshot: a clean stop (a consistent copy),
        a copy beside it, one rename (a concurrent stack's copy wins or loses whole), a start."""
        if snapshot.exists():
            return
        self.postgres.stop()
        partial = snapshot.with_name(f"{snapshot.name}.{os.getpid()}.partial")
        shutil.copytree(self.postgres.data_dir, partial, symlinks=True)
        try:
            partial.rename(snapshot)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
        self.postgres.start()

    async def stop(self) -> None:
        """Stop the console and the gateway, then the backend services, then the SMS provider and the
        SMTP sink, NATS and PostgreSQL."""
        await self._terminate([CONSOLE, GATEWAY])
        await self._terminate(list(BACKEND_SERVICES))
        await self._terminate([SMS, MAIL])
        await asyncio.to_thread(self.nats.stop)
        await asyncio.to_thread(self.postgres.stop)

    async def kill_process(self, name: str) -> None:
        """SIGKILL one part of the stack: a service, ``gateway``, ``sms``, ``nats`` or ``postgres``."""
        if name == POSTGRES:
            await asyncio.to_thread(self.postgres.kill)
        elif name == NATS:
            await asyncio.to_thread(self.nats.kill)
        else:
            self._check_process_name(name)
            proc = self.processes.get(name)
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                await asyncio.to_thread(proc.wait)

    async def restart_process(self, name: str) -> None:
        """Stop one part of the stack (gracefully, if still running), start it again and wait until ready."""
        if name == POSTGRES:
            await asyncio.to_thread(self.postgres.restart)
        elif name == NATS:
            await asyncio.to_thread(self.nats.restart)
        else:
            self._check_process_name(name)
            await self._terminate([name])
            self._spawn(name)
            await self._wait_ready((name,))

    def exited(self) -> dict[str, int]:
        """Processes of the stack that have exited, with their exit codes."""
        codes = {name: proc.poll() for name, proc in self.processes.items()}
        return {name: code for name, code in codes.items() if code is not None}

    # ------------------------------------------------------------------ demo data

    async def load_demo_data(self) -> None:
        """Create demo leads through the gateway, convert two and win one deal, the demo products
        and price lists, and the service desk's queues and two tickets (idempotent)."""
        headers = self.auth_headers("admin")
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=30.0, headers=headers) as client:
            await create_demo_campaigns(client)
            await create_demo_catalog(client)
            lead_ids: list[str] = []
            for lead in DEMO_LEADS:
                response = await client.post("/api/v1/leads", json=lead)
                _raise_for_status(response, f"create demo lead {lead['request_id']}")
                lead_ids.append(_extract_id(response, "lead"))
            deal_ids: list[str] = []
            for lead_index, title in DEMO_CONVERSIONS:
                lead_id = lead_ids[lead_index]
                response = await client.post(f"/api/v1/leads/{lead_id}/convert", json={"title": title})
                if response.status_code == 409:  # converted on a previous run
                    continue
                _raise_for_status(response, f"convert demo lead {lead_id}")
                deal_ids.append(_extract_id(response, "deal"))
            if deal_ids:
                response = await client.post(f"/api/v1/deals/{deal_ids[0]}/close", json=DEMO_WON_DEAL)
                if response.status_code != 409:  # 409: closed on a previous run
                    _raise_for_status(response, f"close demo deal {deal_ids[0]}")
            await create_demo_service_desk(client, lead_ids)
            await create_demo_consents(client, lead_ids)

    async def load_demo_history(self, customers: int = 3000) -> None:
        """Two years of demo history in reporting's own database (crm_reporting.demo_history: its
        handlers, its facts only), so reports, scores and lists show something on a fresh machine;
        once (a second run finds it and changes nothing). `make run` only: the tests count their
        own facts."""
        command = [self.python, "-m", "crm_reporting.demo_history", "--customers", str(customers)]
        process = await asyncio.create_subprocess_exec(
            *command,
            env=self._service_env("reporting"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise StackError(f"loading the demo history failed: {output.decode(errors='replace')[-2000:]}")
        print(output.decode().strip(), flush=True)

    # ------------------------------------------------------------------ internals

    def _check_process_name(self, name: str) -> None:
        if name not in self.PROCESS_NAMES:
            known = ", ".join((*self.PROCESS_NAMES, NATS, POSTGRES))
            raise ValueError(f"unknown process {name!r}; expected one of {known}")

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CRM_ENVIRONMENT": "development",
                # Every listener on loopback only (the settings' defaults, said here so a CRM_*_HOST
                # left in the shell cannot put a laptop's backends, with reflection, on the network).
                "CRM_GRPC_HOST": LOOPBACK,
                "CRM_METRICS_HOST": LOOPBACK,
                "CRM_HTTP_HOST": LOOPBACK,
                "CRM_NATS_URL": self.nats.url,
                "CRM_SMS_BASE_URL": self.sms_url,
                "CRM_SMS_API_KEY": SMS_API_KEY,
                # A promotion e-mail's one-click unsubscribe goes to the gateway.
                "CRM_PUBLIC_API_BASE_URL": self.gateway_url,
                # The survey SMS links to the console's public survey page.
                "CRM_SURVEY_BASE_URL": self.console_url,
                # E-mail goes to the local SMTP sink (no TLS or login on loopback; a cluster's
                # relay uses STARTTLS and AUTH).
                "CRM_SMTP_HOST": LOOPBACK,
                "CRM_SMTP_PORT": str(self.ports.mail_smtp),
                "CRM_SMTP_SECURITY": "none",
                "CRM_SMTP_FROM_ADDRESS": "service@crm.localhost",
                "CRM_SMTP_FROM_NAME": "CRM",
                # A scheduled report's "send now" reaches the sink within seconds.
                "CRM_REPORT_SCHEDULE_POLL_SECONDS": "2",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for service in BACKEND_SERVICES:
            env[f"CRM_{service.upper()}_ADDR"] = self.grpc_address(service)
        for name, value in DEMO_COMPANY.items():
            env.setdefault(name, value)
        env.update(self.extra_env)
        return env

    def _service_env(self, service: str) -> dict[str, str]:
        env = self._base_env()
        env.update(
            {
                "CRM_SERVICE_NAME": service,
                "CRM_DATABASE_URL": self.database_url(service),
                "CRM_GRPC_PORT": str(self.ports.grpc(service)),
                "CRM_METRICS_PORT": str(self.ports.metrics(service)),
                **self.nats.users.env(service),
            }
        )
        if service == "support":
            # Ticket attachments' bytes: files under the state directory (a cluster uses S3).
            env["CRM_OBJECT_STORE_URL"] = f"file://{self.state_dir / 'attachments'}"
        return env

    def command(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of one process of the stack, for a test that runs
        another copy of it beside the stack (a second gateway replica)."""
        self._check_process_name(name)
        return self._command(name)

    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        if name in (SMS, MAIL):
            # The fakes at the edge: each a module of this package, on loopback, with its ports.
            ports = (
                ["--port", str(self.ports.sms)]
                if name == SMS
                else ["--smtp-port", str(self.ports.mail_smtp), "--http-port", str(self.ports.mail)]
            )
            if name == SMS:
                # Delivery receipts go back to the gateway's signed callback, as a real provider's do.
                ports += ["--receipts-url", self.sms_receipts_url, "--receipts-secret", SMS_CALLBACK_SECRET]
            module = "crm_devstack.sms_provider" if name == SMS else "crm_devstack.mail_sink"
            command = [self.python, "-m", module, "--host", LOOPBACK, *ports]
            return command, {**self._base_env(), "CRM_SERVICE_NAME": name}
        if name == GATEWAY:
            env = {
                **self._base_env(),
                "CRM_SERVICE_NAME": GATEWAY,
                "CRM_HTTP_PORT": str(self.ports.gateway),
                "CRM_METRICS_PORT": str(self.ports.metrics(GATEWAY)),
                **self.nats.users.env(GATEWAY),
                "CRM_PUBLIC_BASE_URL": f"http://localhost:{self.ports.gateway}",
                "CRM_SMS_CALLBACK_SECRET": SMS_CALLBACK_SECRET,
                # The development issuer: the gateway serves its JWKS and trusts it.
                "CRM_AUTH_DEV_ISSUER_KEY_FILE": str(self.dev_issuer_key_file),
                "CRM_AUTH_JWKS_URL": f"{self.gateway_url}/.well-known/jwks.json",
                # The console signs users in at the development issuer (code + PKCE).
                "CRM_AUTH_DEV_CLIENTS": json.dumps(
                    {"crm-console": [f"{self.console_url}/callback", f"http://127.0.0.1:{self.ports.console}/callback"]}
                ),
            }
            return [self.python, "-m", "crm_gateway", "serve"], env
        if name == CONSOLE:
            env = {
                **self._base_env(),
                # Said, not left to the default: the console's image declares production.
                "CRM_CONSOLE_ENVIRONMENT": "development",
                "CRM_CONSOLE_HTTP_PORT": str(self.ports.console),
                "CRM_CONSOLE_METRICS_PORT": str(self.ports.metrics(CONSOLE)),
                "CRM_CONSOLE_GATEWAY_URL": self.gateway_url,
                "CRM_CONSOLE_PUBLIC_URL": self.console_url,
                "CRM_CONSOLE_OIDC_ISSUER_URL": self.gateway_url,
                "CRM_CONSOLE_OIDC_BROWSER_ISSUER_URL": f"http://localhost:{self.ports.gateway}",
                "CRM_CONSOLE_PUBLIC_GATEWAY_URL": f"http://localhost:{self.ports.gateway}",
                "CRM_CONSOLE_SESSION_KEY": self._console_session_key(),
            }
            return [self.python, "-m", "crm_console", "serve"], env
        return [self.python, "-m", f"crm_{name}", "serve"], self._service_env(name)

    def _console_session_key(self) -> str:
        path = self.console_session_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        return path.read_text().strip()

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def spawn(self, name: str, extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start one process of the stack (not waiting for it), with extra_env added to its own
        environment only (e.g. CRM_FAILPOINTS for one service); `stop()` ends it like the others."""
        self._check_process_name(name)
        self._spawn(name, extra_env)
        return self.processes[name]

    def _launch(self, command: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return self.launcher(command, env) if self.launcher is not None else (command, env)

    def _spawn(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        command, env = self._command(name)
        env.update(extra_env or {})
        command, env = self._launch(command, env)
        extra = "".join(f" {key}={value}" for key, value in (extra_env or {}).items())
        log_path = self.log_path(name)
        with log_path.open("ab") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(command)}{extra}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self.processes[name] = proc
        self._pid_file(name).write_text(f"{proc.pid}\n")

    def _stop_leftovers(self) -> None:
        """Stop processes that a previous launcher of this state dir left running when it was killed."""
        for name in self.PROCESS_NAMES:
            pid_file = self._pid_file(name)
            try:
                pid = int(pid_file.read_text().strip())
            except (FileNotFoundError, ValueError):
                continue
            expected, _ = self._command(name)
            cmdline = process_cmdline(pid) if pid_alive(pid) else None
            if cmdline is not None and cmdline[1:] == expected[1:]:
                terminate_pid(pid, signal.SIGTERM, timeout=self.stop_timeout)
            pid_file.unlink(missing_ok=True)

    async def _terminate(self, names: list[str]) -> None:
        async def one(name: str) -> None:
            proc = self.processes.pop(name, None)
            if proc is None:
                return
            await asyncio.to_thread(stop_child, proc, signal.SIGTERM, self.stop_timeout)
            self._pid_file(name).unlink(missing_ok=True)

        await asyncio.gather(*(one(name) for name in names))

    async def _migrate(self, service: str) -> None:
        command = [self.python, "-m", f"crm_{service}", "migrate"]
        await self._run_once(f"migration of {service}", f"{service}-migrate", command, self._service_env(service))

    async def _provision(self) -> None:
        """Create or update the CRM stream and the gateway's Idempotency-Key bucket as the
        `provisioner` (no service may), with the command a cluster's hook Job runs and the
        settings the services get (so CRM_IDEMPOTENCY_* in extra_env reach the bucket too)."""
        command = [self.python, "-m", "crm_kit.nats_access", "provision"]
        env = {**self._base_env(), "CRM_SERVICE_NAME": PROVISIONER, **self.nats.users.env(PROVISIONER)}
        await self._run_once("provisioning of the NATS streams", PROVISIONER, command, env)

    async def _run_once(self, what: str, log_name: str, command: list[str], env: dict[str, str]) -> None:
        """Run a one-shot command to its end (its output appended to logs/<log_name>.log)."""
        command, env = self._launch(command, env)
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=self.state_dir,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout=self.ready_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise StackError(f"{what} did not finish within {self.ready_timeout:.0f}s") from None
        text = output.decode(errors="replace")
        with self.log_path(log_name).open("a", encoding="utf-8") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n{text}")
        if proc.returncode != 0:
            raise StackError(
                f"{what} failed with exit code {proc.returncode} ({' '.join(command)}):\n"
                + log_tail(self.log_path(log_name), 60)
            )

    async def _wait_ready(self, names: tuple[str, ...]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = list(names)
        async with httpx.AsyncClient(timeout=2.0) as http:
            while pending:
                self._fail_on_exit()
                still: list[str] = []
                for name in pending:
                    if not await self._is_ready(name, http):
                        still.append(name)
                pending = still
                if not pending:
                    return
                if time.monotonic() >= deadline:
                    name = pending[0]
                    raise StackError(
                        f"{name} is not ready after {self.ready_timeout:.0f}s "
                        f"(also waiting for: {', '.join(pending[1:]) or 'nothing else'}). "
                        f"Log {self.log_path(name)}:\n{log_tail(self.log_path(name))}"
                    )
                await asyncio.sleep(0.2)

    def _fail_on_exit(self) -> None:
        for name, code in self.exited().items():
            raise StackError(
                f"{name} exited with code {code}. Log {self.log_path(name)}:\n{log_tail(self.log_path(name))}"
            )

    async def _is_ready(self, name: str, http: httpx.AsyncClient) -> bool:
        if name == GATEWAY:
            return await gateway_reaches_every_backend(http, self.gateway_url)
        if name in (SMS, MAIL):
            return await _http_ok(http, f"{self.sms_url if name == SMS else self.mail_url}/healthz")
        if name == CONSOLE:
            return await _http_ok(http, f"http://127.0.0.1:{self.ports.console}/readyz")
        return await grpc_serving(self.grpc_address(name))


async def grpc_serving(address: str, probe_timeout: float = 1.0) -> bool:
    """True when the gRPC health service at ``address`` reports SERVING for the server as a whole."""
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=probe_timeout)
    except (TimeoutError, grpc.aio.AioRpcError, OSError):
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def gateway_reaches_every_backend(client: httpx.AsyncClient, gateway_url: str) -> bool:
    """The gateway is ready and names no backend unavailable (its /readyz stays 200 while one is
    down: a stack or a test waiting for the whole system asks for the list to be empty)."""
    try:
        response = await client.get(f"{gateway_url}/readyz")
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("unavailable", []) == []


async def _http_ok(client: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _raise_for_status(response: httpx.Response, action: str) -> None:
    if not response.is_success:
        raise StackError(
            f"{action}: {response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text[:2000]}"
        )


def _extract_id(response: httpx.Response, kind: str) -> str:
    """The ``id`` of a created resource, whether returned bare or wrapped as ``{"<kind>": {...}}``."""
    payload: Any = response.json()
    if isinstance(payload, dict):
        value = payload.get("id")
        if value is None and isinstance(payload.get(kind), dict):
            value = payload[kind].get("id")
        if isinstance(value, str | int) and str(value):
            return str(value)
    raise StackError(f"expected a {kind} with an id from {response.request.url}, got: {response.text[:2000]}")


async def _run(stack: Stack, demo: bool) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)

    async def start_and_load() -> None:
        await stack.start()
        if demo:
            await stack.load_demo_data()
            await stack.load_demo_history()

    starting = asyncio.create_task(start_and_load())
    waiting = asyncio.create_task(stop_requested.wait())
    done, _ = await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if starting not in done:
        print("Interrupted while starting; stopping…", flush=True)
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        await stack.stop()
        return 130
    waiting.cancel()
    try:
        starting.result()
    except Exception as error:
        print(f"CRM failed to start: {error}", file=sys.stderr, flush=True)
        await stack.stop()
        return 1

    ports = stack.ports
    print(
        f"CRM is running: console http://localhost:{ports.console} (sign in as any demo user), "
        f"gateway http://localhost:{ports.gateway} "
        f"(OpenAPI docs at http://localhost:{ports.gateway}/docs), "
        f"fake SMS provider http://localhost:{ports.sms}/messages, "
        f"e-mail at http://localhost:{ports.mail}/, "
        f"logs in {stack.logs_dir} — Ctrl-C to stop",
        flush=True,
    )
    reported: set[str] = set()
    while not stop_requested.is_set():
        for name, code in stack.exited().items():
            if name not in reported:
                reported.add(name)
                print(f"warning: {name} exited with code {code}; see {stack.log_path(name)}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_requested.wait(), timeout=1.0)
    print("Stopping CRM…", flush=True)
    await stack.stop()
    print("CRM stopped; data kept in", stack.state_dir, flush=True)
    return 0


def run(state_dir: Path, *, demo: bool = True, ports: Ports | None = None) -> int:
    """Run the stack in the foreground until SIGINT/SIGTERM; returns the process exit code."""
    import fcntl

    state_dir = Path(state_dir).absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_file = (state_dir / "run.lock").open("a+")
    try:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"CRM is already running (state in {state_dir}); stop it with Ctrl-C in its terminal",
                file=sys.stderr,
            )
            return 1
        return asyncio.run(_run(Stack(state_dir, ports), demo))
    finally:
        lock_file.close()
