"""Real services for tests: Redis and Elasticsearch per session, a Celery worker per module.

REDIS_URL / ELASTICSEARCH_URL in the environment point the tests at running
services instead of starting new ones.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from workers import demo, devservices

REPO = Path(__file__).resolve().parent.parent
# Small limits so the failure paths (timeouts, retries, size cap) finish in seconds.
TEST_SETTINGS = {
    "CONNECT_TIMEOUT": "1",
    "READ_TIMEOUT": "1.5",
    "FETCH_MAX_RETRIES": "2",
    "FETCH_BACKOFF_BASE": "0.2",
    "FETCH_BACKOFF_MAX": "5",
    "MAX_PAGE_BYTES": "300000",
    "BULK_CHUNK_SIZE": "50",
    # Ad-hoc crawls of the local test site need not be slow; politeness has its own tests.
    "DEFAULT_HOST_RATE": "500",
    "DEFAULT_HOST_CONCURRENCY": "8",
}


# Small enough that a test can send a bulk request over it without moving 100 MB.
ES_NODE_SETTINGS = {"http.max_content_length": "10mb"}


@pytest.fixture(scope="session")
def session_services() -> dict:
    """Redis and Elasticsearch for the session: those started here (by kind) can be stopped
    and restarted by fault tests; URLs from REDIS_URL / ELASTICSEARCH_URL are used as they are."""
    started: dict = {}
    urls = {"REDIS_URL": os.environ.get("REDIS_URL"), "ELASTICSEARCH_URL": os.environ.get("ELASTICSEARCH_URL")}
    if not urls["REDIS_URL"]:
        started["redis"] = devservices.start_redis(Path(tempfile.mkdtemp(prefix="ri-redis-")))
        urls["REDIS_URL"] = started["redis"].url
    if not urls["ELASTICSEARCH_URL"]:
        # Not under pytest's tmp dir: the node's unprivileged user must reach it.
        started["elasticsearch"] = devservices.start_elasticsearch(
            Path(tempfile.mkdtemp(prefix="ri-es-")), echo=lambda m: None, node_settings=ES_NODE_SETTINGS)
        urls["ELASTICSEARCH_URL"] = started["elasticsearch"].url
    yield {"urls": urls, "started": started}
    for service in reversed(list(started.values())):
        service.stop()


@pytest.fixture(scope="session")
def service_urls(session_services):
    return session_services["urls"]


def _apply_env(env: dict[str, str]) -> None:
    from workers.clients import reset_clients

    os.environ.update(env)
    reset_clients()


@pytest.fixture(scope="module")
def test_env(service_urls, request):
    """Environment for one module: the services, a fresh index prefix, test limits.

    A module may add or override settings in a module-level `EXTRA_ENV` dict.
    """
    env = {**service_urls, **TEST_SETTINGS, "INDEX_PREFIX": f"t{uuid.uuid4().hex[:8]}-",
           **getattr(request.module, "EXTRA_ENV", {})}
    saved = {k: os.environ.get(k) for k in env}
    _apply_env(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    from workers.clients import reset_clients

    reset_clients()


@pytest.fixture(scope="module")
def settings(test_env):
    from workers.settings import get_settings

    return get_settings()


@pytest.fixture(scope="module")
def es(test_env):
    from workers.clients import get_es

    return get_es()


@pytest.fixture(scope="module")
def redis_client(test_env):
    from workers.clients import get_redis

    return get_redis()


@pytest.fixture(scope="module")
def names(settings):
    from workers.index import IndexNames

    return IndexNames(settings.index_prefix)


def point_app_at(broker_url: str) -> None:
    """Publish and ping through `broker_url` from this process (the app was configured at import)."""
    from workers.app import app

    app.conf.broker_url = broker_url
    # Forget the pools of the broker used before; kombu keeps one pool per broker URL, so the
    # next use picks up this broker's (closing the old ones would break a return to that broker).
    app._pool = None
    app.amqp._producer_pool = None


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `report-ingest ARGS` as a user would, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], env={**os.environ, **env}, cwd=REPO,
        capture_output=True, text=True, timeout=timeout,
    )


class Worker:
    def __init__(self, env: dict[str, str], concurrency: int = 4):
        self.log = Path(tempfile.mkstemp(prefix="ri-worker-", suffix=".log")[1])
        self.env = env
        self.node = f"test-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.process = demo.start_worker(
            concurrency, self.log, loglevel="INFO", env={**os.environ, **env},
            extra=("--without-gossip", "--without-mingle", "-n", self.node),
        )
        try:
            demo.wait_for_worker(self.process, echo=lambda _m: None, log=self.log, node=self.node)
        except BaseException:
            self.stop()  # a worker that never answered must not outlive the test and eat others' tasks
            raise

    def ping(self, timeout: float = 2.0) -> list:
        from workers.app import app

        return app.control.ping(timeout=timeout, destination=[self.node])

    def stop(self) -> None:
        demo.stop_worker(self.process)


@pytest.fixture(scope="module")
def worker(test_env):
    point_app_at(test_env["REDIS_URL"])
    w = Worker(test_env)
    yield w
    w.stop()
