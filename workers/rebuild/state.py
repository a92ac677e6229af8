"""A rebuild's run state in Redis: what it rebuilds, into which index, from which checkpoint, for whom.

The run key outlives a crash (RUN_KEY_TTL), so `reindex --resume` can continue
the run; it is deleted when the run ends or is discarded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import redis

from workers.keys import Keys

REPARSE, COPY = "reparse", "copy"
DEFAULT_CHUNKS = 16
# Run keys outlive a crash long enough for someone to notice and resume.
RUN_KEY_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class Selection:
    """Which raw pages are re-parsed; the rest of the live index is copied as it is."""

    source: str | None = None
    since: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.source or self.since)

    def _clauses(self) -> list[dict]:
        clauses: list[dict] = []
        if self.source:
            clauses.append({"term": {"source": self.source}})
        if self.since:
            clauses.append({"range": {"fetched_at": {"gte": self.since}}})
        return clauses

    def selected(self) -> dict:
        """Raw pages (and live documents: both carry source and fetched_at) in the selection."""
        return {"bool": {"filter": self._clauses()}}

    def rest(self) -> dict:
        return {"bool": {"must_not": [self.selected()]}}


def check_request(mode: str, selection: Selection) -> None:
    """Raise ValueError for a rebuild that cannot be asked for."""
    if mode not in (REPARSE, COPY):
        raise ValueError(f"unknown mode {mode!r}")
    if mode == COPY and selection.filtered:
        raise ValueError("--source/--since select pages to re-parse; --copy copies everything")


@dataclass
class RunState:
    run_id: str
    mode: str
    chunks: int
    target: str
    old: str
    started_at: str
    source: str | None = None
    since: str | None = None
    keep_old: bool = False
    total: int = 0
    # Per primary shard of raw-pages: the highest _seq_no already covered.
    checkpoint: dict[str, int] = field(default_factory=dict)
    # The lock token of whoever drives the run: chunks write only while it holds the lock.
    owner: str | None = None
    # Set while the run's chunks hold the lock (a rebuild run as Celery tasks, between its start
    # and its chord callback): each chunk renews the lock, and the shadow key, for this many
    # seconds before every write. None while a coordinator's heartbeat renews them.
    lock_ttl: float | None = None

    @property
    def selection(self) -> Selection:
        return Selection(self.source, self.since)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunState:
        return cls(**json.loads(text))


def load_run(client: redis.Redis, keys: Keys) -> RunState | None:
    text = client.get(keys.rebuild_run)
    return RunState.from_json(text) if text else None


def save_run(client: redis.Redis, keys: Keys, state: RunState) -> None:
    client.set(keys.rebuild_run, state.to_json(), ex=RUN_KEY_TTL)
