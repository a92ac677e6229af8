"""Fetching one page: timeouts, a size cap, redirects checked hop by hop, HTML only.

Errors say whether trying again could help: `RetryableFetchError` (connection
trouble, timeouts, 5xx, 429) or `PermanentFetchError` (4xx, not HTML, too
large, redirect loops). The caller decides how often to retry.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from workers.urls import InvalidURL, normalize_url

HTML_TYPES = ("text/html", "application/xhtml+xml")


class FetchError(Exception):
    """A page could not be fetched. `reason` is a short code, the message the detail."""

    def __init__(self, reason: str, detail: str, status: int | None = None):
        super().__init__(detail)
        self.reason = reason
        self.status = status

    def __reduce__(self):
        # Exceptions cross from pool processes to the worker pickled; rebuild with every field.
        return (self.__class__, (self.reason, str(self), self.status))


class PermanentFetchError(FetchError):
    pass


class RetryableFetchError(FetchError):
    def __init__(self, reason: str, detail: str, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(reason, detail, status)
        self.retry_after = retry_after

    def __reduce__(self):
        return (self.__class__, (self.reason, str(self), self.status, self.retry_after))


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _never(_ip: IPAddress) -> bool:
    return False


@dataclass(frozen=True)
class NetworkPolicy:
    """Where a fetch may go: which hosts, and whether private addresses are allowed.

    Checked before connecting, on the first request and on every redirect hop,
    so a public page cannot bounce the crawler into a private network.
    """

    allowed_hosts: frozenset[str] | None = None  # None: any host
    private_allowed: Callable[[IPAddress], bool] = field(default=_never)

    def allows_ip(self, ip: IPAddress) -> bool:
        return ip.is_global or self.private_allowed(ip)

    def check(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            raise PermanentFetchError("host_not_allowed", f"{url}: host {host} is not an allowed host")
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise RetryableFetchError("dns_error", f"{url}: cannot resolve {host}: {exc}") from exc
        for info in infos:
            ip = _ip(info[4][0])
            if not self.allows_ip(ip):
                raise PermanentFetchError(
                    "private_address", f"{url}: {host} resolves to non-public address {ip}"
                )


def _ip(address: str) -> IPAddress:
    return ipaddress.ip_address(address.split("%")[0])


# The policy of the fetch running in this thread, and the address it refused, if any. The
# check above resolves the name once; the connection resolves it again, and a DNS answer that
# changed in between (rebinding) must not reach a private address: every socket is vetted
# once connected, before TLS or a request goes over it, and again whenever it is reused.
_active_policy: ContextVar[NetworkPolicy | None] = ContextVar("active_policy", default=None)
_refused: ContextVar[str | None] = ContextVar("refused", default=None)


class PeerRefused(OSError):
    pass


def _vet(sock: socket.socket) -> socket.socket:
    policy = _active_policy.get()
    if policy is not None:
        ip = _ip(sock.getpeername()[0])
        if not policy.allows_ip(ip):
            sock.close()
            _refused.set(str(ip))
            raise PeerRefused(f"connected to non-public address {ip}")
    return sock


class _VettedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _vet(super()._new_conn())

    def request(self, *args, **kwargs):
        if self.sock is not None:  # a kept-alive connection, possibly made under another policy
            _vet(self.sock)
        return super().request(*args, **kwargs)


class _VettedHTTPSConnection(urllib3.connection.HTTPSConnection):
    _new_conn = _VettedHTTPConnection._new_conn
    request = _VettedHTTPConnection.request


class _VettedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _VettedHTTPConnection


class _VettedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _VettedHTTPSConnection


class VettedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose direct connections obey the policy of the fetch using them."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _VettedHTTPPool, "https": _VettedHTTPSPool}


def vetted_session() -> requests.Session:
    session = requests.Session()
    adapter = VettedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


OPEN_POLICY = NetworkPolicy(private_allowed=lambda _ip: True)


@dataclass
class Page:
    url: str
    final_url: str
    status: int
    content_type: str | None
    etag: str | None
    last_modified: str | None
    body: bytes
    fetched_at: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_html(content_type: str | None, body_start: bytes) -> bool:
    if content_type:
        return content_type.split(";")[0].strip().lower() in HTML_TYPES
    # No header at all: trust the bytes only if they look like markup.
    return body_start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _read_body(response: requests.Response, max_bytes: int, deadline: float, url: str) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PermanentFetchError("too_large", f"{url}: Content-Length {declared} exceeds {max_bytes} bytes")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise PermanentFetchError("too_large", f"{url}: body exceeds {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise RetryableFetchError("timeout", f"{url}: body still arriving after the read deadline")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(
    session: requests.Session, url: str, *, connect_timeout: float, read_timeout: float,
    max_bytes: int, max_redirects: int, html_only: bool = True, policy: NetworkPolicy,
    etag: str | None = None, last_modified: str | None = None,
) -> Page:
    """GET `url`, following at most `max_redirects` redirects, and return the page.

    With `html_only` (pages to parse) anything but HTML is refused; sitemaps pass
    False. With `etag` / `last_modified` the request is conditional, and an
    unchanged page comes back as status 304 with an empty body.
    """
    requested = current = normalize_url(url)
    seen = {current}
    conditional = {k: v for k, v in (("If-None-Match", etag), ("If-Modified-Since", last_modified)) if v}
    for _hop in range(max_redirects + 1):
        policy.check(current)
        deadline = time.monotonic() + connect_timeout + read_timeout
        policy_token, refused_token = _active_policy.set(policy), _refused.set(None)
        try:
            response = session.get(
                current, timeout=(connect_timeout, read_timeout), stream=True, allow_redirects=False,
                headers=conditional if current == requested else None,
            )
        except requests.Timeout as exc:
            raise RetryableFetchError("timeout", f"{current}: {exc.__class__.__name__}") from exc
        except requests.ConnectionError as exc:
            if (address := _refused.get()) is not None:
                raise PermanentFetchError(
                    "private_address", f"{current}: connection went to non-public address {address}"
                ) from exc
            raise RetryableFetchError("connection_error", f"{current}: {exc}") from exc
        finally:
            _active_policy.reset(policy_token)
            _refused.reset(refused_token)
        with response:
            status = response.status_code
            if response.is_redirect:
                try:
                    target = normalize_url(urljoin(current, response.headers["Location"]))
                except InvalidURL as exc:
                    raise PermanentFetchError("bad_redirect", str(exc), status) from exc
                if target in seen:
                    raise PermanentFetchError("redirect_loop", f"{current} redirects back to {target}", status)
                seen.add(target)
                current = target
                continue
            if status == 304 and conditional:
                return Page(
                    url=requested, final_url=current, status=304, content_type=None, etag=etag,
                    last_modified=last_modified, body=b"", fetched_at=_now_iso(),
                )
            if status == 429 or status >= 500:
                raise RetryableFetchError(
                    f"http_{status}", f"{current}: HTTP {status}", status,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            if status >= 400:
                raise PermanentFetchError(f"http_{status}", f"{current}: HTTP {status}", status)
            content_type = response.headers.get("Content-Type")
            # A declared non-HTML type is refused before its body is downloaded.
            if html_only and content_type and not is_html(content_type, b""):
                raise PermanentFetchError("not_html", f"{current}: Content-Type {content_type}", status)
            try:
                body = _read_body(response, max_bytes, deadline, current)
            except requests.RequestException as exc:
                raise RetryableFetchError("timeout", f"{current}: {exc.__class__.__name__} while reading") from exc
            if html_only and not is_html(content_type, body[:512]):
                raise PermanentFetchError("not_html", f"{current}: no Content-Type and not markup", status)
            return Page(
                url=requested, final_url=current, status=status, content_type=content_type,
                etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified"),
                body=body, fetched_at=_now_iso(),
            )
    raise PermanentFetchError("too_many_redirects", f"{requested}: more than {max_redirects} redirects")
