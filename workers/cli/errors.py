"""One line, never a traceback, when Redis or Elasticsearch is down, refuses us, or times out.

Every `report-ingest` command runs inside `ServiceErrors`, so none of them has to
catch these errors itself: the line names the service, its URL without any
secret, and what to do.
"""

from __future__ import annotations

import logging
import sys

import click

from workers.redaction import redact_url

START = "start it with `report-ingest services up`"
# Commands whose log output is an operator's to read: the transport's retry warnings stay on.
LOGGING_COMMANDS = frozenset({"worker", "beat"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__


def service_error(exc: BaseException) -> str | None:
    """The one-line message for an error reaching Redis or Elasticsearch or for a setting that cannot be
    used, or None for any other error."""
    import elastic_transport
    import elasticsearch
    import kombu.exceptions
    import redis.exceptions

    from workers import es_read
    from workers.es_nodes import redacted_nodes
    from workers.settings import SettingsError, get_settings

    if isinstance(exc, SettingsError):  # a setting that cannot be used, by its variable's name
        return str(exc)
    settings = get_settings()
    redis_at = f"Redis at {redact_url(settings.redis_url)}"
    es_at = f"Elasticsearch at {redacted_nodes(settings.elasticsearch_url)}"
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return (f"{redis_at} refused the credentials ({_first_line(exc)}): "
                "put the right password in REDIS_URL (redis://:PASSWORD@host:port/db)")
    if isinstance(exc, redis.exceptions.TimeoutError):
        return f"{redis_at} timed out ({_first_line(exc)}): check that it is up and reachable, or set REDIS_URL"
    if isinstance(exc, redis.exceptions.ConnectionError | kombu.exceptions.OperationalError):
        return f"{redis_at} is not reachable ({_first_line(exc)}): {START}, or set REDIS_URL"
    if isinstance(exc, elasticsearch.AuthenticationException) or es_read.status_of(exc) == 401:
        return (f"{es_at} refused the credentials (HTTP 401): set ELASTICSEARCH_API_KEY, or "
                "ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD")
    if isinstance(exc, elasticsearch.AuthorizationException) or es_read.status_of(exc) == 403:
        return f"{es_at} refused the request (HTTP 403): the configured user lacks the privileges this needs"
    if isinstance(exc, elasticsearch.ConnectionTimeout | es_read.TimedOut):
        return (f"{es_at} timed out after {settings.elasticsearch_timeout:g}s: check that it is up and not "
                "overloaded, or raise ELASTICSEARCH_TIMEOUT")
    if isinstance(exc, elastic_transport.TlsError | es_read.TlsFailed):
        return (f"{es_at}: TLS failed ({_first_line(exc)}): set ELASTICSEARCH_CA_CERTS to the CA that signed "
                "its certificate")
    if isinstance(exc, elasticsearch.ConnectionError | es_read.Unreachable):
        return f"{es_at} is not reachable: {START}, or set ELASTICSEARCH_URL"
    return None


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def quiet_transport(command: str | None) -> None:
    """The Elasticsearch transport logs each retry before giving up; a command's error line says it all."""
    if command not in LOGGING_COMMANDS:
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)


class ServiceErrors(click.Group):
    """A command group that turns a service error in any of its commands into one line and exit 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if (message := service_error(exc)) is None:
                raise
            fail(message)
