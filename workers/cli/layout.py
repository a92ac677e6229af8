"""The worker layout `report-ingest worker` picks for the machine, and the supervisor that runs it.

A fetch spends most of its time waiting for the network, so one request in flight per
process (Celery's prefork pool) leaves a two-core machine at two pages per round trip.
Parsing holds the GIL, so threads alone leave every core but one idle. The default is
both: one Celery worker per core, each with a `threads` pool, started and watched by this
process. A worker that dies is started again (as prefork replaces a dead pool process);
the messages it held go back on their queue through housekeeping (workers/housekeeping.py)
once its heartbeat is ORPHAN_GRACE old.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

# Requests in flight per process. The GIL serialises parsing, so more threads than this buy
# waiting, not throughput; 16 covers the per-host limit of two busy hosts per process.
THREADS_PER_PROCESS = 16
# A worker that exits with an error this soon after its start, this many times in a row, is broken
# (bad arguments, an import error): the supervisor stops instead of restarting it forever.
EARLY_EXIT_SECONDS = 10.0
EARLY_EXITS_ALLOWED = 3


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Layout:
    processes: int
    threads: int

    @classmethod
    def for_machine(cls, processes: int | None = None, threads: int | None = None) -> Layout:
        return cls(processes or usable_cores(), threads or THREADS_PER_PROCESS)

    def describe(self, queues: str) -> str:
        return (f"worker layout: {self.processes} process(es) x {self.threads} threads (Celery threads pool), "
                f"{self.processes * self.threads} tasks in flight, {usable_cores()} core(s), queues {queues}; "
                "-c N (prefork) or -P POOL runs one worker as asked instead")


def node_name(base: str | None, index: int) -> str:
    """The node name of worker `index` (1-based): NAME-i@HOST from `-n NAME@HOST`, else celery-i@%h."""
    name, _, host = (base or "celery@%h").partition("@")
    return f"{name}-{index}@{host or '%h'}"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the supervisor dies (Linux), so no worker is left
    consuming without one."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Runs one worker per argv, starts again a worker that dies, passes shutdown signals on."""

    def __init__(self, argvs: list[list[str]], echo=print):
        self.argvs, self.echo = argvs, echo
        self.children: list[subprocess.Popen | None] = [None] * len(argvs)
        self.started = [0.0] * len(argvs)
        self.early_exits = [0] * len(argvs)
        self.stopping: int | None = None

    def _start(self, i: int) -> None:
        # Same process group: a signal to the group (docker stop, Ctrl-C) reaches every worker.
        self.children[i] = subprocess.Popen(self.argvs[i], preexec_fn=_die_with_parent)
        self.started[i] = time.monotonic()

    def _on_signal(self, signum: int, _frame) -> None:
        # SIGINT and SIGTERM both mean a warm shutdown (running tasks finish or are requeued);
        # Celery takes a repeated SIGTERM as the same request. SIGQUIT is a cold one.
        self.stopping = signum
        forward = signal.SIGQUIT if signum == signal.SIGQUIT else signal.SIGTERM
        for child in self.children:
            if child is not None and child.poll() is None:
                child.send_signal(forward)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, self._on_signal)
        for i in range(len(self.argvs)):
            self._start(i)
        while True:
            time.sleep(0.5)
            if self.stopping is not None:
                return max(child.wait() for child in self.children if child is not None)
            for i, child in enumerate(self.children):
                if child is None or (code := child.poll()) is None:
                    continue
                if code == 0:  # shut down on purpose (a signal of its own, `celery control shutdown`)
                    self.children[i] = None
                    continue
                # Killed by a signal (SIGKILL: out of memory, a page that crashes it) is not broken:
                # a poison page redelivered soon after a restart must not stop the whole worker.
                early = code > 0 and time.monotonic() - self.started[i] < EARLY_EXIT_SECONDS
                self.early_exits[i] = self.early_exits[i] + 1 if early else 0
                if self.early_exits[i] >= EARLY_EXITS_ALLOWED:
                    self.echo(f"worker {i + 1} exited {EARLY_EXITS_ALLOWED} times within "
                              f"{EARLY_EXIT_SECONDS:.0f}s of its start (last code {code}); stopping")
                    self._on_signal(signal.SIGTERM, None)
                    return code if code > 0 else 1
                self.echo(f"worker {i + 1} exited with code {code}; starting it again")
                self._start(i)
            if not any(self.children):
                return 0


def worker_argv(layout: Layout, index: int, queues: str, loglevel: str, hostname: str | None,
                celery_args: tuple[str, ...]) -> list[str]:
    """The command line of worker `index` of the layout: a plain `report-ingest worker -P threads`."""
    return [sys.executable, "-m", "workers.cli", "worker", "-P", "threads", "-c", str(layout.threads),
            "-Q", queues, "-l", loglevel, "-n", node_name(hostname, index), *celery_args]
