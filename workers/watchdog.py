"""Task time limits for a threads-pool worker, which Celery enforces only in its prefork pool.

The default layout (workers/cli/layout.py) runs tasks in threads. This watchdog, a thread
of such a worker, keeps the two limits meaning what they mean under prefork:

- past its soft limit, a task gets SoftTimeLimitExceeded raised in its thread (as prefork
  raises it from a signal), so it records a `time_limit` failure. The exception arrives
  when the thread next runs Python code: a call blocked in C (a socket read) ends first,
  which the fetch's own socket deadlines bound. A task that returns in the very moment its
  limit passes may get the exception in Celery's code just after it instead; Celery then
  acknowledges it as failed, after the task had already recorded how its page ended.
- past its hard limit (the task ignored the soft one, or is stuck in C), the whole worker
  process exits. Its supervisor starts it again and housekeeping requeues what it held,
  each message counted as one more delivery, so a page that always hangs ends as a
  `poison` failure record. Unlike prefork, the other tasks the process was running are
  redelivered too (each counted once).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time

from celery import bootsteps
from celery.concurrency.thread import TaskPool as ThreadPool
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_postrun, task_prerun

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0


class Running:
    """Tasks running in this process's threads: task id -> (thread, start, soft, hard)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tasks: dict[str, tuple[int, float, float | None, float | None]] = {}

    def started(self, task_id: str, soft: float | None, hard: float | None) -> None:
        with self.lock:
            self.tasks[task_id] = (threading.get_ident(), time.monotonic(), soft, hard)

    def ended(self, task_id: str) -> None:
        with self.lock:
            self.tasks.pop(task_id, None)

    def check(self, now: float) -> None:
        """Raise the soft limit in overrunning threads; exit the process past a hard limit."""
        with self.lock:  # held while raising, so the task cannot end and its thread move on meanwhile
            for task_id, (thread, start, soft, hard) in list(self.tasks.items()):
                if hard is not None and now - start > hard:
                    log.error("task %s ran past its hard time limit (%.0fs); this worker process exits, "
                              "and what it held is delivered again", task_id, hard)
                    logging.shutdown()
                    os._exit(1)
                if soft is not None and now - start > soft:
                    log.warning("task %s ran past its soft time limit (%.0fs)", task_id, soft)
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread),
                                                               ctypes.py_object(SoftTimeLimitExceeded))
                    self.tasks[task_id] = (thread, start, None, hard)  # raised once, as prefork does


RUNNING = Running()


def _limits(task) -> tuple[float | None, float | None]:
    hard, soft = task.request.timelimit or (None, None)
    conf = task.app.conf
    return (soft or task.soft_time_limit or conf.task_soft_time_limit or None,
            hard or task.time_limit or conf.task_time_limit or None)


class Watchdog(bootsteps.StartStopStep):
    """A thread that checks RUNNING every CHECK_EVERY seconds, in threads-pool workers only."""

    def __init__(self, w, **kwargs):
        super().__init__(w, **kwargs)
        self.stopped = threading.Event()
        self.enabled = isinstance(w.pool_cls, type) and issubclass(w.pool_cls, ThreadPool)

    def start(self, w) -> None:
        if not self.enabled:
            return
        task_prerun.connect(_on_prerun, weak=False)
        task_postrun.connect(_on_postrun, weak=False)
        threading.Thread(target=self._run, name="time-limits", daemon=True).start()

    def _run(self) -> None:
        while not self.stopped.wait(CHECK_EVERY):
            RUNNING.check(time.monotonic())

    def stop(self, w) -> None:
        self.stopped.set()


def _on_prerun(task_id=None, task=None, **_kwargs) -> None:
    RUNNING.started(task_id, *_limits(task))


def _on_postrun(task_id=None, **_kwargs) -> None:
    RUNNING.ended(task_id)
