"""One rebuild at a time: a Redis lock and the heartbeat that keeps it, as one context manager.

The lock's value is a token naming the run's owner, and every write checks it
(fencing): chunks before each bulk write (`owned_run`), the coordinator before
each catch-up write and, renewing first, right before the swap. A heartbeat
that fails for any reason, or that has not renewed within the lock's TTL, stops
the rebuild. The shadow key (dual writes) is renewed with the lock, so a dead
holder's dual writes stop by themselves.

Who renews: the process driving the run, from a thread (`RebuildLock`): the CLI
for a CLI-run rebuild; for a rebuild run as Celery tasks, the task that starts it
and then the chord callback that finishes it. In between no process drives the
run, so the lock is handed on to the chunks: each renews it, and the shadow key,
before every write (`owned_run`, with `RunState.lock_ttl` set). Chunks that do not
run within a TTL let it expire, and the callback then stops with a lost lock.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

from workers.keys import Keys
from workers.rebuild.errors import RebuildError, RebuildLocked, StaleRun
from workers.rebuild.state import RunState

log = logging.getLogger(__name__)

# A crashed rebuild blocks the next one for at most this long.
LOCK_TTL = 60.0
_ACQUIRE_POLL = 0.1
# Extend the lock, and the shadow key with it, only if the token still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
_LOST = "another process holds it, or it expired"


def renew(client: redis.Redis, keys: Keys, token: str, ttl: float) -> bool:
    """Extend the lock and the shadow key by `ttl` seconds if `token` holds the lock; False if not."""
    script = client.register_script(_RENEW)
    return bool(script(keys=[keys.rebuild_lock, keys.rebuild_shadow], args=[token, int(ttl * 1000)]))


def owned_run(client: redis.Redis, keys: Keys, run_id: str) -> RunState:
    """The run, if it is still current and the lock holder is its owner; else StaleRun.

    For a run handed on to its chunks, this check renews the lock too.
    """
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.rebuild_run)
    pipe.get(keys.rebuild_lock)
    text, holder = pipe.execute()
    state = RunState.from_json(text) if text else None
    if state is None or state.run_id != run_id:
        raise StaleRun(f"run {run_id} was discarded or has finished")
    if state.owner is None or holder != state.owner:
        raise StaleRun(f"run {run_id}: its coordinator no longer holds the rebuild lock")
    if state.lock_ttl is not None and not renew(client, keys, state.owner, state.lock_ttl):
        raise StaleRun(f"run {run_id}: lost the rebuild lock")
    return state


class RebuildLock:
    """The rebuild lock, renewed from a thread while the `with` block runs; released at its end
    unless handed on (`hand_on`).

    Once the lock may have been lost, nothing more is written or swapped (`check`, `hold`).
    Lost means: a renewal found the lock gone or held by someone else, or no renewal
    succeeded for a whole TTL (Redis down, slow, or the thread stuck), after which the
    lock may have expired and been taken.
    """

    def __init__(self, client: redis.Redis, keys: Keys, ttl: float = LOCK_TTL, token: str | None = None):
        self.client, self.keys, self.ttl = client, keys, ttl
        self.token = token or uuid.uuid4().hex
        self._lost: str | None = None
        # Monotonic time of the last renewal's request: the lock lives at least a TTL after it.
        self._since = time.monotonic()
        self._handed_on = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rebuild-lock", daemon=True)

    # --- taking it ------------------------------------------------------------------

    def acquire(self, wait: float, say: Callable[[str], None]) -> RebuildLock:
        """Take the lock, waiting up to `wait` seconds for another rebuild's; raises RebuildLocked."""
        if self._take():
            return self
        say(f"another rebuild holds the lock; waiting up to {wait:.0f}s (a crashed one's lock expires by itself)")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(_ACQUIRE_POLL)
            if self._take():
                return self
        raise RebuildLocked(
            "another rebuild is running (or crashed less than "
            f"{self.ttl:.0f}s ago and its lock has not expired yet)"
        )

    def take_over(self) -> RebuildLock:
        """Continue holding a lock handed on under this token; RebuildError if it was lost meanwhile."""
        self.hold()
        return self

    def _take(self) -> bool:
        sent = time.monotonic()
        if self.client.set(self.keys.rebuild_lock, self.token, nx=True, px=int(self.ttl * 1000)):
            self._since = sent
            return True
        return False

    # --- keeping it -----------------------------------------------------------------

    def _renew(self) -> bool:
        sent = time.monotonic()
        if not renew(self.client, self.keys, self.token, self.ttl):
            self._lost = _LOST
            return False
        self._since = max(self._since, sent)
        return True

    def _run(self) -> None:
        pause = self.ttl / 3
        while not self._stop.wait(pause):
            try:
                if not self._renew():
                    return
                pause = self.ttl / 3
            except Exception as exc:  # noqa: BLE001 - Redis unreachable or slow: retry while the lock may be ours
                log.warning("could not renew the rebuild lock: %s", exc)
                if self._expired():
                    self._lost = f"not renewed for {self.ttl:g}s ({exc.__class__.__name__}: {exc})"
                    return
                pause = self.ttl / 10

    def _expired(self) -> bool:
        return time.monotonic() - self._since >= self.ttl

    def check(self) -> None:
        """Raise RebuildError if the lock may have been lost."""
        lost = self._lost or (f"not renewed for {self.ttl:g}s" if self._expired() else None)
        if lost:
            raise RebuildError(
                f"lost the rebuild lock ({lost}; another rebuild may be running): stopped before writing "
                "or swapping; the old index still serves (`reindex --resume` continues this run)"
            )

    def hold(self) -> None:
        """Renew now: the lock is certainly ours for one TTL, the time a guarded step may take."""
        self.check()
        try:
            self._renew()
        except RedisError as exc:
            self._lost = f"could not renew it: {exc}"
        self.check()

    def hand_on(self) -> None:
        """Leave the lock held at the end of the block, renewed now: the run's chunks keep it from here."""
        self.hold()
        self._handed_on = True

    # --- the block ------------------------------------------------------------------

    def __enter__(self) -> RebuildLock:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._handed_on and exc_type is None:
            return
        try:
            self.client.lock(self.keys.rebuild_lock).do_release(self.token)
        except RedisError:
            pass  # not ours any more, or Redis is away: either way it expires by itself
