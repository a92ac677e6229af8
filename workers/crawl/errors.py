"""Why a page could not be fetched, and whether trying again could help.

`RetryableFetchError`: connection trouble, timeouts, 5xx, 429. `PermanentFetchError`:
4xx, not HTML, too large, redirect loops, addresses the network policy refuses.
The caller decides how often to retry.
"""

from __future__ import annotations


class FetchError(Exception):
    """A page could not be fetched. `reason` is a short code, the message the detail."""

    def __init__(self, reason: str, detail: str, status: int | None = None):
        super().__init__(detail)
        self.reason = reason
        self.status = status

    def __reduce__(self):  # picklable, so the error survives crossing Celery
        return self.__class__, (self.reason, str(self), self.status)


class PermanentFetchError(FetchError):
    pass


class RetryableFetchError(FetchError):
    # Set once the host that answered 429/503 was told to back off, so the host that
    # redirected to it is not backed off as well (workers/crawl/polite.py).
    backed_off = False

    def __init__(self, reason: str, detail: str, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(reason, detail, status)
        self.retry_after = retry_after

    def __reduce__(self):
        return self.__class__, (self.reason, str(self), self.status, self.retry_after)
