"""One contender, one site, one round: start it, time it until every document is searchable, measure it.

Every run gets fresh indices (its own index prefix) in the same Elasticsearch node.
The clock starts when the contender is told to go (the bare loop and Scrapy) or when
`report-ingest crawl` is started (the pipeline, whose worker is already up and idle),
and stops when a refresh + count of the reports alias finds every page. CPU and
memory are the contender's own processes only: Elasticsearch, Redis and the page
servers are left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meter import Stopwatch, TreeMeter, command_calls, command_delta
from sites import Site

HERE = Path(__file__).resolve().parent
# The pipeline's own politeness machinery runs, but its rate never throttles: every tool
# is held only by the same per-host concurrency limit.
UNTHROTTLED_RATE = "1000000"
POLL_INTERVAL = 0.2


class ContestError(RuntimeError):
    """A contender did not get every page searchable; the message says what happened."""


@dataclass
class Run:
    site: str
    contender: str
    round: int
    pages: int
    seconds: float
    cpu: float
    peak_rss: int
    machine_cpu: float  # every process on the machine during the run: the noise gauge
    transient_rss: int = 0  # peak of the `report-ingest crawl` process, not in `peak_rss`
    es_cpu: float = 0.0  # Elasticsearch's CPU during the run (all its clients', if shared)
    redis_cpu: float = 0.0  # Redis's CPU during the run (all its clients', if shared)
    enqueue_cpu: float = 0.0  # the `report-ingest crawl` process, part of `cpu`
    redis: Counter | None = None
    layout: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_ms_per_page(self) -> float:
        return 1000 * self.cpu / self.pages

    @property
    def others_cpu(self) -> float:
        """CPU seconds used during the run by neither the contender nor Elasticsearch and Redis:
        other jobs on the machine, the page server, this harness."""
        return self.machine_cpu - self.cpu - self.es_cpu - self.redis_cpu

    @property
    def redis_per_page(self) -> float | None:
        return None if self.redis is None else sum(self.redis.values()) / self.pages


def fresh_indices(contender: str):
    """Templates, indices and aliases under a prefix no other run uses (an IndexNames)."""
    from workers.clients import get_es
    from workers.index.indices import IndexNames, ensure_indices
    from workers.settings import get_settings

    names = IndexNames(f"h2h-{contender}-{uuid.uuid4().hex[:6]}-")
    ensure_indices(get_es(), names, get_settings().schemas_dir)
    return names


def drop(prefix: str) -> None:
    """Remove a run's indices, templates and Redis keys (names are unique to the run)."""
    from workers.clients import get_es, get_redis
    from workers.index.indices import KINDS

    es = get_es()
    if indices := list(es.indices.get(index=f"{prefix}*", expand_wildcards="all")):
        es.indices.delete(index=",".join(indices))
    es.options(ignore_status=404).indices.delete_index_template(
        name=",".join(f"{prefix}report-ingest-{kind}" for kind in KINDS))
    client = get_redis()
    for key in client.scan_iter(match=f"ri:{prefix}*", count=1000):
        client.delete(key)


def await_searchable(names, expected: int, *, finished: threading.Event | None,
                     problem: Callable[[], str | None], timeout: float) -> None:
    """Refresh and count until every page is searchable; fail fast when the contender cannot get there."""
    from workers.clients import get_es

    es, deadline = get_es(), time.monotonic() + timeout
    while True:
        # Read before counting: a count taken before the contender finished proves nothing.
        was_finished = finished is not None and finished.is_set()
        es.indices.refresh(index=names.reports)
        found = es.count(index=names.reports)["count"]
        if found >= expected:
            return
        if why := problem():
            raise ContestError(f"{found} of {expected} pages searchable: {why}")
        # Failure records only need to be seen eventually: no refresh of their index per poll.
        failed = es.count(index=names.failures)["count"]
        if failed and found + failed >= expected:
            hits = es.search(index=names.failures, size=100)["hits"]["hits"]
            reasons = Counter(h["_source"]["reason"] for h in hits)
            raise ContestError(f"{found} of {expected} pages searchable, {failed} failed: {dict(reasons)}")
        if was_finished:
            raise ContestError(f"the contender finished with only {found} of {expected} pages searchable")
        if time.monotonic() > deadline:
            raise ContestError(f"{found} of {expected} pages searchable after {timeout:.0f}s")
        if finished is not None:
            finished.wait(POLL_INTERVAL)
        else:
            time.sleep(POLL_INTERVAL)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def run_yardstick(kind: str, site: Site, round_: int, env: dict[str, str], timeout: float,
                  profile: Path | None = None) -> Run:
    """The bare loop or Scrapy (benchmarks/contenders.py) in a child process."""
    from workers.settings import get_settings

    settings = get_settings()
    names = fresh_indices(kind)
    workdir = Path(tempfile.mkdtemp(prefix=f"ri-h2h-{kind}-"))
    spec = workdir / "spec.json"
    spec.write_text(json.dumps({
        "urls": site.urls, "index": names.reports, "chunk": settings.bulk_chunk_size,
        "user_agent": settings.user_agent, "per_host": site.per_host, "concurrent_requests": site.total,
    }))
    log = workdir / "stderr.log"
    with log.open("wb") as err:
        child = subprocess.Popen([sys.executable, str(HERE / "contenders.py"), kind, str(spec)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                 env={**os.environ, **env, "INDEX_PREFIX": names.prefix})
    watch = None
    try:
        if child.stdout.readline().strip() != "ready":
            raise ContestError(f"{kind} did not start (log: {log}):\n{_tail(log)}")
        finished, report = threading.Event(), {}

        def read_done() -> None:
            line = child.stdout.readline()
            if line.startswith("done "):
                report.update(json.loads(line[5:]))
            finished.set()

        watch = Stopwatch(TreeMeter(child.pid), _profile_file(profile, site, kind, round_))
        watch.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        threading.Thread(target=read_done, daemon=True).start()
        await_searchable(names, len(site.urls), finished=finished, timeout=timeout,
                         problem=lambda: f"{kind} exited (log: {log}):\n{_tail(log)}"
                         if child.poll() is not None else None)
        measured = watch.stop()
        watch = None
        layout = ("1 process" if kind == "bare" else
                  f"1 process, CONCURRENT_REQUESTS={site.total}, PER_DOMAIN={site.per_host}")
        run = Run(site.kind, kind, round_, len(site.urls), layout=layout, **measured)
        run.extra.update(report)
    finally:
        if watch:
            watch.abandon()
        child.stdin.close()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        drop(names.prefix)
    shutil.rmtree(workdir)  # kept when the run failed, for its log
    return run


def _profile_file(profile: Path | None, site: Site, contender: str, round_: int) -> Path | None:
    return profile / f"{site.kind}-{contender}-r{round_}.txt" if profile else None


def _settle(meter: TreeMeter, idle_cpu: float = 0.03, window: float = 0.5, limit: float = 20.0) -> None:
    """Wait until the worker's start-up work is over, so none of it is measured."""
    end = time.monotonic() + limit
    before = meter.cpu()
    while time.monotonic() < end:
        time.sleep(window)
        now = meter.cpu()
        if now - before < idle_cpu:
            return
        before = now


def worker_layout(log: Path, meter: TreeMeter) -> str:
    """What the worker says it runs (its start banner) and what Celery reports, per node."""
    from workers.app import app

    answered = app.control.ping(timeout=0.5)
    nodes = app.control.inspect(timeout=2.0, limit=len(answered) or None).stats() or {}
    pools = []
    for name, stats in sorted(nodes.items()):
        pool = stats.get("pool", {})
        impl = str(pool.get("implementation", "?")).split(":")[0].rsplit(".", 1)[-1]
        pools.append(f"{name.split('@')[0]}: {impl} x{pool.get('max-concurrency', '?')}")
    said = [m.group(1).strip() for m in re.finditer(r"(?im)^.*?((?:concurrency|layout)\b.*)$", _tail(log, 20000))]
    processes = len(meter.processes())
    return "; ".join(pools) + f"; {processes} processes" + (f" (banner: {said[0]})" if said else "")


def _no_other_workers() -> None:
    """A worker already consuming this Redis database's queues would take the run's tasks."""
    from workers.app import app

    if others := app.control.ping(timeout=0.5):
        names = ", ".join(name for reply in others for name in reply)
        raise ContestError(f"other workers consume this Redis database's queues ({names}): "
                           "stop them or point REDIS_URL at a database of its own")


def purge_queues() -> None:
    """Drop tasks a failed earlier run may have left, so they cannot land in this run's indices."""
    from workers.app import app
    from workers.task_names import FETCH_QUEUE, INDEX_QUEUE, REINDEX_QUEUE

    with app.connection_for_write() as conn:
        for queue in (FETCH_QUEUE, INDEX_QUEUE, REINDEX_QUEUE):
            conn.default_channel.queue_purge(queue)


class Enqueue:
    """`report-ingest crawl URLS --allow-network CIDR... --no-wait` on the clock; its CPU comes from
    wait4 when it ends."""

    def __init__(self, cli: list[str], site: Site, env: dict[str, str], log: Path):
        with log.open("wb") as out:
            allow = [arg for cidr in site.networks for arg in ("--allow-network", cidr)]
            self.process = subprocess.Popen([*cli, "crawl", *site.urls, *allow, "--no-wait"],
                                            env=env, stdout=subprocess.DEVNULL, stderr=out)
        self.log = log
        self.cpu: float | None = None

    def reap(self, meter: TreeMeter, block: bool = False) -> int | None:
        """The exit code once it ended (its CPU then goes to the meter), else None."""
        if self.cpu is None:
            pid, status, usage = os.wait4(self.process.pid, 0 if block else os.WNOHANG)
            if not pid:
                return None
            self.process.returncode = os.waitstatus_to_exitcode(status)
            self.cpu = usage.ru_utime + usage.ru_stime
            meter.reaped(usage)
        return self.process.returncode

    def kill(self) -> None:
        if self.cpu is None:
            self.process.kill()
            self.process.wait()


def run_pipeline(contender: str, worker_args: list[str], site: Site, round_: int,
                 env: dict[str, str], timeout: float, profile: Path | None = None) -> Run:
    """`report-ingest worker [ARGS]` up and idle, then `report-ingest crawl URLS --no-wait` on the clock."""
    import redis

    from devtools import demo

    _no_other_workers()
    purge_queues()
    names = fresh_indices(contender)
    run_env = {**os.environ, **env, "INDEX_PREFIX": names.prefix, "DEFAULT_HOST_RATE": UNTHROTTLED_RATE,
               "DEFAULT_HOST_CONCURRENCY": str(site.per_host)}
    workdir = Path(tempfile.mkdtemp(prefix=f"ri-h2h-{contender}-"))
    log = workdir / "worker.log"
    cli = [sys.executable, "-m", "workers.cli"]
    with log.open("wb") as out:
        worker = subprocess.Popen([*cli, "worker", *worker_args], env=run_env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    commands = redis.Redis.from_url(env["REDIS_URL"])
    enqueue = watch = None
    try:
        demo.wait_for_worker(worker, echo=lambda _m: None, log=log)
        meter = TreeMeter(worker.pid)
        _settle(meter)
        layout = worker_layout(log, meter)
        watch = Stopwatch(meter, _profile_file(profile, site, contender, round_))
        calls0 = command_calls(commands)
        watch.start()
        enqueue = Enqueue(cli, site, run_env, workdir / "crawl.log")
        meter.watch(enqueue.process.pid)

        def problem() -> str | None:
            if worker.poll() is not None:
                return f"the worker exited (log: {log}):\n{_tail(log)}"
            if enqueue.reap(meter):
                return f"report-ingest crawl failed:\n{_tail(enqueue.log)}"
            return None

        await_searchable(names, len(site.urls), finished=None, problem=problem, timeout=timeout)
        calls1 = command_calls(commands)
        enqueue.reap(meter, block=True)  # if still exiting, its whole life was on the clock
        measured = watch.stop()
        watch = None
        run = Run(site.kind, contender, round_, len(site.urls), enqueue_cpu=enqueue.cpu,
                  redis=command_delta(calls0, calls1), layout=layout, **measured)
    finally:
        if watch:
            watch.abandon()
        if enqueue:
            enqueue.kill()
        demo.stop_worker(worker)
        commands.close()
        drop(names.prefix)
    shutil.rmtree(workdir)  # kept when the run failed, for its logs
    return run
