"""Hostile and broken pages in one crawl: each recorded with its own reason, the good ones indexed,
the worker alive with bounded memory.

Nothing here connects outside loopback: the link-local redirect is only *sent* by the local
site, and the worker's network policy refuses it before any connection (`link_local_address`).
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from tests.corpus import report_page
from tests.faults.helpers import summary
from tests.helpers import cli, pool_children
from tests.site import RESET, Request, html
from workers.urls import normalize_url

GOOD = 20
# Bounded memory: no worker process may grow past this while chewing on the pages below.
MAX_RSS_MB = 400


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the process's peak resident set
            return int(line.split()[1]) / 1024
    return 0.0


def _then_ok(first: tuple[int, dict[str, str], bytes], page: bytes):
    def handler(req: Request):
        return first if req.hit == 1 else (200, {"Content-Type": "text/html; charset=utf-8"}, page)
    return handler


def _reset_mid_body(_req: Request):
    return 200, {"Content-Type": "text/html", "Content-Length": "100000"}, [b"<html><body>" + b"x" * 5000, RESET]


def _stalled_body(_req: Request):
    def body():
        yield b"<html><body><p>first words"
        time.sleep(6)  # past the read deadline (connect 1 s + read 1.5 s in the suite)
        yield b"</p></body></html>"
    return 200, {"Content-Type": "text/html", "Content-Length": "100"}, body()


def _drip(_req: Request):
    def body():
        for _ in range(40):  # one byte a second: each read succeeds, the whole never arrives in time
            yield b"x"
            time.sleep(1)
    return 200, {"Content-Type": "text/html", "Content-Length": "40"}, body()


def _gzip_bomb(_req: Request):
    bomb = gzip.compress(b"<p>" + b"\0" * 20_000_000, compresslevel=9)  # ~20 KB that inflates to 20 MB
    return 200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb


def test_bad_inputs_are_recorded_one_by_one(scenario):
    worker = scenario.start_worker(concurrency=2)
    site = scenario.site
    good = scenario.serve(GOOD)
    page = report_page(GOOD + 1).html
    unclosed = b"<html><head><title>Mali report</title></head><body>" + b"<div>" * 10_000 + page
    site.routes |= {
        "/404": html(b"<h1>no</h1>", status=404),
        "/410": html(b"<h1>gone</h1>", status=410),
        "/500": html(b"<h1>broken</h1>", status=500),
        "/503-then-ok": _then_ok((503, {"Content-Type": "text/html", "Retry-After": "1"}, b"busy"),
                                 report_page(GOOD + 2).html),
        "/429-then-ok": _then_ok((429, {"Content-Type": "text/html", "Retry-After": "1"}, b"slow down"),
                                 report_page(GOOD + 3).html),
        "/reset": _reset_mid_body,
        "/stalled": _stalled_body,
        "/loop-a": html(b"", status=302, Location="/loop-b"),
        "/loop-b": html(b"", status=302, Location="/loop-a"),
        "/huge": html(page + b"<!--" + b"x" * 400_000 + b"-->"),
        "/gzip-bomb": _gzip_bomb,
        "/binary": html(bytes(range(256)) * 200, content_type="text/html"),
        "/unknown-charset": html(report_page(GOOD + 4).html, content_type="text/html; charset=x-no-such-charset"),
        "/unclosed-divs": html(unclosed),
        "/empty": html(b""),
        "/report.pdf": html(b"%PDF-1.4\n% not really a report\n", content_type="application/pdf"),
        "/to-file": html(b"", status=302, Location="file:///etc/passwd"),
        "/to-metadata": html(b"", status=302, Location="http://169.254.169.254/latest/meta-data/"),
        "/drip": _drip,
    }
    expected = {
        "/404": {"http_404"}, "/410": {"http_410"}, "/500": {"http_500"},
        "/reset": {"connection_reset"}, "/stalled": {"timeout"}, "/loop-a": {"redirect_loop"},
        "/huge": {"too_large"}, "/gzip-bomb": {"too_large"}, "/binary": {"binary_content"},
        "/empty": {"empty_body"}, "/report.pdf": {"pdf_truncated", "pdf_corrupt"},
        "/to-file": {"unsupported_scheme"}, "/to-metadata": {"link_local_address"}, "/drip": {"timeout"},
    }
    recovered = ["/503-then-ok", "/429-then-ok", "/unknown-charset", "/unclosed-divs"]
    bad = [site.url(path) for path in expected]
    started = time.monotonic()
    result = cli(scenario.env, "crawl", *good, *bad, *(site.url(p) for p in recovered), "not a url",
                 "--allow-network", "127.0.0.1/32", "--timeout", "240", timeout=300)
    # The string that is not a URL is refused at crawl time, by name; the rest is crawled.
    assert "not a url" in result.stderr
    failures = {f["url"]: f for f in scenario.failures()}
    reasons = {path: failures.get(normalize_url(site.url(path)), {}).get("reason") for path in expected}
    wrong = {path: reason for path, reason in reasons.items() if reason not in expected[path]}
    assert not wrong, f"unexpected reasons: {wrong}"
    assert scenario.indexed(good + [normalize_url(site.url(p)) for p in recovered]) == GOOD + len(recovered)
    assert worker.process.poll() is None and worker.ping()
    peak = max(_rss_mb(pid) for pid in [worker.process.pid, *pool_children(worker.process.pid)])
    assert peak < MAX_RSS_MB
    summary(f"bad inputs: {len(expected)} pages each recorded with its reason, {len(recovered)} recovered and "
            f"{GOOD} good pages indexed, 'not a url' refused at crawl time; worker alive, peak RSS "
            f"{peak:.0f} MB; {time.monotonic() - started:.1f}s")
