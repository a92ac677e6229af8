"""Head-to-head: the pipeline against Scrapy and a bare loop, on the same pages, parser and Elasticsearch.

    python benchmarks/headtohead.py [--pages 2000] [--slow-pages 300] [--rounds 3]
                                    [--only bare,scrapy,pipeline,pipeline-p1,pipeline-1] [--sites fast,slow]

Contenders, each parsing with `workers.parse.parse_page` and bulk-indexing into the same
Elasticsearch node (fresh indices per contender and round), all obeying robots.txt:

- bare:        one process, requests.Session -> parse_page -> helpers.bulk in batches;
- scrapy:      a Scrapy spider parsing in its callback, an item pipeline bulk-indexing in batches;
- pipeline:    `report-ingest worker` with the layout it picks itself, fed by
               `report-ingest crawl URLS --allow-network CIDR... --no-wait`;
- pipeline-p1: the default layout with one worker process (`report-ingest worker --processes 1`);
- pipeline-1:  one prefork pool process (`report-ingest worker -c 1`).

Sites: "fast", N pages from nginx on one host with no added latency (CPU-bound), and
"slow", pages answered after --latency seconds by a server on --slow-hosts loopback
addresses (latency-bound). Every tool gets the same per-host concurrency limit (Scrapy's
CONCURRENT_REQUESTS_PER_DOMAIN, the pipeline's DEFAULT_HOST_CONCURRENCY) and the same
total (Scrapy's CONCURRENT_REQUESTS = per-host limit x hosts); the pipeline's rate limit
is set too high to matter. Rounds interleave the contenders, in a rotating order.

A run ends when a refresh + count finds every page in the reports index. Printed per
contender: pages/s, CPU ms per page (user + sys of the contender's processes: the
worker and its pool, the enqueueing CLI; not Elasticsearch, Redis or the page server),
peak RSS of its long-lived processes (summed, sampled every 0.1 s; the enqueueing
CLI's apart), Redis commands per page for the pipeline (INFO commandstats delta,
commands inside Lua scripts included), Elasticsearch's and Redis's CPU per page, how
many cores the rest of the machine used meanwhile (other jobs, the page server, this
harness: the noise gauge), and the ratios the issue's goals are stated in.
--profile DIR adds a py-spy recording of every run, summarised by stage, library and
report-ingest function (benchmarks/flame.py).

Redis and Elasticsearch come from REDIS_URL / ELASTICSEARCH_URL, or are started here.
A shared Redis makes the command counts include other clients' commands.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import flame  # noqa: E402
from contest import ContestError, Run, run_pipeline, run_yardstick  # noqa: E402
from pipeline import start_services, use_env  # noqa: E402
from sites import Site, fast_site, slow_site  # noqa: E402

CONTENDERS = ("bare", "scrapy", "pipeline", "pipeline-p1", "pipeline-1")
LABELS = {
    "bare": "bare loop (1 process)",
    "scrapy": "Scrapy",
    "pipeline": "report-ingest worker (default)",
    "pipeline-p1": "report-ingest worker --processes 1",
    "pipeline-1": "report-ingest worker -c 1",
}
WORKER_ARGS = {"pipeline": [], "pipeline-p1": ["--processes", "1"], "pipeline-1": ["-c", "1"]}
# (contender, baseline, goal from issue 13 or None, site kinds it applies to)
RATIOS = (
    ("pipeline", "scrapy", 1.5, ("fast", "slow")),
    ("pipeline-p1", "bare", 0.7, ("fast",)),
    ("pipeline-1", "bare", 0.7, ("fast",)),
    ("pipeline-p1", "bare", None, ("slow",)),
    ("pipeline-1", "bare", None, ("slow",)),
)
MB = 1024 * 1024


def run_one(contender: str, site: Site, round_: int, env: dict, timeout: float, profile: Path | None) -> Run:
    if contender in ("bare", "scrapy"):
        return run_yardstick(contender, site, round_, env, timeout, profile)
    return run_pipeline(contender, WORKER_ARGS[contender], site, round_, env, timeout, profile)


def machine(env: dict, sites: list[Site]) -> list[str]:
    import psutil

    from workers.clients import get_es, get_redis

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    packages = ", ".join(f"{p} {metadata.version(p)}" for p in
                         ("scrapy", "twisted", "celery", "kombu", "redis", "elasticsearch", "requests", "lxml"))
    lines = [
        f"machine: {os.cpu_count()} cores, {model}, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; {packages}",
        f"Elasticsearch {_es_version(get_es())} at {env['ELASTICSEARCH_URL']}; "
        f"Redis {get_redis().info('server')['redis_version']} at {env['REDIS_URL']}",
    ]
    for site in sites:
        lines.append(f"site {site.kind}: {len(site.urls)} pages of {site.mean_bytes / 1024:.1f} KB on average, "
                     f"{site.server}; in flight: {site.per_host} per host, {site.total} in total"
                     + (f" (ceiling {site.total / site.latency:.0f} pages/s)" if site.latency else ""))
        lines += [f"  note: {n}" for n in site.notes]
    return lines


def _es_version(es) -> str:
    # The minimal distribution has no `GET /`; node info says the same.
    nodes = es.nodes.info(filter_path="nodes.*.version")["nodes"]
    return ", ".join(sorted({n["version"] for n in nodes.values()}))


def summary(runs: list[Run]) -> list[str]:
    lines = []
    by = defaultdict(list)
    for run in runs:
        by[run.site, run.contender].append(run)
    for kind in dict.fromkeys(r.site for r in runs):
        lines += ["", f"{kind} site (median of {max(len(v) for (k, _), v in by.items() if k == kind)} rounds; "
                      "min-max in brackets)",
                  f"{'contender':32} {'pages/s':>18} {'CPU ms/page':>18} {'peak RSS MB':>11} "
                  f"{'Redis cmd/page':>14} {'ES, Redis CPU ms/page':>21} {'rest of machine, cores':>22}"]
        for contender in CONTENDERS:
            mine = by.get((kind, contender))
            if not mine:
                continue
            rates, cpus = [r.rate for r in mine], [r.cpu_ms_per_page for r in mine]
            redis = [r.redis_per_page for r in mine if r.redis_per_page is not None]
            services = (f"{statistics.median(1000 * r.es_cpu / r.pages for r in mine):.2f}, "
                        f"{statistics.median(1000 * r.redis_cpu / r.pages for r in mine):.2f}")
            lines.append(
                f"{LABELS[contender]:32} {_spread(rates, '.1f'):>18} {_spread(cpus, '.2f'):>18} "
                f"{statistics.median(r.peak_rss for r in mine) / MB:11.0f} "
                f"{(f'{statistics.median(redis):.1f}' if redis else '-'):>14} {services:>21} "
                f"{statistics.median(r.others_cpu / r.seconds for r in mine):22.2f}"
            )
        for contender in CONTENDERS:
            if mine := by.get((kind, contender)):
                lines.append(f"  {contender}: {mine[0].layout}")
                if mine[0].enqueue_cpu:
                    lines.append(f"  {contender}: enqueueing CLI {statistics.median(r.enqueue_cpu for r in mine):.2f} "
                                 "CPU s per run (in CPU ms/page above), "
                                 f"{statistics.median(r.transient_rss for r in mine) / MB:.0f} MB peak RSS "
                                 "(not in peak RSS above)")
        for contender, baseline, goal, kinds in RATIOS:
            if kind not in kinds or not by.get((kind, contender)) or not by.get((kind, baseline)):
                continue
            ours, theirs = by[kind, contender], by[kind, baseline]
            ratio = statistics.median(r.rate for r in ours) / statistics.median(r.rate for r in theirs)
            paired = {r.round: r.rate for r in theirs}
            rounds = ", ".join(f"{r.rate / paired[r.round]:.2f}" for r in ours if r.round in paired)
            lines.append(f"  ratio {contender} / {baseline}: {ratio:.2f}x pages/s (per round: {rounds})"
                         + (f"; issue 13 goal >= {goal}x" if goal else ""))
        for contender in WORKER_ARGS:
            if mine := [r for r in by.get((kind, contender), []) if r.redis]:
                total = sum((r.redis for r in mine), Counter())
                pages = sum(r.pages for r in mine)
                top = ", ".join(f"{name} {calls / pages:.1f}" for name, calls in total.most_common(12))
                lines.append(f"  Redis commands per page, {contender}: {top}")
    return lines


def as_json(run: Run) -> dict:
    return {**vars(run), "redis": dict(run.redis) if run.redis is not None else None}


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000, help="pages on the fast site")
    parser.add_argument("--slow-pages", type=int, default=300, help="pages on the slow site")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders, comma-separated")
    parser.add_argument("--sites", default="fast,slow")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per response on the slow site")
    parser.add_argument("--slow-hosts", type=int, default=4)
    parser.add_argument("--fast-per-host", type=int, default=16, help="in-flight limit per host, fast site")
    parser.add_argument("--slow-per-host", type=int, default=8, help="in-flight limit per host, slow site")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one run may take")
    parser.add_argument("--json", type=Path, help="also write every run here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record every run with py-spy into DIR and summarise it (slows the runs down)")
    args = parser.parse_args()
    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    kinds = [k.strip() for k in args.sites.split(",") if k.strip()]
    if args.profile:
        flame.py_spy()
        args.profile.mkdir(parents=True, exist_ok=True)
    if unknown := (set(contenders) - set(CONTENDERS)) | (set(kinds) - {"fast", "slow"}):
        parser.error(f"unknown contender or site: {', '.join(sorted(unknown))}")

    shared_redis = bool(os.environ.get("REDIS_URL"))
    env, started = start_services()
    use_env(env)
    from workers.app import app

    app.conf.broker_url = env["REDIS_URL"]
    sites: list[Site] = []
    runs: list[Run] = []
    try:
        for kind in kinds:
            sites.append(fast_site(args.pages, args.fast_per_host) if kind == "fast" else
                         slow_site(args.slow_pages, args.slow_hosts, args.latency, args.slow_per_host))
        header = machine(env, sites)
        if shared_redis:
            header.append("note: REDIS_URL was given: Redis command counts include every client of that server")
        print("\n".join(header), flush=True)
        load = [os.getloadavg()[0]]
        for round_ in range(1, args.rounds + 1):
            for site in sites:
                shift = (round_ - 1) % len(contenders)
                for contender in contenders[shift:] + contenders[:shift]:
                    try:
                        run = run_one(contender, site, round_, env, args.timeout, args.profile)
                    except ContestError as exc:
                        print(f"round {round_} {site.kind} {contender}: FAILED: {exc}", flush=True)
                        continue
                    runs.append(run)
                    redis = f", {run.redis_per_page:.1f} Redis cmd/page" if run.redis is not None else ""
                    print(f"round {round_} {site.kind:4} {LABELS[contender]:32} {run.seconds:7.2f}s "
                          f"{run.rate:7.1f} pages/s {run.cpu_ms_per_page:6.2f} CPU ms/page "
                          f"{run.peak_rss / MB:5.0f} MB{redis}; rest of machine {run.others_cpu / run.seconds:.2f} "
                          "cores", flush=True)
            load.append(os.getloadavg()[0])
        print("\n".join(summary(runs)))
        if args.profile:
            print("\nprofiles (py-spy, CPU only; the profiled runs above are slower than unprofiled ones)")
            for run in runs:
                # py-spy follows the worker's tree, not the enqueueing CLI: split only the worker's CPU.
                print("\n".join(flame.summary(Path(run.extra["profile"]), run.pages, run.cpu - run.enqueue_cpu)))
        print(f"\nload average (1 min) after each round: {', '.join(f'{x:.2f}' for x in load)}")
        if args.json:
            args.json.write_text(json.dumps({"machine": header, "runs": [as_json(r) for r in runs]}, indent=1))
    finally:
        for site in sites:
            site.close()
        for service in started:
            service.stop()
            shutil.rmtree(service.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
