"""How a rebuild stops."""

from __future__ import annotations


class RebuildError(Exception):
    """The rebuild stopped; the old index still serves."""


class RebuildLocked(RebuildError):
    """Another rebuild holds the lock."""


class LostPointInTime(Exception):
    """A chunk's point in time lost a shard's context with the node that held it: the chunk is
    read again from its start, over a new point in time on the copies left (its writes are
    idempotent)."""


class StaleRun(Exception):
    """A chunk belongs to a run that was discarded or finished, or that no rebuild holds the lock for."""
