"""What a benchmark contender costs: CPU seconds and peak RSS of its process tree, Redis commands,
Elasticsearch's and Redis's CPU, and the rest of the machine's; `Stopwatch` takes them all over
the measured part of one run.

CPU is read from the kernel's per-process counters (user + system), including the
counters of children a process has already reaped, so pool processes that a
worker recycles mid-run are still counted. RSS is sampled, summed over the tree:
pages shared by forked processes are counted once per process, so the sum is an
upper bound of what the tree really holds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import redis

from flame import Recorder


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(process: psutil.Process) -> float:
    try:
        t = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


class TreeMeter:
    """CPU and peak RSS of one contender's processes: long-lived roots and their descendants.

    `cpu()` reads the live trees; a short-lived process the caller waits for itself
    (the enqueueing CLI) is added with `reaped()` from its wait4 resource usage, and
    its memory is sampled apart from the long-lived processes'.
    """

    def __init__(self, *pids: int, interval: float = 0.1):
        self.roots = [psutil.Process(pid) for pid in pids]
        self.transient: list[psutil.Process] = []
        self.interval = interval
        self.peak_rss = 0  # the long-lived processes (roots and descendants), summed
        self.peak_transient_rss = 0  # the short-lived ones, summed, on their own
        self.reaped_cpu = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def processes(self) -> list[psutil.Process]:
        return [p for root in self.roots for p in _tree(root)]

    def cpu(self) -> float:
        return sum(_cpu(p) for p in self.processes()) + self.reaped_cpu

    def watch(self, pid: int) -> None:
        """Sample a short-lived process's memory too; its CPU comes in through `reaped()`."""
        self.transient.append(psutil.Process(pid))

    def reaped(self, rusage) -> None:
        self.reaped_cpu += rusage.ru_utime + rusage.ru_stime

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, sum(_rss(p) for p in self.processes()))
        transient = sum(_rss(p) for t in self.transient for p in _tree(t))
        self.peak_transient_rss = max(self.peak_transient_rss, transient)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self.sample()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def machine_busy() -> float:
    """CPU seconds spent so far by the whole machine, every core and process (idle and I/O wait excluded)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def service_cpu(es, client: redis.Redis) -> dict[str, float]:
    """CPU seconds Elasticsearch and Redis have used so far (their own counters)."""
    nodes = es.nodes.stats(metric="process", filter_path="nodes.*.process.cpu.total_in_millis")["nodes"]
    info = client.info("cpu")
    return {
        "es_cpu": sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values()) / 1000,
        "redis_cpu": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
    }


def command_calls(client: redis.Redis) -> Counter:
    """Calls per command since the server started (commands run inside Lua scripts included)."""
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()})


def command_delta(before: Counter, after: Counter) -> Counter:
    delta = after - before
    delta.pop("info", None)  # the meter's own reads
    return delta


class Stopwatch:
    """The measured part of one run: wall time, the contender's CPU and peak RSS, the whole
    machine's CPU (to show how busy everything else kept it), and optionally a py-spy recording."""

    def __init__(self, meter: TreeMeter, profile: Path | None):
        self.meter = meter
        self.recorder = Recorder(meter.roots[0].pid, profile) if profile else None

    def start(self) -> None:
        self.services0 = self._services()
        self.cpu0, self.busy0 = self.meter.cpu(), machine_busy()
        self.meter.start()
        self.t0 = time.perf_counter()

    def stop(self) -> dict:
        seconds = time.perf_counter() - self.t0
        cpu, busy = self.meter.cpu() - self.cpu0, machine_busy() - self.busy0
        self.meter.stop()
        services = {k: v - self.services0[k] for k, v in self._services().items()}
        measured = {"seconds": seconds, "cpu": cpu, "peak_rss": self.meter.peak_rss, "machine_cpu": busy,
                    "transient_rss": self.meter.peak_transient_rss, **services}
        if self.recorder:
            measured["extra"] = {"profile": str(self.recorder.stop())}
        return measured

    @staticmethod
    def _services() -> dict[str, float]:
        from workers.clients import get_es, get_redis

        return service_cpu(get_es(), get_redis())

    def abandon(self) -> None:
        if self.recorder:
            self.recorder.stop()
