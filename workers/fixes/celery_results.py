"""Celery's result backend, kept out of the way of tasks that store no result.

Checked against Celery 5.7.0 (the canaries: tests/test_fixes.py): it writes a cancelled task's
retry to the backend whether or not the task stores results, and `send_task` subscribes to the
result of every task it sends unless told not to, whatever `task_ignore_result` says.
"""

from __future__ import annotations

from functools import cached_property

import celery
from celery import Celery
from celery.backends.base import DisabledBackend


class Task(celery.Task):
    """The default task: it stores no result, so it never touches the result backend.

    Celery writes to the backend on paths that have nothing to do with results: cancelling a
    late-acknowledged task when the broker connection drops records a retry there. With Redis
    gone that write raised, the cancel was left half done, and the task's message was lost
    (measured in tests/faults/test_outages.py). Only the rebuild's chunks, whose results a
    chord collects, use the backend (workers/rebuild/tasks.py).
    """

    @cached_property
    def backend(self):
        return DisabledBackend(self.app)


class App(Celery):
    def send_task(self, name, args=None, kwargs=None, **options):
        # A task sent by name stores no result unless asked: otherwise Celery's Redis backend
        # subscribes to a result channel nobody reads, and after a Redis restart that subscriber
        # fails every later send_task ("the Celery application must be restarted").
        options.setdefault("ignore_result", self.conf.task_ignore_result)
        return super().send_task(name, args, kwargs, **options)
