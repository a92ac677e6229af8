"""One thread per process that calls back at deadlines: the fetch guards' (workers/crawl/netpolicy.py).

A `threading.Timer` per fetch started a thread for every request, and `Thread.start`
waits until the new thread has run: under a busy GIL (sixteen fetching and parsing
threads) that wait was a visible part of every fetch. Here a deadline is an entry in
a heap, and one thread, started on first use in each process, sleeps until the earliest.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Deadline:
    """A pending call; `cancel` it when the work it guards is done."""

    __slots__ = ("when", "seq", "callback")

    def __init__(self, when: float, seq: int, callback: Callable[[], None]):
        self.when, self.seq, self.callback = when, seq, callback

    def __lt__(self, other: Deadline) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        # Left in the heap until it comes up; without its callback it holds nothing alive.
        self.callback = None  # type: ignore[assignment]


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._wake = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> Deadline:
        """Call `callback` (in this module's thread) at `when`, a time.monotonic() reading."""
        deadline = Deadline(when, next(self._seq), callback)
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, deadline)
            if self._heap[0] is deadline:
                self._wake.notify()
        return deadline

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    while self._heap and self._heap[0].callback is None:
                        heapq.heappop(self._heap)
                    wait = self._heap[0].when - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        callback = heapq.heappop(self._heap).callback
                        break
                    self._wake.wait(wait)
            if callback is None:
                continue
            try:
                callback()
            except Exception:  # noqa: BLE001 - one callback's error must not stop every later deadline
                log.exception("deadline callback %r failed", callback)

    def _forget_in_child(self) -> None:
        # A forked child has neither the thread nor the work those deadlines guard (expiring them
        # would shut down sockets it shares with its parent): it starts afresh on its next call.
        self._heap, self._thread, self._wake = [], None, threading.Condition()


deadlines = Deadlines()
os.register_at_fork(after_in_child=deadlines._forget_in_child)
