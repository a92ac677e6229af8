"""Parse-time benchmark: full extraction vs a bare BeautifulSoup(html, "lxml") build.

    .venv/bin/python benchmarks/parse.py [--rounds 300] [--large-kb 30]

Both are timed on the same bytes in the same run, so the ratio is stable across machines.
The small page is a real fixture; the large one is the State Department fixture with its
narrative repeated until the page is about --large-kb kilobytes.
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
LARGE_BASE = "statedept_thailand_2019.html"


def large_page(kilobytes: int) -> bytes:
    page = (PAGES / LARGE_BASE).read_bytes()
    start = page.index(b'<div class="entry-content">') + len(b'<div class="entry-content">')
    end = page.index(b"</div>", start)
    narrative = page[start:end]
    copies = max(1, (kilobytes * 1024 - len(page)) // len(narrative) + 1)
    return page[:start] + narrative * (copies + 1) + page[end:]


def timings(fn: Callable[[], object], rounds: int) -> list[float]:
    fn()  # warm caches (country tables, regexes) outside the measurement
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return out


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed parses per page and method")
    parser.add_argument("--large-kb", type=int, default=30, help="size of the large page")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args()

    manifest = {e["file"]: e for e in json.loads((PAGES / "manifest.json").read_text())}
    cases = [("small", (PAGES / SMALL).read_bytes(), manifest[SMALL]["url"]),
             ("large", large_page(args.large_kb), manifest[LARGE_BASE]["url"])]
    results = []
    for name, body, url in cases:
        bare = timings(lambda b=body: BeautifulSoup(b, "lxml"), args.rounds)
        full = timings(lambda b=body, u=url: parse_page(b, u, "text/html; charset=utf-8"), args.rounds)
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
