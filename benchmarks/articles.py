"""Body text of the generic parser on the article-extraction benchmark, beside trafilatura.

    .venv/bin/python benchmarks/articles.py [--bootstrap 1000] [--rounds 3] [--misses 10]

The corpus (181 news and blog pages with hand-made article text, MIT licence, from
github.com/scrapinghub/article-extraction-benchmark) is read from
`../shared/corpora/article-extraction-benchmark/` beside the repository; the benchmark is
skipped when it is absent. Both extractors' outputs are written as `output/*.json` in a
scratch directory and scored there by the benchmark's own `evaluate.py` (shingle F1), so
the figures are the ones its README publishes for other extractors.

Also measured on the same pages, in the same run:
- refusals: pages `parse_page` raised ParseError on (every benchmark page has article text);
- parse time: the whole `parse_page` against a bare `BeautifulSoup(html, "lxml")` build of
  the same bytes, alternately, CPU clock; the median of the per-page ratios (budget 2.5x).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from workers.parse import ParseError, parse_page

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "article-extraction-benchmark"
CONTENT_TYPE = "text/html; charset=utf-8"


def pages(corpus: Path) -> list[tuple[str, str, bytes]]:
    """(id, url, html bytes) of every page, in the ground truth's order."""
    truth = json.loads((corpus / "ground-truth.json").read_text())
    return [(key, item["url"], gzip.decompress((corpus / "html" / f"{key}.html.gz").read_bytes()))
            for key, item in truth.items()]


def ours(url: str, body: bytes) -> str | None:
    """The generic parser's body, or None when it refuses the page."""
    try:
        return parse_page(body, url, CONTENT_TYPE).body or ""
    except ParseError:
        return None


def trafilatura_body(url: str, body: bytes, **options: Any) -> str:
    """trafilatura on its own: its defaults (as the benchmark's README runs it), or `options`."""
    import trafilatura

    return trafilatura.extract(body.decode("utf-8", "replace"), url=url, **options) or ""


def cpu_ratio(url: str, body: bytes, rounds: int) -> float:
    """Whole parse / bare soup build, each the best of `rounds` alternating CPU timings."""
    bare, full = [], []
    for _ in range(rounds):
        for fn, times in ((lambda: BeautifulSoup(body, "lxml"), bare), (lambda: ours(url, body), full)):
            began = time.process_time()
            fn()
            times.append(time.process_time() - began)
    return min(full) / max(min(bare), 1e-6)


def evaluate(corpus: Path, outputs: dict[str, dict[str, Any]], bootstrap: int) -> str:
    """The benchmark's own evaluate.py over our output files; its printed table."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        shutil.copy(corpus / "ground-truth.json", work)
        (work / "output").mkdir()
        for name, output in outputs.items():
            (work / "output" / f"{name}.json").write_text(json.dumps(output))
        run = subprocess.run([sys.executable, str(corpus / "evaluate.py"), "--n-bootstrap", str(bootstrap)],
                             cwd=work, capture_output=True, text=True, check=True)
        return run.stdout


def f1(corpus: Path, output: dict[str, dict[str, str]]) -> float:
    sys.path.insert(0, str(corpus))
    from evaluate import metrics_from_tp_fp_fns, string_shingle_matching

    truth = json.loads((corpus / "ground-truth.json").read_text())
    return metrics_from_tp_fp_fns([string_shingle_matching(true=truth[k]["articleBody"],
                                                           pred=output[k]["articleBody"]) for k in truth])["f1"]


def page_f1(corpus: Path, truth: str, pred: str) -> float:
    sys.path.insert(0, str(corpus))
    from evaluate import string_shingle_matching  # the benchmark's own per-page scoring

    tp, fp, fn = string_shingle_matching(true=truth, pred=pred)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=1000, help="evaluate.py's --n-bootstrap")
    parser.add_argument("--rounds", type=int, default=3, help="timed parses per page and method")
    parser.add_argument("--misses", type=int, default=0, help="list the N pages we score worst on")
    parser.add_argument("--no-trafilatura", action="store_true", help="score the generic parser only")
    args = parser.parse_args()
    if not (CORPUS / "ground-truth.json").exists():
        print(f"skipped: corpus not found at {CORPUS}")
        return
    import trafilatura

    from workers.parse.article import OPTIONS

    corpus = pages(CORPUS)
    mine: dict[str, dict[str, str]] = {}
    theirs: dict[str, dict[str, str]] = {}
    # The settings workers/parse/article.py runs it with, alone.
    theirs_fast: dict[str, dict[str, str]] = {}
    refused: list[str] = []
    ratios: list[float] = []
    began = time.monotonic()
    for done, (key, url, body) in enumerate(corpus, 1):
        text = ours(url, body)
        if text is None:
            refused.append(key)
        mine[key] = {"articleBody": text or ""}
        if not args.no_trafilatura:
            theirs[key] = {"articleBody": trafilatura_body(url, body)}
            theirs_fast[key] = {"articleBody": trafilatura_body(url, body, **OPTIONS)}
        ratios.append(cpu_ratio(url, body, args.rounds))
        if done % 20 == 0 or done == len(corpus):
            elapsed = time.monotonic() - began
            print(f"  {done}/{len(corpus)} pages, {done / elapsed:.1f} pages/s, "
                  f"ETA {elapsed / done * (len(corpus) - done):.0f} s", file=sys.stderr)
    outputs = {"report-ingest": {"version": _version(), "output": mine}}
    if theirs:
        outputs["trafilatura"] = {"version": trafilatura.__version__, "output": theirs}
        outputs["trafilatura-fast"] = {"version": trafilatura.__version__, "output": theirs_fast}
    print(evaluate(CORPUS, outputs, args.bootstrap))
    for name, output in outputs.items():
        print(f"{name:<20} F1 {f1(CORPUS, output['output']):.4f} (the same scoring, four digits)")
    print(f"refused: {len(refused)} of {len(corpus)} pages" + (f" ({', '.join(k[:10] for k in refused)})"
                                                               if refused else ""))
    print(f"parse time / bare BeautifulSoup(lxml) build: median {statistics.median(ratios):.2f}x, "
          f"p90 {statistics.quantiles(ratios, n=10)[-1]:.2f}x (budget 2.5x)")
    if args.misses:
        truth = json.loads((CORPUS / "ground-truth.json").read_text())
        scored = sorted((page_f1(CORPUS, truth[k]["articleBody"], mine[k]["articleBody"]), k) for k in mine)
        for score, key in scored[:args.misses]:
            print(f"  {score:.3f} {key[:12]} {truth[key]['url'][:90]}")


def _version() -> str:
    from workers.parse import PARSER_VERSION

    return PARSER_VERSION


if __name__ == "__main__":
    main()
