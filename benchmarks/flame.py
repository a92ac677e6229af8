"""Where a contender's CPU goes: py-spy recordings summarised by stage and by library, per page.

`Recorder` runs `py-spy record --subprocesses --nonblocking --format raw` on a
contender's process tree for the measured part of a run; `summary` splits the run's
measured CPU per page by the collapsed stacks' shares, so a before/after pair of
runs can be compared line by line:

- by stage: the first of parse / HTTP fetch / politeness / index / the rest of
  the fetch task that a sample's stack is inside; anything else is the framework
  (Celery's hand-over and acknowledgement, Scrapy's engine, ...), per process
  role (the tree's root, e.g. Celery's main process, or a child, e.g. a pool process);
- by library: the innermost frame on the stack that belongs to redis-py, kombu/Celery,
  the Elasticsearch client, requests/urllib3, Scrapy/Twisted, json, logging, the stage
  timers, the parser or other report-ingest code owns the sample (shares add up to 100%);
- by report-ingest function: the innermost `workers/` function on the stack owns the
  sample, with everything it calls (Redis round trips included): who causes the cost.

py-spy samples only threads that are not idle, so waiting is not in these figures;
the measured CPU per page of the run is split by the samples' shares.

    python benchmarks/flame.py RECORDING.txt --pages N --cpu SECONDS   # summarise again
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

RATE = 100  # samples per second per process
TOP = 15
# A marker "(file" matches any frame of that file; "function (file" matches frames of that function
# only (py-spy frames read "function (file:line)"). Rename a function in workers/ and its marker
# here goes with it. The first stage with a marker on the stack owns the sample.
STAGES = (
    ("parse", ("(workers/parse/",)),
    ("fetch: HTTP", ("fetch (workers/crawl/http.py", "Session.request (requests/sessions.py")),
    ("fetch: robots, slot, lease", ("(workers/crawl/polite.py", "(workers/crawl/robots.py",
                                    "(workers/crawl/host_limits.py")),
    ("index", ("index_pending (workers/index/tasks.py", "bulk (elasticsearch/helpers")),
    ("fetch task: the rest (state, staging, progress, timers)",
     ("fetch_page (workers/crawl/tasks.py", "fetch_pages (workers/crawl/tasks.py")),
)
FRAMEWORK = "framework (Celery: hand-over, ack, broker I/O; Scrapy: engine, downloader)"
# Checked in this order on each frame, innermost frame first: the first hit owns the sample.
LIBRARIES = (
    ("redis-py", ("(redis/",)),
    ("kombu / Celery / billiard", ("(kombu/", "(celery/", "(billiard/")),
    ("Elasticsearch client", ("(elasticsearch/", "(elastic_transport/")),
    ("requests / urllib3 / http.client", ("(requests/", "(urllib3/", "(http/client.py")),
    ("Scrapy / Twisted", ("(scrapy/", "(twisted/")),
    ("json", ("(json/",)),
    ("logging", ("(logging/",)),
    ("stage timers (workers/timings.py)", ("(workers/timings.py",)),
    ("parsing (workers/parse, lxml)", ("(workers/parse/",)),
    ("other report-ingest code (workers/)", ("(workers/",)),
)


def py_spy() -> str:
    """The py-spy next to this Python (a venv's bin is often not on PATH), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    binary = str(beside) if beside.exists() else shutil.which("py-spy")
    if binary is None:
        raise SystemExit("py-spy not found: pip install py-spy (it needs ptrace permission)")
    return binary


class Recorder:
    """py-spy on a process tree; `stop()` ends the recording and returns its file."""

    def __init__(self, pid: int, output: Path):
        binary = py_spy()
        self.output = output
        self.log = output.with_suffix(".log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "record", "--subprocesses", "--nonblocking", "--format", "raw", "--rate", str(RATE),
                 "--output", str(output), "--pid", str(pid)], stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1.0)  # attach before the clock starts
        if self.process.poll() is not None:
            raise RuntimeError(f"py-spy could not attach: {self.log.read_text(errors='replace')}")

    def stop(self) -> Path:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            self.process.wait(60)
        return self.output


def read_stacks(path: Path) -> Counter:
    stacks = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def _role(frames: list[str]) -> str:
    return "root process" if sum(f.startswith("process ") for f in frames) <= 1 else "child processes"


def _marked(frame: str, marker: str) -> bool:
    return marker in frame if marker.startswith("(") else frame.startswith(marker)


def _stage(frames: list[str]) -> str:
    for stage, markers in STAGES:
        if any(_marked(f, m) for f in frames for m in markers):
            return stage
    return FRAMEWORK


def _library(frames: list[str]) -> str:
    for frame in reversed(frames):
        for library, markers in LIBRARIES:
            if any(m in frame for m in markers):
                return library
    return "other (standard library, start-up)"


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>workers/[^:]+):\d+\)$")


def _caller(frames: list[str]) -> str:
    """The innermost report-ingest function on the stack, parser functions taken together."""
    for frame in reversed(frames):
        # The CLI only starts Celery: what runs under it without a task frame is Celery's.
        if (match := _FRAME.match(frame)) and not match["file"].startswith("workers/cli"):
            file = match["file"]
            return "workers/parse/ (all of it)" if file.startswith("workers/parse/") else f"{file} {match['func']}"
    return "outside report-ingest code (Celery, Scrapy, start-up)"


def summary(path: Path, pages: int, cpu_seconds: float) -> list[str]:
    """The measured CPU per page, split by the shares of the samples.

    Shares rather than sample counts: on a busy machine a thread waiting for a core
    still looks active to py-spy, so counts overstate CPU, evenly enough for shares.
    """
    stacks = read_stacks(path)
    total = sum(stacks.values())
    if not total:
        return [f"{path.name}: no samples"]
    per_page = 1000 * cpu_seconds / pages / total  # ms of CPU per page that one sample stands for
    by_stage, by_library, by_caller = Counter(), Counter(), Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        by_stage[_role(frames), _stage(frames)] += count
        by_library[_library(frames)] += count
        by_caller[_caller(frames)] += count
    lines = [f"{path.name}: {total} samples over {1000 * cpu_seconds / pages:.2f} ms CPU per page"]
    for (role, stage), count in sorted(by_stage.items(), key=lambda item: (item[0][0] != "child processes", -item[1])):
        lines.append(f"  {role:16} {stage:74} {count * per_page:6.2f} ms/page {100 * count / total:5.1f}%")
    lines.append("  by library (the innermost known frame owns the sample):")
    for library, count in by_library.most_common():
        lines.append(f"    {library:88} {count * per_page:6.2f} ms/page {100 * count / total:5.1f}%")
    lines.append(f"  by report-ingest function (the innermost one, with all it calls; top {TOP}):")
    for caller, count in by_caller.most_common(TOP):
        lines.append(f"    {caller:88} {count * per_page:6.2f} ms/page {100 * count / total:5.1f}%")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", type=Path)
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--cpu", type=float, required=True, help="CPU seconds the recorded run used")
    args = parser.parse_args()
    print("\n".join(summary(args.recording, args.pages, args.cpu)))


if __name__ == "__main__":
    main()
