"""A page's delivery count, against a real Redis: every message that carries the page counts on
it, and every delivery that finishes leaves it, so only deliveries a worker died in add up to
MAX_DELIVERIES. A worker that dies on a page, sent twice, is in tests/test_poison.py."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import replace
from types import SimpleNamespace

import pytest
from celery.exceptions import Reject

from workers.app import app
from workers.crawl import tasks
from workers.crawl.polite import Deferred
from workers.tracking.progress import UNCHANGED
from workers.task_names import FETCH_PAGE
from workers.delivery import Delivery, redelivered_unless_recorded
from workers.index.staging import Staging
from workers.keys import Keys
from workers.urls import PageURL

URL = "http://127.0.0.1:9/report"


def fetch_task() -> SimpleNamespace:
    """A fetch_page message of its own (a task ID never seen before)."""
    return SimpleNamespace(name=FETCH_PAGE, request=SimpleNamespace(id=uuid.uuid4().hex, retries=0))


def delivery(settings, crawl_id: str = "c1", url: str = URL) -> tasks.PageRun:
    """One delivery of a fetch_page message of its own."""
    task = fetch_task()
    return tasks.PageRun(task, settings, PageURL(url), crawl_id, Delivery(task, settings))


def count(redis_client, settings, crawl_id: str = "c1") -> int:
    return int(redis_client.get(Keys(settings.index_prefix).page_deliveries(crawl_id, PageURL(URL).key)) or 0)


@pytest.fixture
def crawl_id() -> str:
    return uuid.uuid4().hex[:12]


def test_deliveries_of_one_page_count_together_whichever_message_carries_them(settings, redis_client, crawl_id):
    # Each died (none finished): the original, a copy the reconciliation sent, a deferral's...
    assert all(delivery(settings, crawl_id).within_cap() for _ in range(settings.max_deliveries))
    assert not delivery(settings, crawl_id).within_cap()
    assert delivery(settings, "another crawl").within_cap()  # a crawl counts its own


@pytest.mark.parametrize("how", ["let_go", "finish", "stage"])
def test_a_delivery_that_finishes_leaves_the_count(settings, redis_client, crawl_id, how, monkeypatch):
    monkeypatch.setattr(app, "send_task", lambda *_a, **_k: None)  # no worker here to index
    for _ in range(settings.max_deliveries + 2):
        run = delivery(settings, crawl_id)
        assert run.within_cap()
        assert run.delivery.key is not None  # a requeue would take it off
        if how == "let_go":
            run.let_go()
        elif how == "finish":
            run.finish(UNCHANGED)
        else:
            run.fail("fetch", "http_404", "gone")  # staged
        assert run.delivery.key is None  # and not a second time
    assert count(redis_client, settings, crawl_id) == 0
    staging = Staging(redis_client, settings.index_prefix)
    staging.remove(staging.take(100))


@pytest.mark.parametrize("how", ["let_go", "finish", "stage", "requeue"])
def test_a_delivery_that_finishes_after_its_count_expired_leaves_no_key(settings, redis_client, crawl_id, how,
                                                                        monkeypatch):
    """A DECR after the count expired made it again at -1, with no expiry: a key leaked per page."""
    monkeypatch.setattr(app, "send_task", lambda *_a, **_k: None)
    key = Keys(settings.index_prefix).page_deliveries(crawl_id, PageURL(URL).key)
    task = fetch_task()
    with pytest.raises(Reject) if how == "requeue" else nullcontext():
        with redelivered_unless_recorded(task, settings) as counted:
            run = tasks.PageRun(task, settings, PageURL(URL), crawl_id, counted)
            assert run.within_cap() and 0 < redis_client.ttl(key)
            redis_client.delete(key)  # as if it expired while the page was fetched
            if how == "let_go":
                run.let_go()
            elif how == "finish":
                run.finish(UNCHANGED)
            elif how == "stage":
                run.fail("fetch", "http_404", "gone")
                staging = Staging(redis_client, settings.index_prefix)
                staging.remove(staging.take(100))
            else:
                raise RuntimeError("the failure could not be recorded")  # requeued, and off the count
    assert redis_client.exists(key) == 0


def test_a_count_left_without_an_expiry_gets_one_on_its_next_delivery(settings, redis_client, crawl_id):
    key = Keys(settings.index_prefix).page_deliveries(crawl_id, PageURL(URL).key)
    redis_client.set(key, -1)  # what an old DECR after expiry left
    assert delivery(settings, crawl_id).within_cap()
    assert 0 < redis_client.ttl(key)


def test_a_page_deferred_again_and_again_is_never_poison(settings, redis_client, crawl_id, monkeypatch):
    deferred = []
    monkeypatch.setattr(tasks, "profiles", lambda: SimpleNamespace(profile=lambda _c: SimpleNamespace(
        source=None, recheck_min=1, recheck_max=2, force=True)))

    def busy(*_a, **_k):
        raise Deferred(0.5, "host_busy", "127.0.0.1:9: every lease taken")

    monkeypatch.setattr(tasks, "polite_fetch", busy)
    monkeypatch.setattr(tasks, "defer", lambda _s, urls, *_a, **_k: deferred.extend(urls))
    for _ in range(settings.max_deliveries + 2):
        run = delivery(settings, crawl_id)
        assert tasks._page(run.task, settings, URL, crawl_id, delivery=run.delivery) == "deferred"
    assert deferred == [URL] * (settings.max_deliveries + 2)
    assert count(redis_client, settings, crawl_id) == 0


def test_a_suspect_page_that_waits_too_long_for_its_turn_is_sent_again_later(settings, redis_client, crawl_id,
                                                                               test_env):
    """A page in flight when its worker died runs alone among such pages of its process. One that
    waited HOST_MAX_INLINE_WAIT for its turn was deferred with a number where a deferral goes, and
    its fetch raised AttributeError instead of sending the page again."""
    import json

    import redis

    from tests.helpers import point_app_at
    from tests.test_crawl_start import unread_broker
    from workers.delivery import SUSPECTS
    from workers.task_names import FETCH_QUEUE

    point_app_at(unread_broker(test_env))
    broker = redis.Redis.from_url(unread_broker(test_env))
    broker.delete(FETCH_QUEUE)
    settings = replace(settings, host_max_inline_wait=0.05)
    redis_client.set(Keys(settings.index_prefix).page_deliveries(crawl_id, PageURL(URL).key), 1, ex=60)  # a death
    run = delivery(settings, crawl_id)
    with SUSPECTS:  # another such page runs in this process
        assert tasks._page(run.task, settings, URL, crawl_id, delivery=run.delivery) == "deferred"
    (message,) = [json.loads(raw) for raw in broker.lrange(FETCH_QUEUE, 0, -1)]
    assert message["headers"]["task"] == FETCH_PAGE and message["headers"]["eta"]
    broker.delete(FETCH_QUEUE)
