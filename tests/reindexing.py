"""What the rebuild tests share: a site of report pages, its crawl, the reindex queue's consumer, probes.

Fixtures defined here are imported by the test modules that use them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from elasticsearch.helpers import scan

from devtools import demo
from tests.helpers import REPO, cli
from tests.corpus import report_page
from tests.site import LocalSite, html
from workers.urls import doc_id, normalize_url


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class ReportSite(LocalSite):
    """A local site serving report pages 0..n-1 (see tests.corpus)."""

    def __init__(self, pages: int):
        super().__init__()
        self.saved: dict[str, object] = {}
        for i in range(pages):
            self.routes[report_page(i).path] = html(report_page(i).html)
        self.pages = [self.page_url(i) for i in range(pages)]

    def page_url(self, i: int) -> str:
        return normalize_url(self.url(report_page(i).path))

    def take_down(self, i: int) -> None:
        """Page i answers 404 from now on."""
        self.saved[report_page(i).path] = self.routes.pop(report_page(i).path)

    def bring_back(self, i: int) -> None:
        self.routes[report_page(i).path] = self.saved.pop(report_page(i).path)


def crawl(env: dict[str, str], *urls: str) -> subprocess.CompletedProcess:
    result = cli(env, "crawl", *urls, "--allow-network", "127.0.0.1/32", "--timeout", "60", timeout=90)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def site(request):
    """The using module's PAGES report pages."""
    site = ReportSite(request.module.PAGES)
    yield site
    site.close()


@pytest.fixture(scope="module")
def crawled(site, worker, test_env):
    assert f"{len(site.pages)} indexed" in crawl(test_env, *site.pages).stdout


@pytest.fixture
def consumer(worker):
    """Pause and resume the worker's consumption of the reindex queue."""
    from workers.app import app
    from workers.task_names import REINDEX_QUEUE

    class Consumer:
        def pause(self) -> None:
            assert app.control.cancel_consumer(REINDEX_QUEUE, reply=True)

        def resume(self) -> None:
            assert app.control.add_consumer(REINDEX_QUEUE, reply=True)

    yield Consumer()
    app.control.add_consumer(REINDEX_QUEUE, reply=True)


@contextmanager
def single_slot_worker(env: dict[str, str]) -> Iterator[Path]:
    """`report-ingest worker -Q reindex -c 1`, running for the block; yields its log file."""
    from workers.task_names import REINDEX_QUEUE

    log = Path(tempfile.mkstemp(prefix="ri-reindex-worker-", suffix=".log")[1])
    node = f"reindex-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    process = demo.start_worker(1, log, loglevel="INFO", env={**os.environ, **env},
                                extra=("-Q", REINDEX_QUEUE, "--without-gossip", "--without-mingle", "-n", node))
    try:
        demo.wait_for_worker(process, echo=lambda _m: None, log=log, node=node)
        yield log
    finally:
        demo.stop_worker(process)


def reindex_queue_idle(redis_client) -> bool:
    """No chunk waits in the queue or runs on a worker."""
    from workers.app import app
    from workers.task_names import REINDEX_PREFIX, REINDEX_QUEUE

    if redis_client.llen(REINDEX_QUEUE):
        return False
    inspect = app.control.inspect(timeout=1.0)
    busy = [*((inspect.active() or {}).values()), *((inspect.reserved() or {}).values())]
    return not any(task["name"].startswith(REINDEX_PREFIX) for tasks in busy for task in tasks)


def live(es, names) -> str:
    (index,) = es.indices.get_alias(name=names.reports)
    return index


def documents(es, names, index: str | None = None) -> list[dict]:
    index = index or names.reports
    es.indices.refresh(index=index)
    return [hit["_source"] for hit in scan(es, index=index)]


def expected_ids(urls: list[str]) -> set[str]:
    return {doc_id(normalize_url(u)) for u in urls}


def start_reindex(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "reindex", *args],
        env={**os.environ, **env}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def rebuild_running(redis_client, names) -> Callable[[], bool]:
    from workers.keys import Keys

    return lambda: redis_client.get(Keys(names.prefix).rebuild_shadow) is not None
