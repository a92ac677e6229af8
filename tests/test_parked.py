"""Parked pages go back on the fetch queue once each, and none is lost on the way: on a real Redis."""

from __future__ import annotations

import uuid

import pytest

from workers.crawl.parked import Parked, ParkedPage

URLS = [f"http://127.0.0.1:9/report-{i}" for i in range(3)]


@pytest.fixture
def parked(redis_client) -> Parked:
    return Parked(redis_client, f"parked-{uuid.uuid4().hex[:8]}-")


def test_a_page_parked_again_while_its_sweep_sends_it_stays_parked(parked):
    """A worker that takes a requeued page at once and parks it again (its host still has it wait)
    writes the same member: the sweep's removal after sending used to delete it, and the page was
    in no queue and no parked set, "queued" for ever."""
    for url in URLS:
        parked.park(ParkedPage(url, "c1"), 0)
    sent = []

    def send_and_park_again(page: ParkedPage) -> None:
        sent.append(page.url)
        parked.park(page, 90)  # the worker, Crawl-delay: 90

    assert parked.requeue_due(send_and_park_again) == 3
    assert sorted(sent) == URLS
    assert parked.size() == 3  # each parked again, none lost
    assert parked.requeue_due(sent.append) == 0  # and not due before its time


def test_parked_pages_that_could_not_be_sent_are_put_back(parked):
    for url in URLS:
        parked.park(ParkedPage(url, "c1"), 0)
    sent = []

    def broker_goes_away(page: ParkedPage) -> None:
        if len(sent) == 1:
            raise ConnectionError("broker gone")
        sent.append(page.url)

    with pytest.raises(ConnectionError):
        parked.requeue_due(broker_goes_away)
    assert parked.size() == 2  # the two not sent
    assert parked.requeue_due(lambda page: sent.append(page.url)) == 2
    assert sorted(sent) == URLS and parked.size() == 0


def test_a_sweep_holds_its_lock_until_it_ends_and_one_round_more(test_env, settings, redis_client):
    """The sweep lock lasted one round and was never renewed: a sweep slower than that overlapped
    the next one, which sent due parked pages a second time."""
    from types import SimpleNamespace

    from tests.helpers import point_app_at
    from workers.app import app
    from workers.housekeeping import Sweeper
    from workers.keys import Keys

    point_app_at(test_env["REDIS_URL"])

    lock = Keys(settings.index_prefix).housekeeping
    round_ms = settings.housekeeping_interval * 1000
    during = []

    def send_task(_name, kwargs=None, **_options):
        # Mid-sweep: the lock outlasts a round, so a sweep this slow is not overlapped.
        during.append((redis_client.pttl(lock), redis_client.get(lock)))

    Parked(redis_client, settings.index_prefix).park(ParkedPage(URLS[0], "c1"), 0)
    sweeper = Sweeper(SimpleNamespace(conf=app.conf, send_task=send_task), "sweeper@test", set, redis_client)
    other = Sweeper(SimpleNamespace(conf=app.conf, send_task=send_task), "other@test", set, redis_client)
    with app.connection_for_write() as connection:
        qos = connection.default_channel.qos
        sweeper.sweep(qos)
        assert len(during) == 1 and during[0][0] > round_ms and during[0][1].startswith("sweeper@test:")
        assert 0 < redis_client.pttl(lock) <= round_ms  # kept one more round, then anyone may sweep
        Parked(redis_client, settings.index_prefix).park(ParkedPage(URLS[1], "c1"), 0)
        other.sweep(qos)
        assert len(during) == 1  # not this round
        redis_client.delete(lock)
        other.sweep(qos)
        assert len(during) == 2
