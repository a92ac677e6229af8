"""The enqueue phase of benchmarks/scale.py alone, on a quiet machine: a minute, where the whole
benchmark takes most of an hour and shares the machine with its crawl.

`report-ingest crawl --from-file` of --urls URLs (no worker running) against a Redis with a CPU of
its own, as in benchmarks/scale.py: seconds, URLs/s, the CLI's peak RSS, Redis bytes per queued URL.
Goal (issue 20): a million URLs in 60 s or less with the CLI at 300 MB or less.

    python benchmarks/scale_enqueue.py [--urls 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.pipeline import start_services, use_env  # noqa: E402
from benchmarks.scale import enqueue, give_redis_its_cpu, set_redis_cpu_apart, url_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=1_000_000)
    args = parser.parse_args()
    redis_cpu = set_redis_cpu_apart()
    env, started = start_services()
    try:
        if redis_cpu is not None:
            give_redis_its_cpu(started, redis_cpu)
        use_env(env)
        from workers.clients import get_redis

        client = get_redis()
        path = url_file("http://127.0.0.1:8080", 0, args.urls, Path(tempfile.mkdtemp(prefix="ri-enqueue-")))
        memory = client.info("memory")["used_memory"]
        seconds, rss, _crawl_id = enqueue(env, path)
        queued = (client.info("memory")["used_memory"] - memory) / args.urls
        print(f"enqueue ({args.urls} URLs, --from-file): {seconds:.1f} s, {args.urls / seconds:.0f} URLs/s, "
              f"CLI peak RSS {rss:.0f} MB, Redis {queued:.0f} B/URL queued")
    finally:
        for service in started:
            service.stop()


if __name__ == "__main__":
    main()
