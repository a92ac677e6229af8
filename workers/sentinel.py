"""REDIS_URL naming Redis Sentinels: the one parse of it, and every client that follows a failover.

A plain `redis://` (or `rediss://`) URL names one Redis. Celery's Sentinel form names the
Sentinels instead, `;`-separated, the master's password (if any) and database on the first:

    sentinel://:PASSWORD@s1:26379/0;sentinel://s2:26379;sentinel://s3:26379

with the master's name in REDIS_SENTINEL_MASTER, the Sentinels' own password (if they have one)
in REDIS_SENTINEL_PASSWORD and REDIS_SENTINEL_TLS for TLS to all of them. Every component asks
the Sentinels for the master on each new connection, so each follows a failover by reconnecting:

- the broker and the result backend: kombu's and Celery's Sentinel transports (the broker's with
  the fix of workers/fixes/kombu_redis.py), `sentinel://` URL and `master_name` transport option;
- the project's own keys (staging, crawl state, host limits, locks, housekeeping): redis-py's
  `Sentinel.master_for`, whose connections ask again after an error or a READONLY answer;
- RedBeat: its `redis-sentinel://` form with the Sentinels in its options.

What a failover can lose, and how it is recovered: docs/deploy.md.
Checked against kombu 5.7.0, celery 5.7.0, celery-redbeat 2.4.2 and redis-py 8.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from workers.redaction import redact_url

if TYPE_CHECKING:
    import redis

    from workers.settings import Settings

SCHEME = "sentinel"
DEFAULT_PORT = 26379


class SentinelUrlError(ValueError):
    """REDIS_URL names Sentinels in a form that cannot work; the message says which part (the
    settings refuse it at start-up, naming REDIS_URL)."""


@dataclass(frozen=True)
class Sentinels:
    """The Sentinels of one REDIS_URL, and how to reach the master they watch."""

    hosts: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Sentinels | None:
        """The Sentinels a `sentinel://` REDIS_URL names; None for any other URL (one Redis)."""
        if not url.startswith(f"{SCHEME}://"):
            return None
        hosts, db, username, password = [], 0, None, None
        for i, part in enumerate(url.split(";")):
            try:
                parts = urlsplit(part.strip())
                port = parts.port
            except ValueError as exc:
                raise SentinelUrlError(f"{redact_url(part)!r} is not a Sentinel address ({exc})") from None
            # A port is required: without one, kombu would take 26379 and Celery's result backend 6379.
            if parts.scheme != SCHEME or not parts.hostname or port is None:
                raise SentinelUrlError(f"{redact_url(part)!r} is not a Sentinel address: write each as "
                                       f"sentinel://host:{DEFAULT_PORT}, separated by ';'")
            if i == 0:
                username, password = unquote(parts.username or "") or None, unquote(parts.password or "") or None
                path = parts.path.strip("/")
                if path and not path.isdigit():
                    raise SentinelUrlError(f"database {path!r} is not a number")
                db = int(path or 0)
            hosts.append((parts.hostname, port))
        return cls(tuple(hosts), db, username, password)

    def master_options(self, settings: Settings) -> dict:
        """How to talk to the master (and only to it): credentials, database, timeouts, TLS."""
        options = {"db": self.db, "socket_timeout": settings.redis_timeout,
                   "socket_connect_timeout": settings.redis_timeout}
        if self.username:
            options["username"] = self.username
        if self.password:
            options["password"] = self.password
        if settings.redis_sentinel_tls:
            options.update(tls_options(settings))
        return options

    def sentinel_options(self, settings: Settings) -> dict:
        """How to talk to the Sentinels themselves: their own password and TLS, if set."""
        options: dict = {"socket_timeout": settings.redis_timeout, "socket_connect_timeout": settings.redis_timeout}
        if settings.redis_sentinel_password:
            options["password"] = settings.redis_sentinel_password.get_secret_value()
        if settings.redis_sentinel_tls:
            options.update(tls_options(settings))
        return options


def tls_options(settings: Settings) -> dict:
    options: dict = {"ssl": True}
    if settings.redis_ca_certs:
        options["ssl_ca_certs"] = str(settings.redis_ca_certs)
    return options


def redis_client(settings: Settings) -> redis.Redis:
    """A client of REDIS_URL's Redis, or of the master its Sentinels name (asked on every new connection)."""
    import redis
    from redis.sentinel import Sentinel

    sentinels = Sentinels.parse(settings.redis_url)
    if sentinels is None:
        return redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=settings.redis_timeout,
                                    socket_connect_timeout=settings.redis_timeout)
    manager = Sentinel(list(sentinels.hosts), sentinel_kwargs=sentinels.sentinel_options(settings))
    return manager.master_for(settings.redis_sentinel_master, decode_responses=True,
                              **sentinels.master_options(settings))


def celery_options(settings: Settings) -> dict:
    """The Celery settings that differ when REDIS_URL names Sentinels (none when it names one Redis)."""
    sentinels = Sentinels.parse(settings.redis_url)
    if sentinels is None:
        return {}
    master = settings.redis_sentinel_master
    transport = {"master_name": master, "sentinel_kwargs": sentinels.sentinel_options(settings)}
    options: dict = {
        "broker_transport": "workers.fixes.kombu_redis:SentinelTransport",
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        # RedBeat reads Sentinels from its options, not from the URL.
        "redbeat_redis_url": f"redis-{SCHEME}://",
        "redbeat_redis_options": {"sentinels": list(sentinels.hosts), "service_name": master,
                                  "sentinel_kwargs": sentinels.sentinel_options(settings),
                                  **sentinels.master_options(settings)},
    }
    if settings.redis_sentinel_tls:
        tls = {"ssl_cert_reqs": "required", **({"ssl_ca_certs": str(settings.redis_ca_certs)}
                                                 if settings.redis_ca_certs else {})}
        options |= {"broker_use_ssl": tls, "redis_backend_use_ssl": tls, "redbeat_redis_use_ssl": tls}
    return options
