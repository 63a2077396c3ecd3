"""The guarded outbound HTTP client (apps/calendars/providers/http.py).

Nothing here sends a packet beyond loopback: names resolve through fake resolvers,
refused addresses are refused before any connection, and the servers that answer
are local ones, reached through made-up names where a test needs a name.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import niquests
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pytest_django.fixtures import Settings

from apps.calendars.providers.http import (
    IPAddress,
    OutboundPolicy,
    RefusedAddressError,
    check_url,
    guarded_davclient,
    guarded_niquests_session,
    guarded_requests_session,
    outbound_policy_from_settings,
    system_resolver,
)
from tests.caldav_servers import CalDAVServer

LOOPBACK = ipaddress.ip_address("127.0.0.1")
ALLOW_LOOPBACK = OutboundPolicy(allowed_networks=[ipaddress.ip_network("127.0.0.1/32")])

SessionFactory = Callable[..., Any]
SESSION_FACTORIES = [
    pytest.param(guarded_requests_session, id="requests"),
    pytest.param(guarded_niquests_session, id="niquests"),
]


def no_resolver(host: str, port: int) -> list[IPAddress]:
    raise AssertionError(f"{host} is an address: nothing should have resolved it")


@dataclass
class FakeResolver:
    """A DNS that knows only `answers`, and remembers every question."""

    answers: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(address) for address in self.answers[host]]


# ---------------------------------------------------------------------------------
# Local servers.
# ---------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class LocalServer:
    """An HTTP(S) server on 127.0.0.1 that answers from `routes` and records what it
    was sent (and, over TLS, the SNI name the client asked for)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, tuple[int, dict[str, str]]] = {}
        self.seen: list[Seen] = []
        self.sni: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(Seen("GET", self.path, dict(self.headers.items())))
                status, headers = server.routes.get(self.path, (200, {}))
                body = b"hello"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers. It hangs up after five
    seconds, so a client without a read timeout fails the test instead of hanging."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    done = threading.Event()

    def accept_and_hang_up_later() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            hang_up = threading.Timer(5, connection.close)
            hang_up.daemon = True
            hang_up.start()

    thread = threading.Thread(target=accept_and_hang_up_later, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    done.set()
    thread.join()
    listener.close()


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    path: Path

    def server_context(self, dns_name: str, directory: Path) -> ssl.SSLContext:
        """A server TLS context with a certificate for `dns_name` (and no IP address)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{dns_name}.pem", directory / f"{dns_name}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Convene test CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(key=key, certificate=certificate, path=path)


# ---------------------------------------------------------------------------------
# Which addresses are refused.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "a loopback address"),
        ("http://127.8.9.10:8080/", "a loopback address"),
        ("http://[::1]/", "a loopback address"),
        ("http://10.0.0.5/", "a private network address"),
        ("http://172.16.3.4/", "a private network address"),
        ("http://192.168.1.1/", "a private network address"),
        ("http://100.64.0.1/", "a private network address"),
        ("http://[fd12:3456::1]/", "a private network address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://255.255.255.255/", "a reserved address"),
        ("http://192.0.2.1/", "a reserved address"),
        ("http://198.18.0.1/", "a reserved address"),
        ("http://[2001:db8::1]/", "a reserved address"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "a reserved address"),  # Teredo
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        ("http://100.100.100.200/", "a cloud metadata address"),
        ("http://168.63.129.16/", "a cloud metadata address"),
    ],
)
def test_refuses_addresses_outside_the_public_internet(url: str, reason: str) -> None:
    with pytest.raises(RefusedAddressError, match=reason):
        check_url(url, OutboundPolicy(), resolver=no_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://127.0.0.1./",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[2002:7f00:1::]/",  # 6to4
        "http://[64:ff9b::7f00:1]/",  # NAT64
    ],
)
def test_refuses_loopback_spelt_as_numbers(url: str) -> None:
    with pytest.raises(RefusedAddressError, match=r"127\.0\.0\.1.*a loopback address"):
        check_url(url, OutboundPolicy(), resolver=no_resolver)


@pytest.mark.parametrize(
    "url",
    ["http://[::127.0.0.1]/", "http://[2002:a00:5::1]/", "http://[64:ff9b::a00:5]/"],
)
def test_refuses_ipv6_addresses_that_embed_a_private_ipv4_address(url: str) -> None:
    with pytest.raises(RefusedAddressError):
        check_url(url, OutboundPolicy(), resolver=no_resolver)


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/", "http://LOCALHOST./", "https://calendar.localhost/"]
)
def test_refuses_localhost_names_without_asking_dns(url: str) -> None:
    with pytest.raises(RefusedAddressError, match="the Convene server itself"):
        check_url(url, OutboundPolicy(), resolver=no_resolver)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://8.8.8.8/", "8.8.8.8"),
        ("http://134744072/", "8.8.8.8"),
        ("https://[2606:4700::1111]/", "2606:4700::1111"),
        ("https://[64:ff9b::808:808]/", "64:ff9b::808:808"),  # NAT64 of a public address
    ],
)
def test_accepts_public_addresses(url: str, address: str) -> None:
    target = check_url(url, OutboundPolicy(), resolver=no_resolver)

    assert target.address == ipaddress.ip_address(address)


def test_refuses_a_host_when_any_of_its_addresses_is_private() -> None:
    resolver = FakeResolver({"calendar.example.com": ["93.184.215.14", "10.0.0.5"]})

    with pytest.raises(RefusedAddressError) as refused:
        check_url("https://calendar.example.com/dav/", OutboundPolicy(), resolver=resolver)

    assert refused.value.message == (
        "calendar.example.com resolves to 10.0.0.5, a private network address. Convene only "
        "connects to public servers; ask your administrator to allow this server if it is "
        "self-hosted."
    )
    assert resolver.calls == ["calendar.example.com"]


def test_refuses_a_host_resolving_to_ipv4_mapped_loopback() -> None:
    resolver = FakeResolver({"sneaky.example.com": ["::ffff:127.0.0.1"]})

    with pytest.raises(RefusedAddressError, match=r"resolves to 127\.0\.0\.1, a loopback"):
        check_url("https://sneaky.example.com/", OutboundPolicy(), resolver=resolver)


def test_a_host_with_public_addresses_resolves_once_and_keeps_them_all() -> None:
    resolver = FakeResolver({"calendar.example.com": ["2606:4700::1111", "93.184.215.14"]})

    target = check_url(
        "https://Calendar.Example.com.:8443/dav/", OutboundPolicy(), resolver=resolver
    )

    assert resolver.calls == ["calendar.example.com"]
    assert target.hostname == "calendar.example.com"
    assert target.addresses == (
        ipaddress.ip_address("2606:4700::1111"),
        ipaddress.ip_address("93.184.215.14"),
    )
    assert target.address == ipaddress.ip_address("2606:4700::1111")
    assert target.host_header == "calendar.example.com:8443"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://calendar.example.com/",
        "file:///etc/passwd",
        "gopher://calendar.example.com/",
        "calendar.example.com",
        "//calendar.example.com/",
    ],
)
def test_refuses_schemes_other_than_http_and_https(url: str) -> None:
    with pytest.raises(RefusedAddressError, match="must start with https:// or http://"):
        check_url(url, OutboundPolicy(), resolver=no_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:hunter2@calendar.example.com/",
        "http://calendar.example.com@127.0.0.1/",
        "http://hunter2:x@calendar.example.com@127.0.0.1/",
        "http://calendar.example.com\\@127.0.0.1/",
    ],
)
def test_refuses_user_info_and_never_repeats_it(url: str) -> None:
    with pytest.raises(RefusedAddressError) as refused:
        check_url(url, OutboundPolicy(), resolver=no_resolver)

    assert "user name or password" in refused.value.message
    assert "hunter2" not in str(refused.value)


def test_refusal_never_repeats_the_path_or_query() -> None:
    with pytest.raises(RefusedAddressError) as refused:
        check_url("http://10.0.0.5/dav/?token=s3cret", OutboundPolicy(), resolver=no_resolver)

    assert "s3cret" not in str(refused.value)
    assert "/dav/" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["http://256.1.1.1/", "http://1.2.3.4.5/", "http://0x100000000/", "http://[1::2::3]/"]
)
def test_refuses_malformed_numeric_hosts(url: str) -> None:
    with pytest.raises(RefusedAddressError, match="is not a valid"):
        check_url(url, OutboundPolicy(), resolver=no_resolver)


def test_refuses_an_invalid_port() -> None:
    with pytest.raises(RefusedAddressError, match="invalid port"):
        check_url("https://calendar.example.com:99999/", OutboundPolicy(), resolver=no_resolver)


# ---------------------------------------------------------------------------------
# The allow-list.
# ---------------------------------------------------------------------------------


def test_an_allowed_network_lets_its_private_addresses_through() -> None:
    policy = OutboundPolicy(allowed_networks=[ipaddress.ip_network("10.1.0.0/16")])
    resolver = FakeResolver({"cal.corp.example": ["10.1.2.3"], "db.corp.example": ["10.2.0.1"]})

    assert check_url("http://cal.corp.example/", policy, resolver=resolver).address == (
        ipaddress.ip_address("10.1.2.3")
    )
    with pytest.raises(RefusedAddressError, match=r"10\.2\.0\.1, a private network address"):
        check_url("http://db.corp.example/", policy, resolver=resolver)


def test_an_allowed_host_lets_its_private_addresses_through_and_no_other_host() -> None:
    policy = OutboundPolicy(allowed_hosts={"Cal.Corp.Example."})
    resolver = FakeResolver({"cal.corp.example": ["10.1.2.3"], "other.corp.example": ["10.1.2.3"]})

    assert check_url("https://cal.corp.example/", policy, resolver=resolver).address == (
        ipaddress.ip_address("10.1.2.3")
    )
    with pytest.raises(RefusedAddressError):
        check_url("https://other.corp.example/", policy, resolver=resolver)


def test_an_allowed_localhost_name_is_resolved_and_accepted() -> None:
    policy = OutboundPolicy(allowed_hosts={"localhost"})
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})

    assert check_url("http://localhost:5232/", policy, resolver=resolver).address == LOOPBACK


def test_metadata_addresses_stay_refused_inside_allowed_networks_and_hosts() -> None:
    policy = OutboundPolicy(
        allowed_networks=[ipaddress.ip_network("169.254.0.0/16")],
        allowed_hosts={"metadata.google.internal"},
    )
    resolver = FakeResolver({"metadata.google.internal": ["169.254.169.254"]})

    assert check_url("http://169.254.1.1/", policy, resolver=no_resolver).address == (
        ipaddress.ip_address("169.254.1.1")
    )
    with pytest.raises(RefusedAddressError) as refused:
        check_url("http://metadata.google.internal/", policy, resolver=resolver)
    assert refused.value.message == (
        "metadata.google.internal resolves to 169.254.169.254, a cloud metadata address. "
        "Convene never connects to it."
    )


def test_policy_from_settings_reads_cidr_strings(settings: Settings) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.1.2.3/16", "fd00:1::/64"]

    assert outbound_policy_from_settings().allowed_networks == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("fd00:1::/64"),
    )


def test_policy_from_settings_without_the_setting_allows_nothing(
    settings: Settings,
) -> None:
    del settings.OUTBOUND_ALLOWED_NETWORKS

    assert outbound_policy_from_settings() == OutboundPolicy()


def test_system_resolver_returns_addresses() -> None:
    assert system_resolver("127.0.0.1", 80) == [LOOPBACK]


# ---------------------------------------------------------------------------------
# The transports: requests and niquests sessions.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_session_refuses_loopback_unless_allowed(
    make_session: SessionFactory, server: LocalServer
) -> None:
    with make_session(OutboundPolicy()) as session, pytest.raises(RefusedAddressError):
        session.get(f"http://127.0.0.1:{server.port}/")
    assert server.seen == []

    with make_session(ALLOW_LOOPBACK) as session:
        assert session.get(f"http://127.0.0.1:{server.port}/").status_code == 200
    assert [seen.path for seen in server.seen] == ["/"]


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_session_connects_to_the_checked_address_and_keeps_the_host_header(
    make_session: SessionFactory, server: LocalServer
) -> None:
    # calendar.test exists only in this fake DNS (.test is reserved, and this machine
    # has no DNS anyway): a second lookup anywhere below would fail the request.
    resolver = FakeResolver({"calendar.test": ["127.0.0.1"]})

    with make_session(ALLOW_LOOPBACK, resolver=resolver) as session:
        response = session.get(f"http://calendar.test:{server.port}/dav/")

    assert response.status_code == 200
    assert response.url == f"http://calendar.test:{server.port}/dav/"
    assert resolver.calls == ["calendar.test"]
    assert server.seen[0].headers["Host"] == f"calendar.test:{server.port}"


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_session_reaches_an_allowed_ipv6_loopback_server(make_session: SessionFactory) -> None:
    class IPv6Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = IPv6Server(("::1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    policy = OutboundPolicy(allowed_networks=[ipaddress.ip_network("::1/128")])
    try:
        with make_session(policy) as session:
            assert session.get(f"http://[::1]:{httpd.server_address[1]}/").status_code == 204
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
@pytest.mark.parametrize(
    "location", ["http://internal.test:{port}/secret", "http://127.0.0.1:{port}/secret"]
)
def test_redirect_from_an_allowed_host_to_a_refused_address_is_refused(
    make_session: SessionFactory, server: LocalServer, location: str
) -> None:
    # public.test is allowed by name; the redirect goes to a name that resolves to a
    # private address, or to the very same server by its (not allowed) IP address.
    resolver = FakeResolver({"public.test": ["127.0.0.1"], "internal.test": ["10.0.0.5"]})
    policy = OutboundPolicy(allowed_hosts={"public.test"})
    server.routes["/start"] = (302, {"Location": location.format(port=server.port)})

    with make_session(policy, resolver=resolver) as session, pytest.raises(RefusedAddressError):
        session.get(f"http://public.test:{server.port}/start")

    assert [seen.path for seen in server.seen] == ["/start"]


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_every_redirect_hop_is_resolved_and_checked_again(
    make_session: SessionFactory, server: LocalServer
) -> None:
    resolver = FakeResolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    server.routes["/one"] = (302, {"Location": f"http://b.test:{server.port}/two"})
    server.routes["/two"] = (302, {"Location": "/three"})

    with make_session(ALLOW_LOOPBACK, resolver=resolver) as session:
        response = session.get(f"http://a.test:{server.port}/one")

    assert response.status_code == 200
    assert resolver.calls == ["a.test", "b.test", "b.test"]
    assert [(seen.path, seen.headers["Host"]) for seen in server.seen] == [
        ("/one", f"a.test:{server.port}"),
        ("/two", f"b.test:{server.port}"),
        ("/three", f"b.test:{server.port}"),
    ]


@pytest.mark.parametrize(
    ("make_session", "too_many"),
    [
        (guarded_requests_session, requests.exceptions.TooManyRedirects),
        (guarded_niquests_session, niquests.exceptions.TooManyRedirects),
    ],
)
def test_redirects_are_capped(
    make_session: SessionFactory, too_many: type[Exception], server: LocalServer
) -> None:
    server.routes["/loop"] = (302, {"Location": "/loop"})

    with make_session(ALLOW_LOOPBACK, max_redirects=3) as session, pytest.raises(too_many):
        session.get(f"http://127.0.0.1:{server.port}/loop")

    assert len(server.seen) == 4  # the request and three redirects


@pytest.mark.parametrize(
    ("make_session", "timeout_error"),
    [
        (guarded_requests_session, requests.exceptions.ReadTimeout),
        (guarded_niquests_session, niquests.exceptions.ReadTimeout),
    ],
)
def test_a_request_without_a_timeout_gets_the_session_timeout(
    make_session: SessionFactory, timeout_error: type[Exception], silent_port: int
) -> None:
    started = time.monotonic()

    with make_session(ALLOW_LOOPBACK, timeout=(1.0, 0.3)) as session, pytest.raises(timeout_error):
        session.get(f"http://127.0.0.1:{silent_port}/")

    assert time.monotonic() - started < 5


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_the_default_timeouts_are_10s_to_connect_and_30s_to_read(
    make_session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed_to_urllib3: list[Any] = []

    class CapturingPool:
        def urlopen(self, **kwargs: Any) -> None:
            handed_to_urllib3.append(kwargs["timeout"])
            raise RuntimeError("captured")

    session = make_session(ALLOW_LOOPBACK)
    adapter = session.get_adapter("http://127.0.0.1/")
    monkeypatch.setattr(
        adapter.poolmanager, "connection_from_host", lambda *args, **kwargs: CapturingPool()
    )

    with pytest.raises(RuntimeError, match="captured"):
        session.get("http://127.0.0.1/")

    assert handed_to_urllib3[0].connect_timeout == 10.0
    assert handed_to_urllib3[0].read_timeout == 30.0


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_proxies_are_refused_and_proxy_variables_ignored(
    make_session: SessionFactory, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 on loopback: were the variable obeyed, the request would fail there.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    url = f"http://127.0.0.1:{server.port}/"

    with make_session(ALLOW_LOOPBACK) as session:
        assert session.get(url).status_code == 200
        with pytest.raises(RefusedAddressError, match="not by proxy"):
            session.get(url, proxies={"http": "http://127.0.0.1:9"})


@pytest.mark.parametrize(
    ("make_session", "connection_error"),
    [
        (guarded_requests_session, requests.exceptions.ConnectionError),
        (guarded_niquests_session, niquests.exceptions.ConnectionError),
    ],
)
def test_an_unknown_host_is_a_connection_error(
    make_session: SessionFactory, connection_error: type[Exception]
) -> None:
    session = make_session(OutboundPolicy(), resolver=FakeResolver({}))

    with session, pytest.raises(connection_error):
        session.get("https://nowhere.test/")


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_only_http_and_https_are_mounted(make_session: SessionFactory) -> None:
    with make_session(OutboundPolicy()) as session:
        assert set(session.adapters) == {"https://", "http://"}
        assert session.trust_env is False


# ---------------------------------------------------------------------------------
# TLS: the certificate is checked against the hostname, not the address.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_https_pool_connects_to_the_address_with_sni_on_the_hostname(
    make_session: SessionFactory,
) -> None:
    resolver = FakeResolver({"calendar.test": ["127.0.0.1"]})
    session = make_session(ALLOW_LOOPBACK, resolver=resolver)
    adapter = session.get_adapter("https://calendar.test/")

    if isinstance(session, requests.Session):
        request = session.prepare_request(requests.Request("GET", "https://calendar.test:8443/"))
        pool = adapter.get_connection_with_tls_context(request, verify=True)
    else:
        pool = adapter.get_connection("https://calendar.test:8443/")

    assert (pool.host, pool.port) == ("127.0.0.1", 8443)
    assert pool.conn_kw["server_hostname"] == "calendar.test"
    assert pool.assert_hostname is None  # so ssl's own hostname check stays on


@pytest.mark.parametrize("make_session", SESSION_FACTORIES)
def test_https_verifies_the_certificate_of_the_hostname_at_the_checked_address(
    make_session: SessionFactory, authority: CertificateAuthority, tmp_path: Path
) -> None:
    tls_server = LocalServer(tls=authority.server_context("calendar.test", tmp_path))
    resolver = FakeResolver({"calendar.test": ["127.0.0.1"]})
    try:
        with make_session(ALLOW_LOOPBACK, resolver=resolver) as session:
            response = session.get(
                f"https://calendar.test:{tls_server.port}/", verify=str(authority.path)
            )
    finally:
        tls_server.close()

    assert response.status_code == 200
    assert tls_server.sni == ["calendar.test"]
    assert tls_server.seen[0].headers["Host"] == f"calendar.test:{tls_server.port}"


@pytest.mark.parametrize(
    ("make_session", "ssl_error"),
    [
        (guarded_requests_session, requests.exceptions.SSLError),
        (guarded_niquests_session, niquests.exceptions.SSLError),
    ],
)
def test_https_refuses_a_certificate_for_another_name(
    make_session: SessionFactory,
    ssl_error: type[Exception],
    authority: CertificateAuthority,
    tmp_path: Path,
) -> None:
    tls_server = LocalServer(tls=authority.server_context("other.test", tmp_path))
    resolver = FakeResolver({"calendar.test": ["127.0.0.1"]})
    try:
        with make_session(ALLOW_LOOPBACK, resolver=resolver) as session, pytest.raises(ssl_error):
            session.get(f"https://calendar.test:{tls_server.port}/", verify=str(authority.path))
    finally:
        tls_server.close()

    assert tls_server.seen == []


# ---------------------------------------------------------------------------------
# caldav's DAVClient, end to end against a real Radicale.
# ---------------------------------------------------------------------------------


def test_davclient_refuses_a_local_radicale_unless_allowed(radicale_server: CalDAVServer) -> None:
    refused = guarded_davclient(
        radicale_server.url,
        policy=OutboundPolicy(),
        username=radicale_server.username,
        password=radicale_server.password,
    )
    with refused, pytest.raises(RefusedAddressError, match=r"127\.0\.0\.1 is a loopback address"):
        refused.get_principal()

    allowed = guarded_davclient(
        radicale_server.url,
        policy=ALLOW_LOOPBACK,
        username=radicale_server.username,
        password=radicale_server.password,
    )
    with allowed:
        principal = allowed.get_principal()
        cal_id = f"guarded-{uuid.uuid4().hex[:12]}"
        calendar = principal.make_calendar(name="Guarded", cal_id=cal_id)
        try:
            assert any(str(c.url).endswith(f"/{cal_id}/") for c in principal.get_calendars())
        finally:
            calendar.delete()


def test_davclient_connects_to_the_checked_address_of_a_made_up_hostname(
    radicale_server: CalDAVServer,
) -> None:
    port = radicale_server.url.rsplit(":", 1)[1].strip("/")
    resolver = FakeResolver({"radicale.test": ["127.0.0.1"]})
    client = guarded_davclient(
        f"http://radicale.test:{port}/",
        policy=ALLOW_LOOPBACK,
        resolver=resolver,
        username=radicale_server.username,
        password=radicale_server.password,
    )
    with client:
        principal = client.get_principal()

    assert str(principal.url) == f"http://radicale.test:{port}/{radicale_server.username}/"
    assert set(resolver.calls) == {"radicale.test"}


def test_davclient_requests_use_the_guarded_session_timeouts(silent_port: int) -> None:
    client = guarded_davclient(
        f"http://127.0.0.1:{silent_port}/", policy=ALLOW_LOOPBACK, timeout=(1.0, 0.3)
    )
    started = time.monotonic()

    with client, pytest.raises(niquests.exceptions.ReadTimeout):
        client.get_principal()

    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "url", ["calendar.example.com", "alice@example.com", "https://alice:pw@calendar.example.com/"]
)
def test_guarded_davclient_refuses_bare_domains_and_credentials_in_the_url(url: str) -> None:
    # A bare domain or address would make caldav run RFC 6764 discovery, unguarded.
    with pytest.raises(RefusedAddressError):
        guarded_davclient(url, policy=OutboundPolicy())
