"""A crawl of a million URLs on loopback: what the size of a crawl costs, and what stays bounded.

Against its own Redis and Elasticsearch, a local nginx site (1,000 generated report pages
behind any number of URLs: /r/NNNNNNN.html serves page NNN), and the default worker layout:

1. small: a crawl of --small URLs alone (after a warm-up crawl of 3,000); its rate (pages/s), and Redis's bytes per URL at rest
   once it finished (crawl state only: the crawl's own progress expires CRAWL_TTL later);
2. enqueue: `report-ingest crawl --from-file` of --urls URLs, no worker running: seconds, the
   CLI's peak RSS, and Redis's bytes per queued URL;
3. big: the worker started on the big crawl; its rate over its first --small pages, against 1;
   then a progress read and `report-ingest status`, ten times, while it goes on;
4. recovery: one worker process killed (SIGKILL) mid-crawl: how long until the reconciliation
   of the whole big crawl ended, and the pages it sent again;
5. outage: the big crawl dropped, Redis capped (maxmemory, noeviction) and STAGING_MAX_BYTES set
   under the cap; a crawl of --small new URLs while Elasticsearch is down for --outage seconds:
   Redis's peak memory against its cap, and every page indexed in the end.
Redis's slowest command (SLOWLOG, every command over 10 ms kept) is reported for each phase.
Redis runs alone on the last CPU, everything else on the others (--shared-cpus to share them).
Goals (issue 20): enqueue <= 60 s with the CLI <= 300 MB; the big crawl's rate within 10% of the
small one's; no Redis command over 50 ms; nothing lost in the outage, Redis under its cap.

    python benchmarks/scale.py [--urls 1000000] [--small 20000] [--outage 300]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from benchmarks.pipeline import start_services, use_env  # noqa: E402
from benchmarks.sites import NGINX_CONF, _nginx_binary  # noqa: E402
from devtools import services as devservices  # noqa: E402
from tests.corpus import report_page  # noqa: E402
from tests.helpers import Worker  # noqa: E402

PAGES = 1000
WARM_UP = 3000
SLOW_US = 10_000
# Every /r/NNNNNNN.html is page NNN: a million URLs from a thousand files.
LOCATIONS = """
        location ~ "^/r/\\d*(\\d\\d\\d)\\.html$" { default_type "text/html; charset=utf-8"; try_files /p/$1.html =404; }
"""


def set_redis_cpu_apart() -> int | None:
    """Keep the last CPU for Redis: this process, and every process it starts (they inherit it),
    runs on the others. On 2 shared cores the crawl's 32 fetch threads preempted Redis, and O(1)
    scripts showed 50-110 ms in the slow log: the time Redis waited for a CPU, not its work. A
    deployment gives Redis a core (or a host) of its own; so does this benchmark."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, cpus[:-1])
    return cpus[-1]


def give_redis_its_cpu(started: list, cpu: int) -> None:
    """Every thread of the Redis server this benchmark started onto `cpu` (affinity is per thread)."""
    redis = next((service for service in started if service.name == "redis"), None)
    if redis is None:
        raise SystemExit("--shared-cpus is needed with a Redis this benchmark did not start (REDIS_URL set)")
    root = psutil.Process(redis.process.pid)
    for process in [root, *root.children(recursive=True)]:
        if process.name() == "redis-server":
            for thread in process.threads():
                os.sched_setaffinity(thread.id, {cpu})


def nginx_site(workdir: Path) -> tuple[subprocess.Popen, str]:
    """nginx serving PAGES report pages behind every /r/NNNNNNN.html; its base URL."""
    binary = _nginx_binary()
    if binary is None or os.geteuid() != 0:
        raise SystemExit("benchmarks/scale.py needs nginx, run as root (`make bench` installs nginx-light)")
    root = workdir / "site"
    (root / "p").mkdir(parents=True)
    for i in range(PAGES):
        (root / "p" / f"{i:03d}.html").write_bytes(report_page(i, padding=2 + 2 * (i % 9)).html)
    (root / "robots.txt").write_bytes(b"User-agent: *\nDisallow: /private/\n")
    port = devservices.free_port()
    (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, port=port, root=root, locations=LOCATIONS))
    process = subprocess.Popen([binary, "-e", str(workdir / "error.log"), "-p", str(workdir), "-c",
                                str(workdir / "nginx.conf")], start_new_session=True)
    devservices.wait_for(lambda: devservices._port_in_use(port), deadline=10,
                         alive=lambda: None if process.poll() is None else "nginx exited", what="nginx")
    return process, f"http://127.0.0.1:{port}"


def url_file(base: str, first: int, count: int, workdir: Path) -> Path:
    path = workdir / f"urls-{first}-{count}.txt"
    with path.open("w") as out:
        for i in range(first, first + count):
            out.write(f"{base}/r/{i:07d}.html\n")
    return path


class Slowlog:
    """Redis's slowest command since the last `take`."""

    def __init__(self, client):
        self.redis = client
        client.config_set("slowlog-log-slower-than", SLOW_US)
        client.config_set("slowlog-max-len", 1024)
        client.slowlog_reset()

    def take(self) -> str:
        entries = self.redis.slowlog_get(1024)
        self.redis.slowlog_reset()
        if not entries:
            return f"none over {SLOW_US / 1000:.0f} ms"
        worst = max(entries, key=lambda e: e["duration"])
        return f"{worst['duration'] / 1000:.1f} ms ({worst['command'][:60]!r}), {len(entries)} over {SLOW_US / 1000:.0f} ms"


def wait_done(tracker, count: int, timeout: float, since: float | None = None) -> float:
    """Seconds (from `since`, else now) until `count` of the crawl's URLs are done (SystemExit past `timeout`)."""
    start = time.monotonic() if since is None else since
    while True:
        counts = tracker.counts()
        if sum(n for state, n in counts.items() if state not in ("queued", "fetched")) >= count:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(f"not {count} done within {timeout:.0f}s: {dict(counts)}")
        time.sleep(0.2)


def state_bytes(client, settings, tracker) -> float:
    """Redis's memory per URL of the crawl state of `tracker`'s URLs: what deleting it frees."""
    from workers.tracking.state import CrawlState
    from workers.urls import PageURL

    state = CrawlState(client, settings.index_prefix)
    urls = [url for url, _state in client.hscan_iter(tracker.key, count=1000)]
    before = client.info("memory")["used_memory"]
    for start in range(0, len(urls), 1000):
        client.unlink(*[state.key(PageURL(url)) for url in urls[start:start + 1000]])
    return (before - client.info("memory")["used_memory"]) / max(len(urls), 1)


def failure_reasons(settings) -> str:
    from workers.clients import get_es
    from workers.index.indices import IndexNames

    es, names = get_es(), IndexNames(settings.index_prefix)
    es.indices.refresh(index=names.failures)
    found = es.search(index=names.failures, size=1, aggs={"r": {"terms": {"field": "reason"}}})
    sample = [f" (e.g. {hit['_source']['url']}: {hit['_source']['detail'][:120]})" for hit in found["hits"]["hits"]]
    return "".join(f", {b['doc_count']} {b['key']}" for b in found["aggregations"]["r"]["buckets"]) + "".join(sample)


def enqueue(env: dict, path: Path) -> tuple[float, float, str]:
    """`report-ingest crawl --from-file PATH --no-wait`: seconds, peak RSS (MB), the crawl ID."""
    start = time.monotonic()
    process = psutil.Popen([sys.executable, "-m", "workers.cli", "crawl", "--from-file", str(path), "--no-wait",
                            "--allow-network", "127.0.0.1/32"], env={**os.environ, **env},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    _out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"crawl --from-file failed:\n{err}")
    crawl_id = next(line.split()[1].rstrip(":") for line in err.splitlines() if line.startswith("crawl "))
    return time.monotonic() - start, peak / 2**20, crawl_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--outage", type=float, default=300.0, help="seconds Elasticsearch is down")
    parser.add_argument("--shared-cpus", action="store_true",
                        help="let Redis share the CPUs with the rest instead of having one of its own")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ri-scale-"))
    workdir.chmod(0o755)  # nginx's workers run as nobody
    redis_cpu = None if args.shared_cpus else set_redis_cpu_apart()
    env, started = start_services()
    if redis_cpu is not None:
        give_redis_its_cpu(started, redis_cpu)
    nginx, base = nginx_site(workdir)
    env = {**env, "INDEX_PREFIX": f"scale-{uuid.uuid4().hex[:6]}-", "DEFAULT_HOST_RATE": "1000000",
           "DEFAULT_HOST_CONCURRENCY": "64", "HOUSEKEEPING_INTERVAL": "2"}
    use_env(env)
    from workers.app import app
    from workers.clients import get_redis
    from workers.tracking.progress import CrawlTracker
    from workers.crawl.start import start_crawl
    from workers.keys import Keys
    from workers.settings import get_settings

    app.conf.broker_url = env["REDIS_URL"]
    client, settings = get_redis(), get_settings()
    slowlog, report = Slowlog(client), []

    workers: list[Worker] = []

    def start_worker(worker_env: dict) -> Worker:
        workers.append(Worker(worker_env, layout=layout))
        return workers[-1]

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        report.append(line)

    layout = (os.cpu_count() or 2, 16)
    try:
        # 1. the small crawl alone, after a warm-up crawl: measured first on a cold Elasticsearch and
        # worker, it was the slower of the two (the big crawl came out at 1.16-1.17x its rate)
        worker = start_worker(env)
        warm = start_crawl(settings, (f"{base}/r/{i:07d}.html" for i in range(30_000_000, 30_000_000 + WARM_UP)),
                           allow_networks=["127.0.0.1/32"])
        wait_done(CrawlTracker(client, settings.index_prefix, warm.crawl_id), WARM_UP, timeout=3600)
        slowlog.take()
        start = time.monotonic()
        plan = start_crawl(settings, (f"{base}/r/{i:07d}.html" for i in range(10_000_000, 10_000_000 + args.small)),
                           allow_networks=["127.0.0.1/32"])
        small_tracker = CrawlTracker(client, settings.index_prefix, plan.crawl_id)
        small_rate = args.small / wait_done(small_tracker, args.small, timeout=3600, since=start)
        worker.stop()
        say(f"small crawl ({args.small} URLs): {small_rate:.0f} pages/s, {dict(small_tracker.counts())}"
                      f"{failure_reasons(settings)}; slowest command: {slowlog.take()}")
        say(f"at rest: {state_bytes(client, settings, small_tracker):.0f} B of Redis per URL "
                      "(its state; the crawl's own progress expires CRAWL_TTL after it finished)")

        # 2. enqueue the big crawl, no worker running
        path = url_file(base, 0, args.urls, workdir)
        memory = client.info("memory")["used_memory"]
        seconds, rss, crawl_id = enqueue(env, path)
        queued = (client.info("memory")["used_memory"] - memory) / args.urls
        say(f"enqueue ({args.urls} URLs, --from-file): {seconds:.1f} s, CLI peak RSS {rss:.0f} MB, "
                      f"Redis {queued:.0f} B/URL queued; slowest command: {slowlog.take()}")

        # 3. the big crawl's first pages, then a progress watcher and `status` running with it
        tracker = CrawlTracker(client, settings.index_prefix, crawl_id)
        worker = start_worker(env)
        big_rate = args.small / wait_done(tracker, args.small, timeout=3600)
        say(f"big crawl, first {args.small} pages: {big_rate:.0f} pages/s = "
                      f"{big_rate / small_rate:.2f}x the small crawl's; slowest command: {slowlog.take()}")
        for _round in range(10):
            tracker.counts()
            subprocess.run([sys.executable, "-m", "workers.cli", "status"], env={**os.environ, **env},
                           capture_output=True, timeout=60, check=True)
        say(f"a watcher and `status` ten times on the big crawl: slowest command: {slowlog.take()}")

        # 4. a worker process killed: the reconciliation of the whole crawl
        victim = next(child for child in psutil.Process(worker.process.pid).children() if "worker" in child.cmdline())
        k = Keys(settings.index_prefix)
        killed, logged = time.monotonic(), len(worker.log.read_text(errors="replace"))
        os.kill(victim.pid, signal.SIGKILL)
        ended = re.compile(r"reconciliation ended in ([\d.]+)s: sent (\d+)")

        def since_kill() -> str:  # a reconciliation asked for when the worker started may end first
            return worker.log.read_text(errors="replace")[logged:]

        devservices.wait_for(lambda: ended.search(since_kill()), deadline=1800, alive=lambda: None,
                             what="the reconciliation after the kill")
        seconds, sent = ended.search(since_kill()).groups()
        say(f"worker killed: the reconciliation of {args.urls} queued URLs ended {time.monotonic() - killed:.0f} s "
            f"after the kill (its own run {float(seconds):.1f} s), {sent} pages sent again; "
            f"slowest command: {slowlog.take()}")
        worker.stop()

        # 5. an Elasticsearch outage under a Redis cap
        # The big crawl dropped (UNLINK frees it in the background), and the slow log with it.
        client.unlink("fetch", *tracker.keys[:3])
        client.srem(k.open_crawls, crawl_id)
        client.unlink(k.reconcile, k.reconcile_claimed, k.reconcile_lease)
        slowlog.take()
        used = client.info("memory")["used_memory"]
        cap = used + 512 * 2**20
        client.config_set("maxmemory", cap)
        client.config_set("maxmemory-policy", "noeviction")
        outage_env = {**env, "STAGING_MAX_BYTES": str(128 * 2**20)}
        worker = start_worker(outage_env)
        es = next((service for service in started if service.name == "elasticsearch"), None)
        if es is None:
            raise SystemExit("the outage needs the Elasticsearch this benchmark started (unset ELASTICSEARCH_URL)")
        port = int(es.url.rsplit(":", 1)[1])
        es.stop()
        plan = start_crawl(settings, (f"{base}/r/{i:07d}.html" for i in range(20_000_000, 20_000_000 + args.small)),
                           allow_networks=["127.0.0.1/32"])
        peak, down_until = 0, time.monotonic() + args.outage
        while time.monotonic() < down_until:
            peak = max(peak, client.info("memory")["used_memory"])
            time.sleep(0.5)
        started[started.index(es)] = devservices.start_elasticsearch(es.workdir, port, echo=lambda _m: None)
        outage_tracker = CrawlTracker(client, settings.index_prefix, plan.crawl_id)
        wait_done(outage_tracker, args.small, timeout=3600)
        peak = max(peak, client.info("memory")["used_memory"])
        counts = outage_tracker.counts()
        worker.stop()
        say(f"Elasticsearch down {args.outage:.0f} s during a crawl of {args.small} URLs: "
                      f"{dict(counts)}{failure_reasons(settings)}; Redis peak {peak / 2**20:.0f} MB under its cap "
                      f"of {cap / 2**20:.0f} MB; slowest command: {slowlog.take()}")
    finally:
        for each in workers:
            each.stop()
        nginx.terminate()
        for service in started:
            service.stop()
    print("\n" + "\n".join(report))


if __name__ == "__main__":
    main()
