"""One pooled client per process (Elasticsearch, Redis); what is not thread-safe, one per thread.

Connection pools must not be shared across fork (Celery's prefork pool), so the
caches are cleared in every child after fork and each process builds its own.
Other per-process components (the polite fetcher with its Lua scripts and robots
parses) register with `per_process` to be rebuilt the same way; they must be
thread-safe, as a threads-pool worker (workers/cli/layout.py) shares them between
its tasks. The Redis and Elasticsearch clients are; a requests Session is not
documented to be, so the crawl's (workers/crawl/netpolicy.py) is built per thread (`per_thread`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import redis
    from elasticsearch import Elasticsearch

from workers.es_nodes import elasticsearch_nodes
from workers.settings import Settings, get_settings

# Attempts after the first that the transport makes at one request (the index runner lock
# outlasts them all: workers/index/runner.py).
ES_MAX_RETRIES = 3


def elasticsearch_credentials(settings: Settings) -> dict:
    """The one choice of credentials, for Elasticsearch and for Kibana (workers/kibana.py): the API
    key if set, else user name and password if both are, else none. Empty values count as unset."""
    if settings.elasticsearch_api_key:
        return {"api_key": settings.elasticsearch_api_key.get_secret_value()}
    if settings.elasticsearch_username and settings.elasticsearch_password:
        return {"basic_auth": (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())}
    return {}


def elasticsearch_client(settings: Settings) -> Elasticsearch:
    # Imported here: commands that never query it (`crawl`, `parse`) start 0.2-0.4 s sooner.
    from elasticsearch import Elasticsearch

    kwargs: dict = {
        "request_timeout": settings.elasticsearch_timeout,
        "verify_certs": settings.elasticsearch_verify_certs,
        # Transient node errors are retried by the transport, not by every caller.
        "retry_on_timeout": True,
        "max_retries": ES_MAX_RETRIES,
    }
    if settings.elasticsearch_ca_certs:
        kwargs["ca_certs"] = str(settings.elasticsearch_ca_certs)
    # Several nodes: the transport takes them in turn and retries a request on another when one fails.
    return Elasticsearch(elasticsearch_nodes(settings.elasticsearch_url), **kwargs, **elasticsearch_credentials(settings))


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
    from workers.sentinel import redis_client  # imports redis: read-only commands that never reach Redis start sooner

    return redis_client(get_settings())


_threads = threading.local()


def per_thread(factory: Callable[[], T]) -> Callable[[], T]:
    """Build on first use, once per thread; rebuilt after fork and by `reset_clients`. For what is
    not thread-safe (a requests Session: workers/crawl/netpolicy.py `get_http`)."""
    name = f"{factory.__module__}.{factory.__qualname__}"

    def get() -> T:
        built = getattr(_threads, name, None)
        if built is None:
            built = factory()
            setattr(_threads, name, built)
        return built

    return get


def reset_clients() -> None:
    global _threads
    for factory in _PER_PROCESS:
        factory.cache_clear()
    _threads = threading.local()


os.register_at_fork(after_in_child=reset_clients)
