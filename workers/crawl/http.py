"""Fetching one page: a deadline, a size cap, redirects checked hop by hop, HTML only.

Every way a fetch can fail is a `FetchError` (workers/crawl/errors.py) with a
specific reason: the network policy's, the HTTP status, or what went wrong on
the wire (`timeout`, `connection_reset`, `incomplete_body`, ...).
"""

from __future__ import annotations

import hashlib
import http.client
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import requests
import urllib3

from workers.crawl.errors import FetchError, PermanentFetchError, RetryableFetchError
from workers.crawl.netpolicy import PRIVATE_NETWORKS, Guard, NetworkPolicy, describe, guarded
from workers.parse.decode import media_type
from workers.urls import InvalidURL, PageURL, UnsupportedScheme

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
# Servers send PDFs as generic bytes too: accepted when the body starts like a PDF.
GENERIC_TYPES = ("application/octet-stream", "binary/octet-stream")
PDF_SIGNATURE = b"%PDF-"


# Any host, and every private network a crawl can open; never link-local or metadata addresses.
OPEN_POLICY = NetworkPolicy(networks=PRIVATE_NETWORKS)


@dataclass(frozen=True)
class PdfLimits:
    """How large a PDF may be, and how much longer than a page it may take to arrive."""

    max_bytes: int
    read_timeout: float


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


def _read_body(response: requests.Response, max_bytes: int, url: str, truncate: bool) -> bytes:
    declared = response.headers.get("Content-Length")
    if not truncate and declared and declared.isdigit() and int(declared) > max_bytes:
        raise PermanentFetchError("too_large", f"{url}: Content-Length {declared} exceeds {max_bytes} bytes")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            if truncate:
                chunks.append(chunk[:len(chunk) - (size - max_bytes)])
                break
            raise PermanentFetchError("too_large", f"{url}: body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error and every error it wraps: requests and urllib3 keep the socket's error in args."""
    todo, seen = [exc], set()
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        todo += [e for e in (*error.args, getattr(error, "reason", None), error.__cause__, error.__context__)
                 if isinstance(e, BaseException)]


def _network_error(exc: Exception, url: str, guard: Guard, *, deadline: float, reading: bool) -> FetchError:
    """What went wrong on the wire, as specific as the error chain allows."""
    if guard.refused is not None:
        reason, address = guard.refused
        return PermanentFetchError(reason, f"{url}: connection went to {describe(reason)} {address}")
    if guard.expired:
        return RetryableFetchError("timeout", f"{url}: no complete response within the {deadline:g}s read deadline")
    causes = list(_causes(exc))
    where = "while reading the body" if reading else "before the response"

    def seen(*types: type[BaseException]) -> bool:
        return any(isinstance(cause, types) for cause in causes)

    if seen(requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError):
        return PermanentFetchError("bad_content_encoding", f"{url}: body does not decode as its Content-Encoding says")
    if seen(ConnectionResetError):
        return RetryableFetchError("connection_reset", f"{url}: connection reset by the server {where}")
    if seen(http.client.IncompleteRead):
        return RetryableFetchError("incomplete_body", f"{url}: connection closed before the whole body arrived")
    # Not urllib3's TimeoutError: its NewConnectionError (connection refused) is one.
    if seen(requests.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return RetryableFetchError("timeout", f"{url}: {exc.__class__.__name__} {where}")
    if seen(ssl.SSLError):
        return RetryableFetchError("tls_error", f"{url}: TLS error {where}: {exc}")
    return RetryableFetchError("connection_error", f"{url}: {exc}")


def _redirect_target(current: str, location: str, status: int) -> PageURL:
    try:
        return PageURL.of(urljoin(current, location))
    except UnsupportedScheme as exc:
        raise PermanentFetchError("unsupported_scheme", f"{current} redirects to {exc}", status) from exc
    except (InvalidURL, ValueError) as exc:  # urljoin itself refuses e.g. an unclosed IPv6 bracket
        raise PermanentFetchError("bad_redirect", f"{current} redirects to {location!r}: {exc}", status) from exc


def fetch(
    session: requests.Session, url: PageURL, *, connect_timeout: float, read_timeout: float,
    max_bytes: int, max_redirects: int, html_only: bool = True, policy: NetworkPolicy,
    etag: str | None = None, last_modified: str | None = None, truncate: bool = False,
    pdf: PdfLimits | None = None,
    before_hop: Callable[[PageURL], AbstractContextManager[None]] | None = None,
) -> Page:
    """GET `url`, following at most `max_redirects` redirects, and return the page.

    With `html_only` (pages to parse) anything but HTML is refused, except PDFs when
    `pdf` gives their limits (a PDF served as octet-stream must start with `%PDF-`);
    sitemaps pass False. With `etag` / `last_modified` the request is conditional, and an
    unchanged page comes back as status 304 with an empty body. Each hop, headers
    and body together, ends by its read deadline (connect plus read timeout),
    however slowly the server sends. `session` must be a `vetted_session()`: its
    connections carry out the policy and the deadline. With `truncate`, a body over
    `max_bytes` is cut there instead of refused (robots.txt). Every redirect hop
    runs inside `before_hop(hop)`, so its own host's politeness applies to it.
    """
    requested = current = url.url
    hop_page = url
    seen = {current}
    conditional = {k: v for k, v in (("If-None-Match", etag), ("If-Modified-Since", last_modified)) if v}
    for hop in range(max_redirects + 1):
        policy.check(current)
        budget = connect_timeout + read_timeout
        with ExitStack() as stack:
            if hop and before_hop is not None:
                stack.enter_context(before_hop(hop_page))
            guard = stack.enter_context(guarded(policy, time.monotonic() + budget))
            try:
                response = session.get(
                    current, timeout=(connect_timeout, read_timeout), stream=True, allow_redirects=False,
                    headers=conditional if current == requested else None,
                )
            except requests.RequestException as exc:
                raise _network_error(exc, current, guard, deadline=budget, reading=False) from exc
            except ValueError as exc:
                # requests works out a redirect's next hop even when not following it, and a
                # Location it cannot parse (an unclosed IPv6 bracket) raises ValueError there.
                raise PermanentFetchError("bad_redirect", f"{current}: unusable Location: {exc}") from exc
            with response:
                status = response.status_code
                if response.is_redirect:
                    hop_page = _redirect_target(current, response.headers["Location"], status)
                    if hop_page.url in seen:
                        raise PermanentFetchError("redirect_loop", f"{current} redirects back to {hop_page.url}",
                                                  status)
                    seen.add(hop_page.url)
                    current = hop_page.url
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
                maybe_pdf = pdf is not None and media_type(content_type) in (*PDF_TYPES, *GENERIC_TYPES)
                # A declared type we cannot read is refused before its body is downloaded.
                if html_only and content_type and not maybe_pdf and not is_html(content_type, b""):
                    raise PermanentFetchError("not_html", f"{current}: Content-Type {content_type}", status)
                if maybe_pdf:
                    guard.extend(pdf.read_timeout)
                try:
                    body = _read_body(response, pdf.max_bytes if maybe_pdf else max_bytes, current, truncate)
                except requests.RequestException as exc:
                    raise _network_error(exc, current, guard, deadline=budget, reading=True) from exc
                if guard.expired:  # a body without a length ends where the deadline cut it
                    raise _network_error(TimeoutError(), current, guard, deadline=budget, reading=True)
            if html_only and not (is_html(content_type, body[:512]) or maybe_pdf and body.startswith(PDF_SIGNATURE)):
                raise PermanentFetchError(
                    "not_html", f"{current}: {content_type or 'no Content-Type'} and neither markup nor a PDF",
                    status)
            return Page(
                url=requested, final_url=current, status=status, content_type=content_type,
                etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified"),
                body=body, fetched_at=_now_iso(),
            )
    raise PermanentFetchError("too_many_redirects", f"{requested}: more than {max_redirects} redirects")
