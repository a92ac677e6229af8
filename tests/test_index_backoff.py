"""The index run backs off, rather than coming back at once, while Elasticsearch refuses what it
needs: its readiness check (401, 403, 429, 503), or even the minimal form of a failure record."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import redis
from celery.exceptions import Retry
from elasticsearch import Elasticsearch

from workers.index import tasks
from workers.index.runner import IndexRunner
from workers.index.staging import Staging
from workers.records import Failure, FailureEntry

URL = "http://127.0.0.1:9/refused"


class RunTask:
    """What _drain needs of its task: the attempt, and a retry that says when."""

    def __init__(self):
        self.request = SimpleNamespace(retries=0, id="index-run")
        self.countdowns: list[float] = []

    def retry(self, countdown: float, exc: Exception) -> Retry:
        self.countdowns.append(countdown)
        return Retry(exc=exc, when=countdown)


def drain(settings, redis_client) -> tuple[RunTask, Staging]:
    task, queue = RunTask(), Staging(redis_client, settings.index_prefix)
    runner = IndexRunner(redis_client, settings.index_prefix, "index-run@test", lease=30)
    with pytest.raises(Retry):
        tasks._drain(task, settings, queue, runner, careful=0)
    return task, queue


class _Refusing(BaseHTTPRequestHandler):
    status = 403

    def _refuse(self):
        body = json.dumps({"error": {"type": "security_exception", "reason": "refused"}, "status": self.status})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_HEAD = do_PUT = do_POST = _refuse

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status", [401, 403, 429, 503])
def test_an_index_run_whose_readiness_check_is_refused_backs_off(settings, redis_client, monkeypatch, status):
    handler = type("Refusing", (_Refusing,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        es = Elasticsearch(f"http://127.0.0.1:{server.server_port}", max_retries=0)
        monkeypatch.setattr(tasks, "get_es", lambda: es)
        tasks.indices_ready.cache_clear()
        task, _queue = drain(settings, redis_client)
        assert task.countdowns and task.countdowns[0] > 0
    finally:
        tasks.indices_ready.cache_clear()
        server.shutdown()
        server.server_close()


def test_an_index_run_refused_even_a_minimal_failure_record_backs_off_and_keeps_the_entry(
        settings, es, names, redis_client):
    tasks.indices_ready(settings.index_prefix, str(settings.schemas_dir))
    entry = FailureEntry(URL, None, None, Failure(URL, "fetch", "http_404", "not found"))
    queue = Staging(redis_client, settings.index_prefix)
    queue.put(entry.key, entry.to_json(), trigger_ttl=60)
    blocked = [names.failures]
    es.indices.put_settings(index=blocked, settings={"index.blocks.write": True})
    try:
        task, queue = drain(settings, redis_client)
        assert task.countdowns and task.countdowns[0] > 0
        assert [taken.key for taken in queue.take(10)] == [entry.key]  # nothing lost
    finally:
        es.indices.put_settings(index=blocked, settings={"index.blocks.write": False})
        queue.remove(queue.take(10))


@pytest.mark.services
def test_an_index_lock_whose_release_met_redis_away_is_released_once_redis_is_back(tmp_path, monkeypatch):
    """Measured in the Sentinel failover scenario (tests/ha): the run cut off by the failover left its
    lock behind, its worker beat on, and every index run found the lock held until it lapsed."""
    from devtools import services
    from tests.faults.helpers import await_condition

    server = services.start_redis(tmp_path, appendonly=True)  # the lock outlives the restart, as on a replica
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
    runner = IndexRunner(client, "release-", "node@test", lease=300)
    assert runner.hold()
    server.stop()
    waits: list[float] = []
    sleep = time.sleep
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: (waits.append(seconds), sleep(seconds)))
    release = threading.Thread(target=tasks._release_quietly, args=(runner,))
    release.start()
    try:
        await_condition(lambda: waits, 30, "a release that found Redis away")
        server = services.start_redis(tmp_path, port=int(server.url.rsplit(":", 1)[1].split("/")[0]), appendonly=True)
        release.join(60)
        assert client.get(runner.key) is None
    finally:
        server.stop()
