"""A small Elasticsearch client for the read-only commands: search, count, get, points in time.

The `elasticsearch` package loads its sync and async clients with every API namespace and the
transport with its asyncio and requests nodes: 0.25 s of start-up (0.35 s with its DSL), which
`search`, `history`, `diff`, `tiers` and `status` paid before their first request, against
their goal of answering within half a second (benchmarks/cli_startup.py). These commands send
a few JSON requests to a node, which the standard library's http.client does in 0.03 s of
imports. Workers, writes and everything else keep the full client (workers/clients.py).

Its methods take the keyword arguments of the `Elasticsearch` methods of the same names that
the read paths use, so the query functions accept either client (`Searcher`). Failures are
`Unreachable` (no answer: refused, timed out, TLS) and `HttpError` (an error status), which
carries `status_code` and `body` as the client's `ApiError` does, so a caller tells them apart
by status whichever client it was given (`status_of`). Like the full client
(workers/clients.py), it tries a request again, on the next node listed, after a connection
error, a timeout or a 429/502/503/504 answer, at most `ES_MAX_RETRIES` times.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote, unquote, urlencode, urlsplit

from workers.clients import ES_MAX_RETRIES, elasticsearch_credentials
from workers.es_nodes import elasticsearch_nodes

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from workers.settings import Settings

# Answers the full client's transport tries again too (its default retry_on_status).
_RETRY_STATUS = frozenset({429, 502, 503, 504})
# Keyword arguments that go in the URL, under the name Elasticsearch gives them.
_PARAMS = {"source_includes": "_source_includes", "preference": "preference"}
# Keyword arguments named differently in the body (`from` is a Python keyword).
_BODY_NAMES = {"from_": "from", "source": "_source"}


class Unreachable(Exception):
    """No answer from the node: connection refused or reset, name not found."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url


class TimedOut(Unreachable):
    """The node did not answer within the request timeout."""


class TlsFailed(Unreachable):
    """The TLS handshake failed (an unknown CA, a wrong host name)."""


class HttpError(Exception):
    """The node answered with an error status."""

    def __init__(self, status_code: int, body: Any):
        reason = body.get("error", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status_code}: {json.dumps(reason)[:500]}")
        self.status_code, self.body = status_code, body


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an error from either client (`ApiError` or `HttpError`); None for any other."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


class _Indices:
    def __init__(self, client: ReadClient):
        self._client = client

    def exists_alias(self, *, name: str) -> bool:
        try:
            self._client.request("HEAD", f"/_alias/{quote(name)}")
        except HttpError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True


@dataclass(frozen=True)
class _Node:
    https: bool
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> _Node:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        return cls(https, parts.hostname or "", parts.port or (443 if https else 80), parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}"


class ReadClient:
    """One connection at a time, kept open between requests, to the nodes listed in turn: a node
    that does not answer passes the request on to the next. For one thread."""

    def __init__(self, nodes: list[str], *, timeout: float, headers: dict[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None, max_retries: int = ES_MAX_RETRIES):
        self._nodes, self._at = [_Node.parse(url) for url in nodes], 0
        self._timeout, self._ssl, self._retries = timeout, ssl_context, max_retries
        self._headers = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
        self._connection: http.client.HTTPConnection | None = None
        self.indices = _Indices(self)

    @property
    def _node(self) -> _Node:
        return self._nodes[self._at]

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            node = self._node
            if node.https:
                self._connection = http.client.HTTPSConnection(node.host, node.port, timeout=self._timeout,
                                                               context=self._ssl)
            else:
                self._connection = http.client.HTTPConnection(node.host, node.port, timeout=self._timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _next_node(self) -> None:
        self.close()
        self._at = (self._at + 1) % len(self._nodes)

    def request(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> Any:
        """The decoded JSON answer (None for HEAD); HttpError for a status of 400 or more."""
        query = f"?{urlencode(params)}" if params else ""
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                connection = self._connect()
                connection.request(method, self._node.prefix + path + query, body=payload, headers=self._headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failure = self._failure(exc)
                self._next_node()
                if last or isinstance(failure, TlsFailed):
                    raise failure from exc
                continue
            if response.status in _RETRY_STATUS and not last:
                self._next_node()
                continue
            if response.status >= 400:
                raise HttpError(response.status, _decoded(data))
            return _decoded(data) if method != "HEAD" else None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _failure(self, exc: BaseException) -> Unreachable:
        url = self._node.url
        if isinstance(exc, ssl.SSLError):
            return TlsFailed(url, str(exc))
        if isinstance(exc, TimeoutError):
            return TimedOut(url, f"no answer within {self._timeout:g}s")
        return Unreachable(url, str(exc) or exc.__class__.__name__)

    def search(self, *, index: str | None = None, **request: Any) -> dict:
        params, body = _split(request)
        return self.request("POST", f"/{quote(index)}/_search" if index else "/_search", body, params)

    def count(self, *, index: str, query: dict | None = None) -> dict:
        return self.request("POST", f"/{quote(index)}/_count", {"query": query} if query else None)

    def get(self, *, index: str, id: str, source_includes: list[str] | None = None) -> dict:  # noqa: A002 - as the client names it
        params = {"_source_includes": ",".join(source_includes)} if source_includes else None
        return self.request("GET", f"/{quote(index)}/_doc/{quote(id, safe='')}", params=params)

    def open_point_in_time(self, *, index: str, keep_alive: str) -> dict:
        return self.request("POST", f"/{quote(index)}/_pit", params={"keep_alive": keep_alive})

    def close_point_in_time(self, *, id: str) -> dict:  # noqa: A002 - as the client names it
        return self.request("DELETE", "/_pit", {"id": id})


def _decoded(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode("utf-8", "replace")


def _split(request: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """URL parameters and body of a search, from the keyword arguments `Elasticsearch.search` takes."""
    params, body = {}, {}
    for key, value in request.items():
        if value is None:
            continue
        if key in _PARAMS:
            params[_PARAMS[key]] = ",".join(value) if isinstance(value, list) else str(value)
        else:
            body[_BODY_NAMES.get(key, key)] = value
    return params, body


def read_client(settings: Settings) -> ReadClient:
    """A client of the configured nodes, with the credentials and TLS settings the full client uses."""
    credentials = elasticsearch_credentials(settings)
    nodes = elasticsearch_nodes(settings.elasticsearch_url)
    url = urlsplit(nodes[0])
    if not credentials and url.username is not None:  # the full client's transport reads them from the URL too
        credentials = {"basic_auth": (unquote(url.username), unquote(url.password or ""))}
    headers = {}
    if "api_key" in credentials:
        headers["Authorization"] = f"ApiKey {credentials['api_key']}"
    elif "basic_auth" in credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials["basic_auth"]).encode()).decode()
    context = None
    if any(node.startswith("https") for node in nodes):
        context = ssl.create_default_context(cafile=str(settings.elasticsearch_ca_certs)
                                             if settings.elasticsearch_ca_certs else None)
        if not settings.elasticsearch_verify_certs:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return ReadClient(nodes, timeout=settings.elasticsearch_timeout, headers=headers,
                      ssl_context=context)


# What the query functions shared by the commands and the workers take: either client.
Searcher: TypeAlias = "Elasticsearch | ReadClient"
