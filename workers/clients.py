"""One pooled client per process: a requests Session, an Elasticsearch client, a Redis client.

Connection pools must not be shared across fork (Celery's prefork pool), so the
caches are cleared in every child after fork and each process builds its own.
Other per-process components (the polite fetcher with its Lua scripts and robots
parses) register with `per_process` to be rebuilt the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

import redis
import requests
from elasticsearch import Elasticsearch

from workers.crawl.netpolicy import vetted_session
from workers.settings import Settings, get_settings


def elasticsearch_credentials(settings: Settings) -> dict:
    """The one choice of credentials, for Elasticsearch and for Kibana (workers/kibana.py): the API
    key if set, else user name and password if both are, else none. Empty values count as unset."""
    if settings.elasticsearch_api_key:
        return {"api_key": settings.elasticsearch_api_key.get_secret_value()}
    if settings.elasticsearch_username and settings.elasticsearch_password:
        return {"basic_auth": (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())}
    return {}


def elasticsearch_client(settings: Settings) -> Elasticsearch:
    kwargs: dict = {
        "request_timeout": settings.elasticsearch_timeout,
        "verify_certs": settings.elasticsearch_verify_certs,
        # Transient node errors are retried by the transport, not by every caller.
        "retry_on_timeout": True,
        "max_retries": 3,
    }
    if settings.elasticsearch_ca_certs:
        kwargs["ca_certs"] = str(settings.elasticsearch_ca_certs)
    return Elasticsearch(settings.elasticsearch_url, **kwargs, **elasticsearch_credentials(settings))


T = TypeVar("T")
_PER_PROCESS: list = [get_settings]


def per_process(factory: Callable[[], T]) -> Callable[[], T]:
    """Build on first use, once per process; rebuilt after fork and by `reset_clients`."""
    cached = lru_cache(maxsize=1)(factory)
    _PER_PROCESS.append(cached)
    return cached


@per_process
def get_es() -> Elasticsearch:
    return elasticsearch_client(get_settings())


@per_process
def get_redis() -> redis.Redis:
    settings = get_settings()
    return redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=settings.redis_timeout,
                                socket_connect_timeout=settings.redis_timeout)


@per_process
def get_http() -> requests.Session:
    session = vetted_session()
    session.headers["User-Agent"] = get_settings().user_agent
    return session


def reset_clients() -> None:
    for factory in _PER_PROCESS:
        factory.cache_clear()


os.register_at_fork(after_in_child=reset_clients)
