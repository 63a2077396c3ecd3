"""The one guarded way out: every request to a server address someone typed into
Convene (a CalDAV server, an Exchange server) goes through this module.

A URL typed into a form is an instruction to make *this* server connect somewhere.
Unguarded, `http://169.254.169.254/latest/meta-data/` reads the cloud's credentials
and `http://10.0.0.5/` probes the private network (server-side request forgery).
So here:

- only http and https, and no user name or password inside the URL;
- the host is resolved once, every address it resolves to is checked, and the
  connection goes to the checked address: a DNS answer that changes between check
  and connect (DNS rebinding) never reaches a socket. TLS SNI, certificate
  verification and the Host header stay on the hostname;
- every redirect hop is checked the same way, and redirects are capped;
- connect and read timeouts are always set;
- an administrator may allow private networks or hosts for self-hosted servers
  (`OutboundPolicy`); cloud metadata addresses stay refused regardless.

The check lives in a transport adapter, the one place both `requests` (Google,
Microsoft, exchangelib) and `niquests` (the requests fork caldav uses) hand a
request to urllib3: see `guarded_requests_session`, `guarded_niquests_session`
and `guarded_davclient`.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import niquests
import niquests.adapters
import requests
import requests.adapters
from caldav.davclient import DAVClient
from django.conf import settings

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
# Hostname and port in, addresses out. Tests pass a fake instead of patching socket.
Resolver: TypeAlias = Callable[[str, int], Sequence[IPAddress]]
Timeout: TypeAlias = tuple[float, float]  # (connect, read) seconds

DEFAULT_TIMEOUT: Timeout = (10.0, 30.0)
DEFAULT_MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddressError(ValueError):
    """Convene will not connect to this URL. `message` says why, written for the
    person who typed it; it names the host and address, never the URL, whose path or
    query may carry secrets."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------------
# Which addresses are refused, and why.
# ---------------------------------------------------------------------------------

_ip = ipaddress.ip_address
_net = ipaddress.ip_network

# Cloud metadata and credential services: whoever reaches them gets the machine's
# cloud credentials, so they stay refused even inside an allowed network.
# AWS: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
# (also ECS 169.254.170.2, EKS Pod Identity 169.254.170.23 / fd00:ec2::23);
# Google Cloud fd20:ce::254; Alibaba 100.100.100.200; Tencent 169.254.0.23; Oracle
# 192.0.0.192; Azure WireServer, a public address:
# https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16
_METADATA_ADDRESSES = frozenset(
    _ip(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "169.254.0.23",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "fd20:ce::254",
    )
)

_LOOPBACK = "a loopback address (the Convene server itself)"
_PRIVATE = "a private network address"
_LINK_LOCAL = "a link-local address"
_MULTICAST = "a multicast address"
_RESERVED = "a reserved address that is not on the public internet"

# Written out from the IANA special-purpose registries rather than taken from
# `ipaddress.is_global`, whose answers changed between Python patch releases and
# which calls 192.0.0.8, 224.0.0.1 and fec0::1 global on this one.
# https://www.iana.org/assignments/iana-ipv4-special-registry/
# https://www.iana.org/assignments/iana-ipv6-special-registry/
_REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (_net(network), reason)
    for network, reason in (
        ("0.0.0.0/8", _RESERVED),
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", _PRIVATE),  # carrier-grade NAT, shared address space
        ("127.0.0.0/8", _LOOPBACK),
        ("169.254.0.0/16", _LINK_LOCAL),
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", _RESERVED),
        ("192.0.2.0/24", _RESERVED),
        ("192.88.99.0/24", _RESERVED),
        ("192.168.0.0/16", _PRIVATE),
        ("198.18.0.0/15", _RESERVED),
        ("198.51.100.0/24", _RESERVED),
        ("203.0.113.0/24", _RESERVED),
        ("224.0.0.0/4", _MULTICAST),
        ("240.0.0.0/4", _RESERVED),  # includes the broadcast address
        ("::1/128", _LOOPBACK),
        ("64:ff9b:1::/48", _PRIVATE),  # local-use NAT64
        ("100::/64", _RESERVED),
        ("2001::/23", _RESERVED),  # includes Teredo
        ("2001:db8::/32", _RESERVED),
        ("3fff::/20", _RESERVED),
        ("5f00::/16", _RESERVED),
        ("fc00::/7", _PRIVATE),
        ("fe80::/10", _LINK_LOCAL),
        ("fec0::/10", _PRIVATE),
        ("ff00::/8", _MULTICAST),
    )
)
_NAT64 = _net("64:ff9b::/96")  # translates to the IPv4 address in its last 32 bits
_GLOBAL_UNICAST = _net("2000::/3")  # IANA allocates public IPv6 only from here


def _refusal(address: IPAddress) -> tuple[str, bool] | None:
    """Why `address` is refused and whether an administrator may allow it, or None
    for a public address. IPv4-mapped IPv6 addresses arrive already unwrapped."""
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address", False
    if address.is_unspecified:
        return "an unspecified address", False
    for network, reason in _REFUSED_NETWORKS:
        if address in network:
            return reason, True
    if isinstance(address, ipaddress.IPv6Address):
        # 6to4 and NAT64 addresses lead to the IPv4 address they embed.
        embedded = address.sixtofour or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            inner = _refusal(embedded)
            return None if inner is None else (f"an IPv6 form of {embedded}, {inner[0]}", inner[1])
        if address not in _GLOBAL_UNICAST:
            return _RESERVED, True
    return None


# ---------------------------------------------------------------------------------
# The policy: what an administrator allowed.
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class OutboundPolicy:
    """Private addresses an administrator allowed, for self-hosted servers.

    An address inside `allowed_networks`, or any address of a host named in
    `allowed_hosts`, is not refused for being private, loopback, link-local or
    reserved. Cloud metadata and unspecified addresses are refused all the same.
    Prefer networks: allowing a host by name trusts whatever its DNS answers.
    """

    allowed_networks: tuple[IPNetwork, ...]
    allowed_hosts: frozenset[str]

    def __init__(
        self, allowed_networks: Iterable[IPNetwork] = (), allowed_hosts: Iterable[str] = ()
    ) -> None:
        object.__setattr__(self, "allowed_networks", tuple(allowed_networks))
        object.__setattr__(
            self, "allowed_hosts", frozenset(host.lower().rstrip(".") for host in allowed_hosts)
        )

    def allows(self, hostname: str, address: IPAddress) -> bool:
        return hostname in self.allowed_hosts or any(
            address in network for network in self.allowed_networks
        )


def outbound_policy_from_settings() -> OutboundPolicy:
    """The policy from `settings.OUTBOUND_ALLOWED_NETWORKS` (CIDR strings; host bits
    are dropped, so 10.1.2.3/16 means 10.1.0.0/16)."""
    networks = getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", [])
    return OutboundPolicy(
        allowed_networks=[ipaddress.ip_network(cidr, strict=False) for cidr in networks]
    )


# ---------------------------------------------------------------------------------
# Checking a URL.
# ---------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The operating system's answer (DNS, /etc/hosts), in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@dataclass(frozen=True)
class CheckedTarget:
    """Where a request may go: `address` is the one to connect to, and every address
    the host resolved to (`addresses`) passed the check."""

    scheme: str
    hostname: str  # lower case, no trailing dot: for SNI, certificates, allow-lists
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def address(self) -> IPAddress:
        return self.addresses[0]

    @property
    def host_header(self) -> str:
        return _host_header(self.scheme, self.hostname, self.port)


_ALLOWABLE_HINT = (
    "Convene only connects to public servers; ask your administrator to allow this "
    "server if it is self-hosted."
)


def check_url(
    url: str, policy: OutboundPolicy, *, resolver: Resolver = system_resolver
) -> CheckedTarget:
    """Resolve the URL's host once and check every address it resolves to.

    Raises RefusedAddressError when the URL or any of its addresses is refused, and
    OSError (socket.gaierror) when the host cannot be resolved.
    """
    scheme, hostname, port = _split_url(url)
    literal = _ip_literal(hostname)
    if literal is not None:
        addresses: Sequence[IPAddress] = [literal]
    elif _is_localhost_name(hostname) and hostname not in policy.allowed_hosts:
        raise RefusedAddressError(
            f"{hostname} is a name for the Convene server itself. {_ALLOWABLE_HINT}"
        )
    else:
        addresses = resolver(hostname, port)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{hostname} has no addresses")
    # A dual-stack socket sends ::ffff:a.b.c.d to a.b.c.d: check and use that.
    unwrapped = tuple(
        (a.ipv4_mapped or a) if isinstance(a, ipaddress.IPv6Address) else a for a in addresses
    )
    for address in unwrapped:
        refusal = _refusal(address)
        if refusal is None:
            continue
        reason, allowable = refusal
        if allowable and policy.allows(hostname, address):
            continue
        subject = f"{address} is" if literal else f"{hostname} resolves to {address},"
        advice = _ALLOWABLE_HINT if allowable else "Convene never connects to it."
        raise RefusedAddressError(f"{subject} {reason}. {advice}")
    return CheckedTarget(scheme=scheme, hostname=hostname, port=port, addresses=unwrapped)


def _split_url(url: str) -> tuple[str, str, int]:
    """(scheme, hostname, port) of an http(s) URL, or RefusedAddressError."""
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. brackets around something that is not IPv6
        raise RefusedAddressError("The server address is not a valid URL.") from error
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise RefusedAddressError("A server address must start with https:// or http://.")
    # Parsers disagree on who the host is in `http://a@b@c/` or `http://a\@b/`
    # (browsers read a backslash as a slash): refuse instead of guessing.
    if "@" in parts.netloc or "\\" in parts.netloc:
        raise RefusedAddressError(
            "A server address must not contain a user name or password; "
            "enter those in their own fields."
        )
    hostname = (parts.hostname or "").rstrip(".")
    if not hostname:
        raise RefusedAddressError("The server address has no host name.")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as error:
        raise RefusedAddressError("The server address has an invalid port number.") from error
    return scheme, hostname, port


# One part of a numeric IPv4 host: hex, octal (leading zero) or decimal.
_INET_PART = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")


def _ip_literal(hostname: str) -> IPAddress | None:
    """The address `hostname` spells, or None for a name to resolve.

    IPv4 is read the way inet_aton(3) and browsers read it (the WHATWG URL
    standard's IPv4 parser): `2130706433`, `0x7f.1` and `017700000001` are all
    127.0.0.1, and that is the address the check must see.
    """
    if ":" in hostname:
        try:
            return ipaddress.IPv6Address(hostname)
        except ValueError as error:
            raise RefusedAddressError(f"{hostname} is not a valid IPv6 address.") from error
    parts = hostname.split(".")
    if not all(_INET_PART.fullmatch(part) for part in parts):
        return None
    numbers = [_inet_number(part) for part in parts]
    last = numbers[-1]
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]) or last >= 256 ** (5 - len(numbers)):
        raise RefusedAddressError(f"{hostname} is not a valid IPv4 address.")
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def _inet_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


def _host_header(scheme: str, hostname: str, port: int) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"


def _is_localhost_name(hostname: str) -> bool:
    # RFC 6761 section 6.3: localhost and everything under it is this machine.
    return hostname == "localhost" or hostname.endswith(".localhost")


# ---------------------------------------------------------------------------------
# The transports.
# ---------------------------------------------------------------------------------


class _GuardedAdapterMixin:
    """The guard inside a requests or niquests HTTPAdapter.

    Both libraries' `HTTPAdapter.send()` first ask one method for a urllib3
    connection pool, then call `add_headers()`, then send through the pool. The
    guard answers the first: it checks the URL and returns a pool keyed on the
    checked *address*, so urllib3 connects there without resolving anything, while
    `server_hostname` keeps SNI and certificate verification on the hostname.
    Sessions call `send()` again for every redirect hop (and niquests' lazy
    responses follow redirects through `self.send()`), so every hop is checked.
    """

    poolmanager: Any
    _connection_error: type[Exception]

    def __init__(
        self, *, policy: OutboundPolicy, resolver: Resolver, timeout: Timeout, **kwargs: Any
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.default_timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # Bound against the library's own signature: requests' and niquests' send()
        # differ, and either may be given `timeout` by position or by keyword.
        send = super().send  # type: ignore[misc]
        bound = inspect.signature(send).bind(request, *args, **kwargs)
        if bound.arguments.get("timeout") is None:
            bound.arguments["timeout"] = self.default_timeout
        return send(*bound.args, **bound.kwargs)

    def add_headers(self, request: Any, **kwargs: Any) -> None:
        # The pool's host is an IP address, which urllib3 would otherwise send as Host.
        request.headers["Host"] = _host_header(*_split_url(request.url))

    def _check(self, url: str, proxies: Any) -> CheckedTarget:
        if proxies and any(proxies.values()):
            # Through a proxy the proxy resolves the host, and the check means nothing.
            raise RefusedAddressError("Convene connects to this server directly, not by proxy.")
        try:
            return check_url(url, self.policy, resolver=self.resolver)
        except OSError as error:
            raise self._connection_error(error) from error

    def _pool(self, target: CheckedTarget, pool_kwargs: dict[str, Any]) -> Any:
        if target.scheme == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": target.hostname}
        return self.poolmanager.connection_from_host(
            str(target.address), target.port, target.scheme, pool_kwargs=pool_kwargs
        )


class GuardedRequestsAdapter(_GuardedAdapterMixin, requests.adapters.HTTPAdapter):
    _connection_error = requests.exceptions.ConnectionError

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        proxies: dict[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        target = self._check(str(request.url), proxies)
        _host, tls_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        return self._pool(target, tls_kwargs)


class GuardedNiquestsAdapter(_GuardedAdapterMixin, niquests.adapters.HTTPAdapter):
    _connection_error = niquests.exceptions.ConnectionError

    def get_connection(self, url: str, proxies: Any = None) -> Any:
        # niquests sets the TLS options on the pool afterwards, in cert_verify().
        return self._pool(self._check(url, proxies), {})


def guarded_requests_session(
    policy: OutboundPolicy,
    *,
    timeout: Timeout = DEFAULT_TIMEOUT,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolver: Resolver = system_resolver,
) -> requests.Session:
    """A requests Session that reaches only what `policy` allows.

    Any request or redirect hop to a refused address raises RefusedAddressError; a
    host that does not resolve raises requests.ConnectionError.
    """
    session = requests.Session()
    _lock_down(session, max_redirects)
    adapter = GuardedRequestsAdapter(policy=policy, resolver=resolver, timeout=timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def guarded_niquests_session(
    policy: OutboundPolicy,
    *,
    timeout: Timeout = DEFAULT_TIMEOUT,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    resolver: Resolver = system_resolver,
) -> niquests.Session:
    """A niquests Session that reaches only what `policy` allows; as
    `guarded_requests_session`, with niquests' ConnectionError.

    HTTP/3 is off: niquests would move to QUIC on a port taken from the server's
    Alt-Svc header. Certificate revocation checks are off: niquests fetches OCSP
    and CRL URLs named in the server's certificate through a fresh, unguarded
    Session (see `on_post_connection` in niquests/sessions.py).
    """
    session = niquests.Session(timeout=timeout, disable_http3=True, revocation_configuration=None)
    _lock_down(session, max_redirects)
    adapter = GuardedNiquestsAdapter(
        policy=policy,
        resolver=resolver,
        timeout=timeout,
        disable_http3=True,
        revocation_configuration=None,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _lock_down(session: requests.Session | niquests.Session, max_redirects: int) -> None:
    # Passwords in .netrc and *_PROXY variables are the operator's, not for servers
    # that users type in: a .netrc entry would hand its password to whoever answers.
    session.trust_env = False
    session.max_redirects = max_redirects
    # Only the guarded adapters stay: niquests also mounts http+unix:// by default.
    session.adapters.clear()


def guarded_davclient(
    url: str,
    *,
    policy: OutboundPolicy,
    timeout: Timeout = DEFAULT_TIMEOUT,
    resolver: Resolver = system_resolver,
    **davclient_kwargs: Any,
) -> DAVClient:
    """A caldav DAVClient whose every request goes through the guard.

    `url` must be a full http(s) URL. RFC 6764 discovery stays off: caldav runs it
    inside `DAVClient.__init__` with a bare `niquests.get()` (caldav/base_client.py
    `_auto_url`, caldav/discovery.py), before this session is in place. Leave
    `timeout` out of `davclient_kwargs`: caldav would send its single number as
    both the connect and the read timeout of every request.
    """
    _split_url(url)  # refuse non-http(s) and user:password@ before caldav sees them
    client = DAVClient(url=url, enable_rfc6764=False, **davclient_kwargs)
    client.session.close()
    client.session = guarded_niquests_session(policy, timeout=timeout, resolver=resolver)
    return client
