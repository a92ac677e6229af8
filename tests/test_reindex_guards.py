"""What stops a rebuild before it can do harm (issue 9, defects 7 and 8): real Redis, Elasticsearch and worker.

A rebuild that lost its lock must neither write nor swap; a rebuild whose new
index would hold fewer documents than the live one, for reasons it cannot
explain, must not swap (and so must not delete the old index); a dead
coordinator's dual-write ("shadow") key must not outlive it.
"""

from __future__ import annotations

import signal
import uuid

import pytest
import redis

from tests.helpers import cli
from tests.reindexing import (  # noqa: F401
    ReportSite, consumer, crawled, documents, live, rebuild_running, reindex_queue_idle, site, start_reindex,
    wait_until,
)
from devtools import services as devservices
from workers.urls import doc_id

PAGES = 12
CHUNKS = 4


def raises_rebuild_error(check) -> bool:
    from workers.rebuild.errors import RebuildError

    try:
        check()
    except RebuildError:
        return True
    return False


def assert_wrote_nothing_and_old_serves(es, names, redis_client, target: str, old: str) -> None:
    """Once no chunk waits or runs: the stopped run's target is empty, the old index serves."""
    wait_until(lambda: reindex_queue_idle(redis_client))
    es.indices.refresh(index=target)
    assert es.count(index=target)["count"] == 0, "a chunk wrote for a run that lost its lock"
    assert live(es, names) == old and es.indices.exists(index=old)


def test_heartbeat_lost_to_a_redis_outage_stops_the_rebuild(tmp_path):
    """A Redis of its own, stopped and started empty: the shared one must never see this fault."""
    from workers.keys import Keys
    from workers.rebuild.errors import RebuildError
    from workers.rebuild.lock import RebuildLock

    server = devservices.start_redis(tmp_path / "before")
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    keys = Keys("outage-")

    def connect() -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5)

    ttl = 1.0
    heartbeat = RebuildLock(connect(), keys, ttl).acquire(0, print)
    try:
        with heartbeat:
            assert not raises_rebuild_error(heartbeat.check)
            server.stop()  # every renewal now fails with a connection error
            wait_until(lambda: raises_rebuild_error(heartbeat.check), timeout=10)
            server = devservices.start_redis(tmp_path / "after", port=port)
            # Back, and the lock long expired: another rebuild takes it.
            RebuildLock(connect(), keys, 30).acquire(0, print)
            with pytest.raises(RebuildError, match="lost the rebuild lock"):
                heartbeat.check()
    finally:
        server.stop()


def test_a_rebuild_that_lost_its_lock_never_writes_or_swaps(
        crawled, es, names, redis_client, test_env, consumer):
    from workers.keys import Keys
    from workers.rebuild.state import load_run

    keys = Keys(names.prefix)
    old = live(es, names)
    consumer.pause()
    proc = start_reindex(test_env, "--chunks", str(CHUNKS), "--lock-ttl", "3")
    try:
        wait_until(rebuild_running(redis_client, names))
        state = load_run(redis_client, keys)
        wait_until(lambda: redis_client.llen("reindex") == CHUNKS)
        # The lock expired unnoticed and another rebuild took it.
        redis_client.set(keys.rebuild_lock, "another-rebuild", px=60_000)
        consumer.resume()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "lost the rebuild lock" in err

        assert_wrote_nothing_and_old_serves(es, names, redis_client, state.target, old)
    finally:
        proc.kill()
        redis_client.delete(keys.rebuild_lock)


def test_chunks_renew_the_lock_only_of_a_run_handed_on_to_them(redis_client):
    """A task-run rebuild's chunks are its heartbeat while no process drives it; a CLI-run's are not,
    so a dead coordinator's lock expires however long its chunks run."""
    from workers.keys import Keys
    from workers.rebuild.errors import StaleRun
    from workers.rebuild.lock import owned_run
    from workers.rebuild.state import RunState, save_run

    keys = Keys(f"renew-{uuid.uuid4().hex[:6]}-")
    state = RunState("run", "reparse", CHUNKS, "target", "old", "2026-01-01T00:00:00", owner="token", lock_ttl=30)

    def hold(token: str, ttl_ms: int = 1000) -> None:
        redis_client.set(keys.rebuild_lock, token, px=ttl_ms)
        redis_client.set(keys.rebuild_shadow, "target", px=ttl_ms)

    try:
        save_run(redis_client, keys, state)
        hold("token")
        owned_run(redis_client, keys, "run")
        assert redis_client.pttl(keys.rebuild_lock) > 1000 and redis_client.pttl(keys.rebuild_shadow) > 1000

        hold("another-rebuild")
        with pytest.raises(StaleRun):
            owned_run(redis_client, keys, "run")
        assert redis_client.pttl(keys.rebuild_lock) <= 1000 and redis_client.pttl(keys.rebuild_shadow) <= 1000

        state.lock_ttl = None  # a coordinator's heartbeat renews it
        save_run(redis_client, keys, state)
        hold("token")
        owned_run(redis_client, keys, "run")
        assert redis_client.pttl(keys.rebuild_lock) <= 1000
    finally:
        redis_client.delete(keys.rebuild_run, keys.rebuild_lock, keys.rebuild_shadow)


def test_a_rebuild_task_that_lost_its_lock_never_writes_or_swaps(
        crawled, es, names, redis_client, worker, consumer):
    """Between its start and its chord callback no process heartbeats a task-run rebuild: its chunks
    renew the lock before every write, so a chunk that finds it taken stops, and so does the callback."""
    from workers.app import app
    from workers.keys import Keys
    from workers.rebuild.state import load_run
    from workers.rebuild.tasks import rebuild_index

    keys = Keys(names.prefix)
    old = live(es, names)
    start_queue = f"rebuild-start-{names.prefix}"
    lost_before = worker.log.read_text().count("lost the rebuild lock")
    consumer.pause()
    assert app.control.add_consumer(start_queue, destination=[worker.node], reply=True)
    try:
        # The start runs on its own queue; its chunks wait in the reindex queue, which nobody consumes.
        rebuild_index.apply_async(kwargs={"chunks": CHUNKS, "lock_ttl": 30}, queue=start_queue)
        wait_until(lambda: redis_client.llen("reindex") == CHUNKS)
        state = load_run(redis_client, keys)
        assert state.lock_ttl == 30 and redis_client.get(keys.rebuild_lock) == state.owner  # handed on
        # The lock expired unnoticed and another rebuild took it.
        redis_client.set(keys.rebuild_lock, "another-rebuild", px=60_000)
        consumer.resume()
        wait_until(lambda: worker.log.read_text().count("lost the rebuild lock") > lost_before, 60)
        assert_wrote_nothing_and_old_serves(es, names, redis_client, state.target, old)
        assert redis_client.get(keys.rebuild_lock) == "another-rebuild"  # not released by the stopped run
    finally:
        app.control.cancel_consumer(start_queue, destination=[worker.node], reply=True)
        redis_client.delete(keys.rebuild_lock, keys.rebuild_shadow)  # the stopped run's would outlive the test


def test_shadow_key_expires_with_its_coordinator_and_resume_restores_it(
        crawled, es, names, settings, redis_client, test_env, consumer):
    from workers.keys import Keys
    from workers.rebuild.coordinator import rebuild
    from workers.rebuild.state import load_run
    from workers.rebuild.tasks import reindex_chunk

    keys = Keys(names.prefix)
    consumer.pause()
    proc = start_reindex(test_env, "--chunks", str(CHUNKS), "--lock-ttl", "2")
    wait_until(rebuild_running(redis_client, names))
    state = load_run(redis_client, keys)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Nobody is left to switch dual writes off: the key must go by itself.
    wait_until(lambda: not redis_client.exists(keys.rebuild_shadow), timeout=10)
    consumer.resume()

    shadow_during_resume: list[str | None] = []

    def submit(run_id: str, chunk: int) -> None:
        shadow_during_resume.append(redis_client.get(keys.rebuild_shadow))
        reindex_chunk.apply_async((run_id, chunk))

    summary = rebuild(es, redis_client, settings, resume=True, lock_ttl=2, submit=submit)
    assert summary.live == state.target == live(es, names)
    assert set(shadow_during_resume) <= {state.target}  # on again while the resumed run fills the target
    assert not redis_client.exists(keys.rebuild_shadow)


def all_ids(es, names, site: ReportSite) -> set[str]:
    """The report of every page the site serves, from the raw pages still stored."""
    found = es.mget(index=names.raw_pages, ids=[doc_id(url) for url in site.pages])["docs"]
    return {doc_id(d["_source"]["canonical_url"]) for d in found if d.get("found")}


def test_shrink_the_run_explains_is_allowed(crawled, site, es, names, test_env):
    """A page that no longer parses is a recorded failure, not a reason to keep the old index."""
    broken = 3
    raw_id = doc_id(site.page_url(broken))
    raw = es.get(index=names.raw_pages, id=raw_id)["_source"]
    es.update(index=names.raw_pages, id=raw_id, doc={"body": "PGh0bWw+PC9odG1sPg=="}, refresh=True)  # <html></html>
    try:
        result = cli(test_env, "reindex", "--chunks", str(CHUNKS))
        assert result.returncode == 0, result.stderr
        assert "1 parse failures" in result.stdout
        assert {d["id"] for d in documents(es, names)} == all_ids(es, names, site) - {doc_id(raw["canonical_url"])}
    finally:
        es.index(index=names.raw_pages, id=raw_id, document=raw, refresh=True)


def test_rebuild_refuses_to_shrink_the_corpus(crawled, site, es, names, test_env):
    old = live(es, names)
    before = {d["id"] for d in documents(es, names)}
    lost = [0, 1, 2]
    raws = {i: es.get(index=names.raw_pages, id=doc_id(site.page_url(i)))["_source"] for i in lost}
    lost_ids = {doc_id(raw["canonical_url"]) for raw in raws.values()}
    for i in lost:  # their raw pages vanish: a rebuild from raw pages would drop their reports
        es.delete(index=names.raw_pages, id=doc_id(site.page_url(i)), refresh=True)
    try:
        result = cli(test_env, "reindex", "--chunks", str(CHUNKS))
        assert result.returncode == 1, result.stdout
        assert "refusing to swap" in result.stderr and "3 documents" in result.stderr, result.stderr
        assert any(i in result.stderr for i in lost_ids), result.stderr  # names examples
        assert live(es, names) == old and {d["id"] for d in documents(es, names)} == before

        # Deliberately smaller: the operator says so.
        result = cli(test_env, "reindex", "--chunks", str(CHUNKS), "--allow-shrink")
        assert result.returncode == 0, result.stderr
        assert {d["id"] for d in documents(es, names)} == all_ids(es, names, site) - lost_ids
    finally:
        for i, raw in raws.items():
            es.index(index=names.raw_pages, id=doc_id(site.page_url(i)), document=raw, refresh=True)
