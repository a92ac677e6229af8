"""Parked pages go back on the fetch queue once each, and none is lost on the way: on a real Redis."""

from __future__ import annotations

import uuid

import pytest

from workers.crawl.parked import Parked

URLS = [f"http://127.0.0.1:9/report-{i}" for i in range(3)]


@pytest.fixture
def parked(redis_client) -> Parked:
    return Parked(redis_client, f"parked-{uuid.uuid4().hex[:8]}-")


def test_a_page_parked_again_while_its_sweep_sends_it_stays_parked(parked):
    """A worker that takes a requeued page at once and parks it again (its host still has it wait)
    writes the same member: the sweep's removal after sending used to delete it, and the page was
    in no queue and no parked set, "queued" for ever."""
    for url in URLS:
        parked.park(url, "c1", 0)
    sent = []

    def send_and_park_again(kwargs: dict) -> None:
        sent.append(kwargs["url"])
        parked.park(kwargs["url"], kwargs["crawl_id"], 90)  # the worker, Crawl-delay: 90

    assert parked.requeue_due(send_and_park_again) == 3
    assert sorted(sent) == URLS
    assert parked.size() == 3  # each parked again, none lost
    assert parked.requeue_due(sent.append) == 0  # and not due before its time


def test_parked_pages_that_could_not_be_sent_are_put_back(parked):
    for url in URLS:
        parked.park(url, "c1", 0)
    sent = []

    def broker_goes_away(kwargs: dict) -> None:
        if len(sent) == 1:
            raise ConnectionError("broker gone")
        sent.append(kwargs["url"])

    with pytest.raises(ConnectionError):
        parked.requeue_due(broker_goes_away)
    assert parked.size() == 2  # the two not sent
    assert parked.requeue_due(lambda kwargs: sent.append(kwargs["url"])) == 2
    assert sorted(sent) == URLS and parked.size() == 0
