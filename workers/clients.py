"""One pooled client per process: a requests Session, an Elasticsearch client, a Redis client.

Connection pools must not be shared across fork (Celery's prefork pool), so the
cache is cleared in every child after fork and each process builds its own.
"""

from __future__ import annotations

import os
from functools import lru_cache

import redis
import requests
from elasticsearch import Elasticsearch

from workers.netpolicy import vetted_session
from workers.settings import Settings, get_settings


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
    if settings.elasticsearch_api_key:
        kwargs["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username and settings.elasticsearch_password:
        kwargs["basic_auth"] = (
            settings.elasticsearch_username,
            settings.elasticsearch_password.get_secret_value(),
        )
    return Elasticsearch(settings.elasticsearch_url, **kwargs)


@lru_cache(maxsize=1)
def get_es() -> Elasticsearch:
    return elasticsearch_client(get_settings())


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True)


@lru_cache(maxsize=1)
def get_http() -> requests.Session:
    session = vetted_session()
    session.headers["User-Agent"] = get_settings().user_agent
    return session


def reset_clients() -> None:
    for factory in (get_es, get_redis, get_http, get_settings):
        factory.cache_clear()


os.register_at_fork(after_in_child=reset_clients)
