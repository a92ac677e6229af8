"""How a rebuild stops."""

from __future__ import annotations


class RebuildError(Exception):
    """The rebuild stopped; the old index still serves."""


class RebuildLocked(RebuildError):
    """Another rebuild holds the lock."""


class StaleRun(Exception):
    """A chunk belongs to a run that was discarded or finished, or that no rebuild holds the lock for."""
