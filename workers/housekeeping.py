"""What every worker does on the side, so nothing waits for beat or for the visibility timeout.

Two threads in each worker's main process, every HOUSEKEEPING_INTERVAL seconds:

1. the heartbeat publishes the broker delivery tags this worker holds (running,
   reserved, waiting for a countdown) to a key that expires after ORPHAN_GRACE;
   nothing else runs in its thread, so no sweep can make a live worker look dead;
2. the sweeper, one worker at a time (a lock held for the whole sweep, SweepLock), sweeps:
   - parked pages that are due go back on the fetch queue (workers/crawl/parked.py);
   - orphaned messages go back on their queue: delivered more than ORPHAN_GRACE
     ago, unacknowledged, and held by no live worker. That is what a worker
     killed with SIGKILL leaves behind, and a task cancelled when the broker
     connection dropped. Without this they would wait for the broker's
     visibility timeout (an hour by default) before anyone saw them again;
   - staged entries with no index run coming (its trigger expired with a lost
     run) get a new index run;
   - a crawl start that stopped half way asks for a reconciliation;
   - a page of URL states of the old layout moves to the packed one (until none is left);
   - at most every ALERTS_SWEEP_INTERVAL, alerts whose delivery was lost are sent again
     (workers/watches/tasks.py, asked by task name);
   and, outside the lock, runs a slice of the reconciliation it holds: after a
   worker reconnected to the broker, or died, crawl URLs whose fetch message was
   lost with it are sent again (workers/crawl/reconcile.py), in steps of bounded
   work under a lease, whatever the size of the crawls.

Requeueing uses kombu's own restore (the same one the visibility timeout uses),
under kombu's mutex, so a message is put back once (workers/fixes/kombu_unacked.py). A worker that stalls for
longer than ORPHAN_GRACE may see one of its tasks run twice: writes are
idempotent, and that is the at-least-once the system promises.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import redis
from celery import bootsteps, signals
from celery.bootsteps import CLOSE
from celery.worker import state

from workers import redis_clock
from workers.fixes import kombu_unacked
from workers.heartbeats import BROKER_KEYS, beat, leave, live_workers
from workers.keys import Keys
from workers.crawl.parked import Parked
from workers.crawl.reconcile import Reconciler
from workers.tracking.state import CrawlState
from workers.crawl.starts import CrawlStarts
from workers.settings import get_settings
from workers.task_names import FETCH_PAGE, INDEX_PENDING, REDELIVER_ALERTS
from workers.index.staging import TRIGGER_TTL, Staging
from workers.sentinel import redis_client

log = logging.getLogger(__name__)
# How long a reconciliation stays with the worker running it after its last step; then another takes it over.
RECONCILE_LEASE = 30.0


def held_tags(consumer) -> set[str]:
    """Delivery tags of every message this worker holds and can still acknowledge, read from the
    worker's own state.

    A message delivered over a connection that has since dropped is not held: Celery cannot
    acknowledge it any more ("cannot be acknowledged after a connection loss"), so it would sit
    in the broker's unacked set until the visibility timeout, while its request may linger in
    the worker's state.
    """
    for _attempt in range(5):  # the main thread changes these while we read them
        try:
            task_consumer = consumer.task_consumer
            channel = task_consumer.channel if task_consumer is not None else None
            requests = [*state.requests.values(), *state.reserved_requests, *state.active_requests,
                        *state.scheduled_requests]
            tags = {r.message.delivery_tag for r in requests
                    if r.message is not None and r.message.channel is channel}
            if channel is not None:
                tags.update(kombu_unacked.delivered_tags(channel.qos))
            return tags
        except RuntimeError:
            continue
    raise RuntimeError("could not read the worker's held messages")


class LostSweepLock(Exception):
    """The sweep's lock lapsed or another sweeper took it: this sweep stops where it is."""


# KEYS[1] lock; ARGV token, ms. Renews the lock only while this sweep holds it.
_KEEP_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class SweepLock:
    """Held by one sweep from its start to its end, so sweeps never overlap: taken for `hold`
    seconds, renewed for as long again before each step, then kept one more `round_`, so the
    workers sweep one at a time, a round apart. (It lasted one round and was never renewed:
    a slow sweep overlapped the next one, which sent due parked pages a second time.)"""

    def __init__(self, client: redis.Redis, key: str, node: str, hold: float, round_: float):
        self.redis, self.key = client, key
        self.token = f"{node}:{uuid.uuid4().hex}"
        self.hold_ms, self.round_ms = int(hold * 1000), int(round_ * 1000)

    def take(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.hold_ms))

    def keep(self) -> None:
        if not self.redis.eval(_KEEP_IF_OURS, 1, self.key, self.token, self.hold_ms):
            raise LostSweepLock("the housekeeping sweep lock lapsed; another worker sweeps now")

    def finish(self) -> None:
        # Best effort: a lock that cannot be shortened lapses by itself.
        try:
            self.redis.eval(_KEEP_IF_OURS, 1, self.key, self.token, self.round_ms)
        except redis.RedisError as exc:
            log.warning("could not hand back the sweep lock (%s); it lapses by itself", exc)


class Sweeper:
    def __init__(self, app, node: str, held, client: redis.Redis):
        self.app, self.node, self.held, self.redis = app, node, held, client
        self.settings = get_settings()
        self.keys = Keys(self.settings.index_prefix)
        self.reconciler = Reconciler(client, self.settings.index_prefix, app.conf.task_routes[FETCH_PAGE]["queue"])
        self.reconciling: Iterator[list[tuple[str, str]]] | None = None
        self.reconcile_sent, self.reconcile_started = 0, 0.0
        self.first_beat = True
        self.stopped = threading.Event()

    def beat_forever(self) -> None:
        """The heartbeat, in a thread of its own: no sweep or reconciliation, however long, delays it
        past ORPHAN_GRACE (other workers would take this one for dead and requeue what it runs)."""
        self._every_interval(self.heartbeat)

    def leave(self, **_signal) -> None:
        """After the worker stopped: its pool's last task acknowledged, its broker channel closed (kombu
        reads a BRPOP still in flight into the unacknowledged set, where the orphan sweep finds it)."""
        try:
            leave(self.redis, self.node)
        except redis.RedisError as exc:
            log.warning("could not take this worker off the live ones (%s): starting it again under its "
                        "name reconciles the open crawls", exc)

    def sweep_forever(self) -> None:
        with self.app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            self._every_interval(lambda: self.sweep(qos))

    def _every_interval(self, work) -> None:
        while not self.stopped.wait(self.settings.housekeeping_interval):
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - housekeeping must outlive any outage
                log.warning("housekeeping skipped a round: %s", exc)

    def heartbeat(self) -> None:
        """Publish the delivery tags this worker holds, and that it is alive (on Redis's clock)."""
        tags = self.held()
        if self.first_beat:
            # This node beat before this consumer started: it reconnected to the broker, or an
            # earlier process of the same name died. Either may have lost a message it had just
            # taken off a queue (workers/crawl/reconcile.py). Orphans need not be requeued first:
            # unacknowledged, they count as messages that exist.
            if self.redis.zscore(BROKER_KEYS.consumers, self.node) is not None:
                self.reconciler.request(redis_clock.sync(self.redis))
            self.first_beat = False
        beat(self.redis, self.node, tags, self.settings.orphan_grace)

    def sweep(self, qos) -> None:
        grace, interval = self.settings.orphan_grace, self.settings.housekeeping_interval
        now = redis_clock.sync(self.redis)
        lock = SweepLock(self.redis, self.keys.housekeeping, self.node, hold=max(grace, interval), round_=interval)
        if lock.take():
            try:
                for step in (self.requeue_parked, lambda: self.requeue_orphans(qos, now, grace), self.trigger_indexing,
                             lambda: self.recover_starts(now),
                             CrawlState(self.redis, self.settings.index_prefix).move_legacy,
                             self.redeliver_alerts):
                    step()
                    lock.keep()
            finally:
                lock.finish()
        self.reconcile(now)

    def recover_starts(self, now: float) -> None:
        """A crawl start that stopped half way (its lease ran out) may have recorded URLs as queued
        without sending them: the reconciliation sends them (workers/crawl/starts.py)."""
        starts = CrawlStarts(self.redis, self.settings.index_prefix)
        if stopped := starts.stopped(now):
            self.reconciler.request(now)
            for crawl_id in stopped:
                starts.release(crawl_id)
            log.warning("crawl start(s) %s stopped before they finished; reconciling", ", ".join(stopped))

    def requeue_parked(self) -> None:
        if sent := Parked(self.redis, self.settings.index_prefix).requeue_due(
                lambda page: self.app.send_task(FETCH_PAGE, kwargs=page.fetch_kwargs())):
            log.info("requeued %d parked page(s)", sent)

    def requeue_orphans(self, qos, now: float, grace: float) -> None:
        live = live_workers(self.redis, grace, now)
        if dead := self.redis.zrangebyscore(BROKER_KEYS.consumers, "-inf", now - grace):
            # A worker that died and stays dead may have lost a message too (see tick()).
            self.redis.zrem(BROKER_KEYS.consumers, *dead)
            self.reconciler.request(now)
        held = self.redis.sunion([BROKER_KEYS.consumer(node) for node in live]) if live else set()
        orphans = [tag for tag in kombu_unacked.delivered_before(self.redis, qos, now - grace) if tag not in held]
        if not orphans or not kombu_unacked.restore(self.redis, qos, orphans):
            return  # nothing held by no one, or kombu is restoring by visibility timeout right now
        log.warning("requeued %d message(s) no live worker holds (a worker died, or lost its broker "
                    "connection)", len(orphans))

    def trigger_indexing(self) -> None:
        queue = Staging(self.redis, self.settings.index_prefix)
        if queue.size() and queue.claim_trigger(ttl=TRIGGER_TTL):
            self.app.send_task(INDEX_PENDING)
            log.info("staged entries had no index run coming; started one")

    def redeliver_alerts(self) -> None:
        """An alert whose delivery task was lost (a worker died as it raised the alert) would stay
        pending: at most once per ALERTS_SWEEP_INTERVAL across workers, ask the watches to send
        again the alerts past their due time. By name: the watches sit above housekeeping."""
        interval_ms = int(self.settings.alerts_sweep_interval * 1000)
        if self.settings.watches_file is not None and self.redis.set(self.keys.alerts_sweep, "1", nx=True,
                                                                      px=interval_ms):
            self.app.send_task(REDELIVER_ALERTS)

    def reconcile(self, now: float) -> None:
        """Run a slice of the reconciliation this worker holds, or claim one that is due: steps of
        bounded work (workers/crawl/reconcile.py) for at most half an interval, so the sweep goes on."""
        lease = RECONCILE_LEASE
        if self.reconciling is None:
            if not self.reconciler.claim(now, self.node, lease):
                return
            self.reconciling = self.reconciler.lost_fetches()
            self.reconcile_sent, self.reconcile_started = 0, time.monotonic()
        elif not self.reconciler.renew(self.node, lease):
            self.reconciling = None  # our lease expired: another worker runs it from the start
            return
        deadline = time.monotonic() + self.settings.housekeeping_interval / 2
        try:
            while time.monotonic() < deadline:
                for url, crawl_id in next(self.reconciling):
                    self.app.send_task(FETCH_PAGE, args=(url, crawl_id))
                    self.reconcile_sent += 1
        except StopIteration:
            self.reconciling = None
            self.reconciler.end(self.node)
            log.log(logging.WARNING if self.reconcile_sent else logging.INFO,
                    "reconciliation ended in %.1fs: sent %d crawl page(s) again whose fetch message was lost (a "
                    "broker connection dropped, or a worker died, as it took the message)",
                    time.monotonic() - self.reconcile_started, self.reconcile_sent)
        except Exception:
            self.reconciling = None  # the lease expires and the claimed run is taken up again
            raise


class Housekeeping(bootsteps.StartStopStep):
    """Runs the Sweeper in a thread of the worker's main process (see the module doc)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.sweeper: Sweeper | None = None
        self.threads: list[threading.Thread] = []

    def start(self, c) -> None:
        settings = get_settings()
        # Its own connections with timeouts: a stalled Redis must not stall this thread for minutes.
        client = redis_client(settings)
        # The consumer starts this step again each time it reconnects to the broker.
        self.sweeper = Sweeper(c.app, c.hostname, lambda: held_tags(c), client)
        self.threads = [threading.Thread(target=self.sweeper.beat_forever, name="heartbeat", daemon=True),
                        threading.Thread(target=self.sweeper.sweep_forever, name="housekeeping", daemon=True)]
        for thread in self.threads:
            thread.start()

    def stop(self, c) -> None:
        sweeper = self.sweeper
        if sweeper is not None:
            sweeper.stopped.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.sweeper, self.threads = None, []
        # The consumer is CLOSE when the worker stops, RUN when it restarts to reconnect. A reconnect may
        # have lost a message, and so may a worker that never beat since it (re)connected: both keep their
        # place, so the first beat under their name asks for a reconciliation. A worker that stops cleanly
        # leaves once it has stopped (worker_shutdown, not sent by a cold shutdown): a rolling restart
        # at a million queued URLs would otherwise reconcile them all once per worker.
        if sweeper is not None and not sweeper.first_beat and c.blueprint.state == CLOSE:
            signals.worker_shutdown.connect(sweeper.leave, weak=False)

    shutdown = stop
