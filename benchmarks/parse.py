"""Parse-time benchmark: full extraction vs a bare BeautifulSoup(html, "lxml") build.

    .venv/bin/python benchmarks/parse.py [--rounds 300] [--large-kb 30] [--clock cpu|wall]

Both are timed on the same bytes, alternately round by round, so the ratio holds on a
shared machine whose load drifts during the run. The small page is a Refworld fixture,
the ecoi page an ecoi.net fixture (generic rules, label/value metadata); the large one is
the State Department fixture with its narrative repeated to about --large-kb kilobytes.

Both sides are single-threaded CPU work, so the default clock is this process's CPU time:
on a shared machine, wall time also counts the time other processes held the core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bs4 import BeautifulSoup

from workers.parse import parse_page

PAGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pages"
SMALL = "refworld_legacy_mali_2002.html"
GENERIC = "ecoi_en_ghana_tip_2021.html"
LARGE_BASE = "statedept_thailand_2019.html"


def large_page(kilobytes: int) -> bytes:
    page = (PAGES / LARGE_BASE).read_bytes()
    start = page.index(b'<div class="entry-content">') + len(b'<div class="entry-content">')
    end = page.index(b"</div>", start)
    narrative = page[start:end]
    copies = max(1, (kilobytes * 1024 - len(page)) // len(narrative) + 1)
    return page[:start] + narrative * (copies + 1) + page[end:]


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def timings(bare: Callable[[], object], full: Callable[[], object], rounds: int,
            clock: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Per-round times of both, measured alternately."""
    bare(), full()  # warm caches (country tables, regexes) outside the measurement
    out: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, times in ((bare, out[0]), (full, out[1])):
            began = clock()
            fn()
            times.append(clock() - began)
    return out


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed parses per page and method")
    parser.add_argument("--large-kb", type=int, default=30, help="size of the large page")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default); wall: elapsed time")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args()

    manifest = {e["file"]: e for e in json.loads((PAGES / "manifest.json").read_text())}
    layouts = {e["file"]: e for e in json.loads((PAGES / "layouts" / "manifest.json").read_text())}
    cases = [("small", (PAGES / SMALL).read_bytes(), manifest[SMALL]["url"]),
             ("ecoi", (PAGES / "layouts" / GENERIC).read_bytes(), layouts[GENERIC]["url"]),
             ("large", large_page(args.large_kb), manifest[LARGE_BASE]["url"])]
    results = []
    for name, body, url in cases:
        bare, full = timings(lambda b=body: BeautifulSoup(b, "lxml"),
                             lambda b=body, u=url: parse_page(b, u, "text/html; charset=utf-8"),
                             args.rounds, CLOCKS[args.clock])
        row = {"page": name, "bytes": len(body)}
        for q in (50, 99):
            row[f"bs4_p{q}_ms"] = round(percentile(bare, q) * 1000, 3)
            row[f"parse_p{q}_ms"] = round(percentile(full, q) * 1000, 3)
            row[f"ratio_p{q}"] = round(percentile(full, q) / percentile(bare, q), 2)
        results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'page':6} {'bytes':>7} {'bs4 p50':>9} {'parse p50':>10} {'ratio':>6} "
          f"{'bs4 p99':>9} {'parse p99':>10} {'ratio':>6}")
    for r in results:
        print(f"{r['page']:6} {r['bytes']:>7} {r['bs4_p50_ms']:>7.2f}ms {r['parse_p50_ms']:>8.2f}ms "
              f"{r['ratio_p50']:>5.2f}x {r['bs4_p99_ms']:>7.2f}ms {r['parse_p99_ms']:>8.2f}ms "
              f"{r['ratio_p99']:>5.2f}x")


if __name__ == "__main__":
    main()
