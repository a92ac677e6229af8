"""Fixtures for real services: Redis and Elasticsearch per session, a Celery worker per module.

REDIS_URL / ELASTICSEARCH_URL in the environment point the tests at running
services instead of starting new ones. Services start only when a test that
needs them runs: every test that uses one of SERVICE_FIXTURES (directly or
through another fixture) is marked `services`, so `pytest -m "not services"`
runs the unit tests alone and starts nothing. Helpers for test modules are in
tests/helpers.py; tests never import this file.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from devtools import services as devservices
from tests.faults.helpers import SUMMARIES
from tests.helpers import ES_NODE_SETTINGS, TEST_SETTINGS, Worker, drop_indices, env_applied, point_app_at
# Still imported from here by tests/test_reindex*.py and tests/reindexing.py, until they import tests.helpers.
from tests.helpers import REPO, cli  # noqa: F401
from workers.clients import get_es, get_redis
from workers.index.indices import IndexNames
from workers.settings import get_settings

# The fixtures that start or reach Redis and Elasticsearch (fault_redis: tests/faults/conftest.py).
SERVICE_FIXTURES = frozenset({"session_services", "fault_redis"})
# Tests that start a server of their own without one of those fixtures, in files that do not
# carry the marker yet.
MARKED_HERE = frozenset({
    "tests/test_reindex_guards.py::test_heartbeat_lost_to_a_redis_outage_stops_the_rebuild",
})


def pytest_terminal_summary(terminalreporter) -> None:
    """The summary line of each fault scenario (tests/faults/, tests/ha/) that ran."""
    if SUMMARIES:
        terminalreporter.section("faults")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())) or item.nodeid in MARKED_HERE:
            item.add_marker(pytest.mark.services)


class _NoServers:
    """`subprocess` as devtools.services sees it during a test not marked `services`: it may do
    anything but start a server, so `-m "not services"` can never start one unnoticed."""

    def __init__(self, test: str):
        self.test = test

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    def Popen(self, args, **kwargs):  # noqa: N802 - stands in for subprocess.Popen
        raise AssertionError(f"{self.test} starts {Path(args[0]).name}: mark it @pytest.mark.services, "
                             "or get the server from a fixture in SERVICE_FIXTURES (tests/conftest.py)")


@pytest.fixture(autouse=True)
def _servers_only_in_services_tests(request, monkeypatch):
    if request.node.get_closest_marker("services") is None:
        monkeypatch.setattr(devservices, "subprocess", _NoServers(request.node.nodeid))


def own_database(url: str, xdist_worker: str) -> str:
    """The Redis database of `url` for one pytest-xdist process (gw0, gw1, ...): two sessions sharing
    one database would share the Celery queues, and each one's worker would take the other's tasks.
    Elasticsearch needs nothing: every session's indices have a prefix of their own."""
    if not xdist_worker:
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + int(xdist_worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def session_services() -> dict:
    """Redis and Elasticsearch for the session: those started here (by kind) can be stopped
    and restarted by fault tests; URLs from REDIS_URL / ELASTICSEARCH_URL are used as they are."""
    started: dict = {}
    urls = {"REDIS_URL": os.environ.get("REDIS_URL"), "ELASTICSEARCH_URL": os.environ.get("ELASTICSEARCH_URL")}
    if urls["REDIS_URL"]:
        urls["REDIS_URL"] = own_database(urls["REDIS_URL"], os.environ.get("PYTEST_XDIST_WORKER", ""))
    else:
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


@pytest.fixture(scope="module")
def test_env(service_urls, request):
    """Environment for one module: the services, a fresh index prefix, test limits.

    A module may add or override settings in a module-level `EXTRA_ENV` dict.
    """
    env = {**service_urls, **TEST_SETTINGS, "INDEX_PREFIX": f"t{uuid.uuid4().hex[:8]}-",
           **getattr(request.module, "EXTRA_ENV", {})}
    with env_applied(env):
        yield env
        drop_indices(get_es(), env["INDEX_PREFIX"])


@pytest.fixture(scope="module")
def settings(test_env):
    return get_settings()


@pytest.fixture(scope="module")
def es(test_env):
    return get_es()


@pytest.fixture(scope="module")
def redis_client(test_env):
    return get_redis()


@pytest.fixture(scope="module")
def names(settings):
    return IndexNames(settings.index_prefix)


@pytest.fixture(scope="module")
def worker(test_env):
    point_app_at(test_env["REDIS_URL"])
    w = Worker(test_env)
    yield w
    w.stop()
