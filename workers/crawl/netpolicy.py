"""Where a fetch may connect, and how long it may take: checked before and after connecting.

Public addresses are allowed; private ones only when a source or the ad-hoc
crawl names their network; link-local and cloud metadata addresses never, so
no page can bounce the crawler onto the credentials of the machine it runs on.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3

from workers.clients import per_thread
from workers.crawl.deadlines import Deadline, deadlines
from workers.crawl.errors import PermanentFetchError, RetryableFetchError
from workers.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Refused whatever a source or a flag allows: the reason says which kind of address it was.
NEVER = tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in (
    ("169.254.0.0/16", "link_local_address"),  # includes 169.254.169.254, the usual metadata service
    ("fe80::/10", "link_local_address"),
    ("fd00:ec2::254/128", "metadata_address"),  # AWS (IPv6)
    ("fd20:ce::254/128", "metadata_address"),  # Google Cloud (IPv6)
    ("100.100.100.200/32", "metadata_address"),  # Alibaba Cloud
    ("168.63.129.16/32", "metadata_address"),  # Azure WireServer
    ("192.0.0.192/32", "metadata_address"),  # Oracle Cloud
))
# What `ipaddress` calls global but is not the public internet: NAT64 prefixes (RFC 6052,
# RFC 8215) translate to IPv4 addresses behind the gateway, private ones included; and
# 192.0.0.0/24 (IETF protocol assignments, RFC 6890), which Python 3.11.7's `ipaddress` calls
# global but for two /29 and /31 slices (checked against 3.11.7; 3.13 corrects it).
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NOT_PUBLIC = (NAT64, ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("192.0.0.0/24"))
# What `--allow-private-networks` (deprecated) and a source's `allow_private_networks: true`
# open: loopback, RFC 1918 and unique-local IPv6. Never link-local or metadata (NEVER wins).
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(cidr) for cidr in (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
))


def parse_ip(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address.split("%")[0])
    # ::ffff:a.b.c.d reaches a.b.c.d: judge it as that address.
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through a translator or a tunnel (NAT64, 6to4's
    2002::/16, Teredo's client), or None: `2002:a9fe:a9fe::` is 169.254.169.254 to a 6to4 relay."""
    if ip.version == 4:
        return None
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour or (ip.teredo[1] if ip.teredo else None)


def never_reason(ip: IPAddress) -> str | None:
    """The refusal reason for an address no policy may open, or None. An address that embeds an
    IPv4 address is judged as that address too."""
    for address in (ip, embedded_ipv4(ip)):
        if address is not None and (reason := next(
                (r for network, r in NEVER if address.version == network.version and address in network), None)):
            return reason
    return None


def parse_network(text: str) -> IPNetwork:
    """A CIDR that a crawl may open; ValueError (with the reason) for one it never may."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"invalid CIDR {text!r}: {exc}") from exc
    for never, reason in NEVER:
        if network.version == never.version and network.subnet_of(never):
            kind = "link-local" if reason == "link_local_address" else "cloud metadata"
            raise ValueError(f"{text} is a {kind} network, which is never fetched")
    return network


@dataclass(frozen=True)
class NetworkPolicy:
    """Which hosts a fetch may ask for, and which non-public networks it may reach.

    Checked before connecting, on the first request and on every redirect hop,
    so a public page cannot bounce the crawler into a private network.
    """

    allowed_hosts: frozenset[str] | None = None  # None: any host
    networks: tuple[IPNetwork, ...] = field(default=())  # non-public networks opened

    def refusal(self, ip: IPAddress) -> str | None:
        """Why this address may not be reached (a failure reason), or None if it may."""
        if reason := never_reason(ip):
            return reason
        if (inner := embedded_ipv4(ip)) is not None and (reason := self.refusal(inner)):
            return reason  # a tunnel or translator to a private address is as private as the address
        if ip.is_global and not any(ip in n for n in NOT_PUBLIC if n.version == ip.version):
            return None
        if any(ip in n for n in self.networks if n.version == ip.version):
            return None
        return "private_address"

    def check(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            raise PermanentFetchError("host_not_allowed", f"{url}: host {host} is not an allowed host")
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise RetryableFetchError("dns_error", f"{url}: cannot resolve {host}: {exc}") from exc
        for info in infos:
            ip = parse_ip(info[4][0])
            if reason := self.refusal(ip):
                raise PermanentFetchError(reason, f"{url}: {host} resolves to {describe(reason)} {ip}")


def describe(reason: str) -> str:
    return {"link_local_address": "link-local address", "metadata_address": "cloud metadata address"}.get(
        reason, "non-public address")


def networks_policy(cidrs: Iterable[str]) -> NetworkPolicy:
    """Any host, public addresses and these non-public networks (CIDRs, checked by parse_network)."""
    return NetworkPolicy(networks=tuple(parse_network(c) for c in cidrs))


# --- enforcement on the socket ------------------------------------------------------


class Guard:
    """One request under a policy and a deadline.

    The check above resolves the name once; the connection resolves it again, and
    a DNS answer that changed in between (rebinding) must not reach a private
    address: every socket is vetted once connected, before TLS or a request goes
    over it, and again whenever it is reused. At the deadline the connection is
    shut down, so a server dripping bytes cannot hold the fetch past it.
    """

    def __init__(self, policy: NetworkPolicy, deadline: float):
        self.policy = policy
        self.refused: tuple[str, IPAddress] | None = None  # (reason, address)
        self.expired = False
        self._connections: list[urllib3.connection.HTTPConnection] = []
        self._lock = threading.Lock()
        self.deadline = deadline
        self._pending: Deadline | None = None

    def extend(self, seconds: float) -> None:
        """Move the deadline `seconds` later: a large PDF is given longer than a page."""
        with self._lock:
            if self.expired:
                return
            self._stop_clock()
            self.deadline += seconds
            self.start()

    def vet(self, connection: urllib3.connection.HTTPConnection, sock: socket.socket) -> None:
        ip = parse_ip(sock.getpeername()[0])
        if reason := self.policy.refusal(ip):
            sock.close()
            self.refused = (reason, ip)
            raise PeerRefused(f"connected to {describe(reason)} {ip}")
        with self._lock:
            if self.expired:
                raise TimeoutError("fetch deadline passed")
            self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                if (sock := connection.sock) is not None:
                    try:
                        # The plain socket's shutdown, not SSLSocket's, which would drop its TLS state
                        # under the reading thread: the reader sees end of stream and stops.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed

    def start(self) -> None:
        self._pending = deadlines.call_at(self.deadline, self._expire)

    def _stop_clock(self) -> None:
        if self._pending is not None:
            self._pending.cancel()

    def stop(self) -> None:
        self._stop_clock()
        with self._lock:
            self._connections.clear()


_guard: ContextVar[Guard | None] = ContextVar("guard", default=None)


@contextmanager
def guarded(policy: NetworkPolicy, deadline: float) -> Iterator[Guard]:
    """Every connection made or reused in this block obeys `policy` and ends by `deadline`."""
    guard = Guard(policy, deadline)
    token = _guard.set(guard)
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()
        _guard.reset(token)


class PeerRefused(OSError):
    pass


class _VettedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        if (guard := _guard.get()) is not None:
            guard.vet(self, sock)
        return sock

    def request(self, *args, **kwargs):
        # A kept-alive connection, possibly made under another policy.
        if self.sock is not None and (guard := _guard.get()) is not None:
            guard.vet(self, self.sock)
        return super().request(*args, **kwargs)


class _VettedHTTPSConnection(urllib3.connection.HTTPSConnection):
    _new_conn = _VettedHTTPConnection._new_conn
    request = _VettedHTTPConnection.request


class _VettedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _VettedHTTPConnection


class _VettedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _VettedHTTPSConnection


class VettedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose direct connections obey the guard of the fetch using them."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _VettedHTTPPool, "https": _VettedHTTPSPool}


def vetted_session() -> requests.Session:
    session = requests.Session()
    # No proxy from the environment (HTTP_PROXY, ...): through a proxy the socket's peer is the
    # proxy and the proxy resolves names, so none of the checks above would mean anything.
    session.trust_env = False
    adapter = VettedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@per_thread
def get_http() -> requests.Session:
    """This thread's Session, for fetching and for webhooks: every hop checked by the policy."""
    session = vetted_session()
    session.headers["User-Agent"] = get_settings().user_agent
    return session
