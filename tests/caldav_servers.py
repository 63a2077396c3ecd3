"""Real CalDAV servers for the test suite: Radicale and Xandikos on loopback.

A pytest plugin: ``pytest_plugins = ["tests.caldav_servers"]`` in tests/conftest.py, or
``python -m pytest -p tests.caldav_servers`` (``-p`` imports before pytest puts the
project root on sys.path, so the bare ``pytest`` script cannot find ``tests``).
Each server is started once per session as a subprocess of the interpreter running the
tests, on a free port, with its storage in a temporary directory, and stopped at the end.
Tests get a fresh, uniquely named calendar each (``caldav_calendar``), so they never see
one another's events even though the servers are shared.

Radicale runs with htpasswd authentication and ``owner_only`` rights, as a real
deployment would, so wrong-password paths can be tested. Xandikos has no authentication
over plain HTTP (its ``--htpasswd`` requires ``--autocert``, i.e. self-signed TLS), so it
runs open, with a single principal at ``/user/``; ``supports_auth`` says which is which.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.lib import error

STARTUP_SECONDS = 30.0
STOP_SECONDS = 5.0
STDERR_TAIL_LINES = 40

RADICALE_USERNAME = "alice"
RADICALE_PASSWORD = "correct-horse-battery"
XANDIKOS_PRINCIPAL = "/user/"


class CalDAVServerStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class CalDAVServer:
    """A running CalDAV server and the account a client should use on it.

    ``url`` is what a user would type into "connect a CalDAV account": the server root,
    from which the client discovers its principal and calendar home. ``supports_auth``
    is False where the server accepts any (or no) credentials.
    """

    name: str
    url: str
    username: str
    password: str
    supports_auth: bool

    def client(self, *, password: str | None = None) -> DAVClient:
        """A client for this server's account; ``password`` overrides the right one."""
        return DAVClient(
            url=self.url,
            username=self.username,
            password=self.password if password is None else password,
            timeout=10,
        )


def _free_port() -> int:
    # The port is released before the server binds it; another process could take it
    # in between, but on a test machine that window is too small to be worth a retry.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stderr_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no stderr captured)"
    return "\n".join(lines[-STDERR_TAIL_LINES:]) or "(stderr is empty)"


def _answers_http(port: int) -> bool:
    # Any HTTP status counts as ready: Radicale answers 401 without credentials and
    # Xandikos 207/404 depending on the path; what matters is that the server parses
    # requests, not what it thinks of this one.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("OPTIONS", "/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


@contextlib.contextmanager
def _server_process(name: str, command: list[str], port: int, workdir: Path) -> Iterator[None]:
    """Run ``command`` until the block ends; raise with its stderr if it never answers."""
    stderr_path = workdir / f"{name}.stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers_http(port):
            if process.poll() is not None:
                raise CalDAVServerStartError(
                    f"{name} exited with status {process.returncode} before answering on "
                    f"port {port}. Last lines of {stderr_path}:\n{_stderr_tail(stderr_path)}"
                )
            if time.monotonic() > deadline:
                raise CalDAVServerStartError(
                    f"{name} did not answer on port {port} within {STARTUP_SECONDS:.0f}s. "
                    f"Last lines of {stderr_path}:\n{_stderr_tail(stderr_path)}"
                )
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    workdir = tmp_path_factory.mktemp("radicale")
    (workdir / "collections").mkdir()
    htpasswd = workdir / "users"
    htpasswd.write_text(f"{RADICALE_USERNAME}:{RADICALE_PASSWORD}\n")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "radicale",
        # An empty list of config files, which also wins over $RADICALE_CONFIG: neither
        # /etc/radicale/config nor a developer's own config may change the tests.
        "--config",
        "",
        f"--server-hosts=127.0.0.1:{port}",
        f"--storage-filesystem-folder={workdir / 'collections'}",
        "--auth-type=htpasswd",
        f"--auth-htpasswd-filename={htpasswd}",
        "--auth-htpasswd-encryption=plain",
        # The default delays every refused login by a second, which would make each
        # wrong-password test a slow one.
        "--auth-delay=0",
        # The default since Radicale 3, spelt out because the tests rely on it: a user
        # may read and write only collections under /<user>/.
        "--rights-type=owner_only",
        "--logging-level=warning",
    ]
    with _server_process("radicale", command, port, workdir):
        yield CalDAVServer(
            name="radicale",
            url=f"http://127.0.0.1:{port}/",
            username=RADICALE_USERNAME,
            password=RADICALE_PASSWORD,
            supports_auth=True,
        )


@pytest.fixture(scope="session")
def xandikos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    workdir = tmp_path_factory.mktemp("xandikos")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "xandikos",
        "serve",
        f"--directory={workdir / 'data'}",
        # --defaults creates the principal with a calendar home (/user/calendars/) and
        # one calendar in it, which is what makes discovery from the root work.
        "--defaults",
        f"--current-user-principal={XANDIKOS_PRINCIPAL}",
        f"--state-dir={workdir / 'state'}",
        "--listen-address=127.0.0.1",
        f"--port={port}",
        # Outside a systemd unit this is a no-op, but a test run started from one (a CI
        # runner, say) must not have Xandikos pick up the runner's sockets.
        "--no-detect-systemd",
    ]
    with _server_process("xandikos", command, port, workdir):
        yield CalDAVServer(
            name="xandikos",
            url=f"http://127.0.0.1:{port}/",
            # Xandikos ignores credentials over plain HTTP; these are only sent along.
            username="user",
            password="unused",
            supports_auth=False,
        )


@pytest.fixture(scope="session", params=["radicale", "xandikos"])
def caldav_server(request: pytest.FixtureRequest) -> CalDAVServer:
    """Each real server in turn; a test using it runs once per server."""
    server: CalDAVServer = request.getfixturevalue(f"{request.param}_server")
    return server


def make_calendar(server: CalDAVServer) -> tuple[DAVClient, Calendar]:
    """A new, empty calendar with a unique id and name in the server's account.

    Returns the client it was made with, which the caller closes (or leaves to
    ``caldav_calendar``), and the calendar.
    """
    client = server.client()
    suffix = uuid.uuid4().hex[:12]
    calendar = client.get_principal().make_calendar(name=f"Test {suffix}", cal_id=f"test-{suffix}")
    return client, calendar


@pytest.fixture
def caldav_calendar(caldav_server: CalDAVServer) -> Iterator[Calendar]:
    """A fresh calendar on each server, deleted after the test."""
    client, calendar = make_calendar(caldav_server)
    try:
        yield calendar
    finally:
        # A test that already deleted its calendar, or broke the connection, must not
        # turn into an error in teardown: the server's storage is thrown away anyway.
        with contextlib.suppress(error.DAVError, OSError):
            calendar.delete()
        client.close()
