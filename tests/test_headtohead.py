"""Smoke test of benchmarks/headtohead.py at toy size: every part starts, measures and reports.

No timings are asserted; the benchmark's figures belong in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("psutil", reason="the bench extra is not installed (pip install -e '.[bench]')")
pytest.importorskip("scrapy", reason="the bench extra is not installed (pip install -e '.[bench]')")

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.services


def test_headtohead_runs_every_contender_kind_and_reports_ratios(service_urls):
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "headtohead.py"), "--pages", "12", "--rounds", "1",
         "--sites", "fast", "--only", "bare,scrapy,pipeline-1", "--timeout", "60"],
        env={**os.environ, **service_urls}, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAILED" not in out.stdout, out.stdout
    for label in ("bare loop (1 process)", "Scrapy", "report-ingest worker -c 1"):
        assert re.search(rf"round 1 fast {re.escape(label)} +[\d.]+s +[\d.]+ pages/s", out.stdout), out.stdout
    assert re.search(r"ratio pipeline-1 / bare: [\d.]+x", out.stdout), out.stdout
    assert re.search(r"Redis commands per page, pipeline-1: \w+ [\d.]+", out.stdout), out.stdout
    assert re.search(r"pipeline-1: .*\d+ processes", out.stdout), out.stdout  # layout read from the worker
