"""Run a command (the test suite) with real PostgreSQL and Redis at hand.

    python -m tests.services pytest [args...]

Uses `DATABASE_URL` / `REDIS_URL` when set; otherwise the local servers at
127.0.0.1:5432 (user postgres) and 127.0.0.1:6379; where those are not running but the
server programs are installed, throwaway instances in a temporary directory, stopped
again afterwards; where they are not installed, stops with a message saying what to
install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class ServiceUnavailableError(RuntimeError):
    pass


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(port):
            return
        time.sleep(0.1)
    raise ServiceUnavailableError(f"The throwaway {what} did not start within {seconds:.0f}s.")


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb refuses to run as root: on a root shell, run the server as `postgres`.
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise ServiceUnavailableError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user: "
            "set DATABASE_URL to a running server."
        ) from error
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    if _port_open(5432):
        yield "postgres://postgres@127.0.0.1:5432/convene"
        return
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise ServiceUnavailableError(
            "PostgreSQL is not running on 127.0.0.1:5432 and is not installed. Install it "
            "(Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL."
        )
    with tempfile.TemporaryDirectory(prefix="convene-pg-") as tmp:
        data = Path(tmp) / "data"
        if os.geteuid() == 0:
            shutil.chown(tmp, "postgres")
        port = _free_port()
        subprocess.run(
            _as_postgres_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off"
        subprocess.run(
            _as_postgres_user([pg_ctl, "-D", str(data), "-o", options, "-w", "start"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        try:
            yield f"postgres://postgres@127.0.0.1:{port}/convene"
        finally:
            subprocess.run(
                _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                check=False,
                stdout=subprocess.DEVNULL,
            )


@contextlib.contextmanager
def redis() -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    if _port_open(6379):
        # Database 9: the suite flushes it between tests, so keep it apart from others.
        yield "redis://127.0.0.1:6379/9"
        return
    server = shutil.which("redis-server")
    if not server:
        raise ServiceUnavailableError(
            "Redis is not running on 127.0.0.1:6379 and is not installed. Install it "
            "(Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL."
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="convene-redis-") as tmp:
        process = subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port, "Redis")
            yield f"redis://127.0.0.1:{port}/9"
        finally:
            process.terminate()
            process.wait(timeout=10)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with postgres() as database_url, redis() as redis_url:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                # The broker is real, but tasks run eagerly unless a test starts a
                # worker (tests/accounts/test_celery_worker.py).
                "CELERY_BROKER_URL": redis_url,
                "CELERY_TASK_ALWAYS_EAGER": "true",
                # Test runs side by side on one server each get their own database.
                "TEST_DATABASE_NAME": f"test_convene_{os.getpid()}",
            }
            return subprocess.call(argv, env=env)
    except (ServiceUnavailableError, subprocess.CalledProcessError) as error:
        print(f"Cannot run the tests: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
