"""Starting a crawl streams its URLs, and a start stopped half way is finished by housekeeping."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from tests.helpers import cli, point_app_at
from tests.site import LocalSite, html
from tests.test_reliability import indexed_count, serve_reports
from workers.app import app
from workers.crawl import start, starts
from workers.tracking.progress import INDEXED, QUEUED, CrawlTracker
from workers.crawl.progress import watch
from workers.crawl.start import start_crawl

EXTRA_ENV = {"HOUSEKEEPING_INTERVAL": "0.5"}


def unread_broker(test_env) -> str:
    """A database of the session's Redis no worker reads: the messages of these example.org URLs
    must never be fetched (a worker that took them would look the hosts up)."""
    return test_env["REDIS_URL"].rsplit("/", 1)[0] + "/15"


def unswept(settings):
    """Settings whose crawls no worker of the session reconciles: a crawl left queued without its
    messages had the module's worker fetch a thousand unreachable URLs before the next test's."""
    return replace(settings, index_prefix=f"{settings.index_prefix}unswept-")


def test_a_start_reads_its_urls_a_chunk_at_a_time(redis_client, settings, test_env, monkeypatch):
    point_app_at(unread_broker(test_env))
    monkeypatch.setattr(start, "START_CHUNK", 10)
    read = 0

    def urls():
        nonlocal read
        for i in range(25):
            read += 1
            yield f"https://example.org/stream/{i}"

    seen = []
    plan = start_crawl(unswept(settings), urls(), progress=lambda plan: seen.append((plan.queued, read)))
    try:
        assert seen == [(10, 10), (20, 20), (25, 25)]  # each step sent before the next was read
        assert (plan.queued, plan.duplicates) == (25, 0)
    finally:
        redis.Redis.from_url(unread_broker(test_env)).flushdb()
        point_app_at(test_env["REDIS_URL"])


def test_a_start_sends_a_steps_messages_in_a_few_round_trips(redis_client, settings, test_env):
    broker = unread_broker(test_env)
    point_app_at(broker)
    reads = redis_client.info("stats")["total_reads_processed"]  # one per request Redis read off a socket
    try:
        start_crawl(unswept(settings), (f"https://example.org/trips/{i}" for i in range(start.START_CHUNK)))
        reads = redis_client.info("stats")["total_reads_processed"] - reads
        messages = redis.Redis.from_url(broker).llen("fetch")
        assert messages >= 100
        assert reads < messages / 2  # sent one by one, each message was a round trip (147 reads)
    finally:
        redis.Redis.from_url(broker).flushdb()
        point_app_at(test_env["REDIS_URL"])


def test_crawl_from_file_reads_urls_one_a_line_with_comments_and_errors(test_env, redis_client):
    lines = "# reports to crawl\nhttps://example.org/a\n\nhttps://example.org/a\nnot-a-url\nhttps://example.org/b\n"
    result = cli(test_env, "crawl", "--from-file", "-", "--no-wait", input=lines)
    redis_client.delete("fetch")
    assert result.returncode == 1, result.stderr  # the invalid line
    assert "queued 2 URLs (1 duplicates dropped, 1 invalid)" in result.stderr
    assert "error: not an http(s) URL: 'not-a-url'" in result.stderr


def test_a_start_stopped_half_way_is_finished_by_housekeeping(worker, settings, redis_client, es, names,
                                                              monkeypatch):
    site = LocalSite()
    try:
        urls = serve_reports(site, 950, 4)
        monkeypatch.setattr(start, "START_CHUNK", 2)
        monkeypatch.setattr(starts, "START_LEASE", 1.0)
        sent = []
        real_send = app.send_task

        def send_then_lose_the_broker(*args, **kwargs):
            if len(sent) == 2:  # the second step's URLs are recorded as queued, their messages never sent
                raise ConnectionError("broker connection lost")
            sent.append(args)
            return real_send(*args, **kwargs)

        monkeypatch.setattr(app, "send_task", send_then_lose_the_broker)
        with pytest.raises(ConnectionError):
            start_crawl(settings, urls, allow_networks=["127.0.0.1/32"], crawl_id="stopped-start")
        monkeypatch.setattr(app, "send_task", real_send)
        tracker = CrawlTracker(redis_client, settings.index_prefix, "stopped-start")
        assert tracker.counts()[QUEUED] + tracker.counts()[INDEXED] == 4
        snap = watch(tracker, interval=0.2, timeout=90, echo=lambda _line: None)
        assert snap.counts == {INDEXED: 4}
        assert indexed_count(es, names, urls) == 4
    finally:
        site.close()


def test_crawl_sitemap_streams_its_urls_and_reports_its_errors(test_env, redis_client):
    site = LocalSite()
    try:
        locs = "".join(f"<url><loc>{site.url(f'/r/{i}.html')}</loc></url>" for i in range(3))
        site.routes["/sitemap.xml"] = html(f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}'
                                           "<url><loc>not a url</loc></url></urlset>", content_type="application/xml")
        result = cli(test_env, "crawl", "--sitemap", site.url("/sitemap.xml"), "--no-wait",
                     "--allow-network", "127.0.0.1/32")
    finally:
        site.close()
        redis_client.delete("fetch")
    assert result.returncode == 1, result.stderr  # the bad <loc>
    assert f"sitemap {site.url('/sitemap.xml')}: 3 URLs" in result.stderr
    assert "queued 3 URLs (0 duplicates dropped, 0 invalid)" in result.stderr
    assert "invalid <loc> 'not a url'" in result.stderr
