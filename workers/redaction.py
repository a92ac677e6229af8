"""Secrets in URLs, kept out of everything but the page's own records.

A signed URL (S3's `X-Amz-Signature`, a CDN's `token`, Azure's `sig`, an API `key`) is a
credential for as long as it lasts. The crawl fetches it as it is, and the page's own records
(its raw page, its crawl state) keep it; a failure record, a log line, `status` and the CLI's
own messages show it with those values replaced, and a service URL without its password.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"
# Query parameters (compared in lower case) whose value is a credential.
SECRET_PARAMS = frozenset({
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    "signature", "sig", "token", "access_token", "id_token", "refresh_token", "auth", "authorization",
    "key", "api_key", "apikey", "api-key", "secret", "client_secret", "password", "passwd", "jwt",
    "session", "sessionid", "key-pair-id", "policy",
})
_URL = re.compile(r"https?://[^\s'\"<>()\[\]]+", re.IGNORECASE)


def _redact_query(query: str) -> str:
    if not query:
        return query
    parts = []
    for pair in query.split("&"):
        name, eq, _value = pair.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and name.lower() in SECRET_PARAMS else pair)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """The URL without its password (and user name, if one was given) or credential parameters."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if parts.password is not None or parts.username is not None:
        netloc = f"***@{f'[{host}]' if ':' in host else host}{port}"
    query = _redact_query(parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def is_redacted(url: str) -> bool:
    """A URL whose credentials were taken out: fetching it would only be refused."""
    return f"={REDACTED}" in url or "***@" in url


def redact_text(text: str) -> str:
    """`text` with every http(s) URL in it redacted."""
    return _URL.sub(lambda match: redact_url(match.group()), text) if "://" in text else text


class RedactingFilter(logging.Filter):
    """Redacts URLs in a log record's message (ours, Celery's, urllib3's) before a handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact_text(message), None
        return True


def redact_logs(logger: logging.Logger | None = None) -> None:
    """Every handler of `logger` (the root logger) redacts what it writes."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
