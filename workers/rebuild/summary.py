"""How a rebuild ended: what `reindex` prints, and what a rebuild run as a task returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class RebuildSummary:
    run_id: str
    mode: str
    live: str  # the index the alias points at now
    old: str  # the one it pointed at before
    old_deleted: bool
    read: int  # raw pages (or documents, with --copy) the chunks read
    failures: int  # pages that did not parse, now in the failures index
    gone: int  # pages gone (404/410) left out
    documents: int  # documents live when it ended
    caught_up: int  # raw pages the crawl wrote meanwhile, caught up
    # Measured by whoever waited for it (the CLI's coordinator), not by a task-run rebuild.
    elapsed: float | None = None
    docs_per_second: float | None = None

    def timed(self, elapsed: float) -> RebuildSummary:
        return replace(self, elapsed=round(elapsed, 2), docs_per_second=round(self.documents / elapsed, 1))

    def to_dict(self) -> dict:
        """As a task's JSON result, and as the CLI prints it (the timings only once measured)."""
        return {name: value for name, value in asdict(self).items()
                if value is not None or name not in ("elapsed", "docs_per_second")}

    @classmethod
    def from_dict(cls, summary: dict) -> RebuildSummary:
        return cls(**{f.name: summary[f.name] for f in fields(cls) if f.name in summary})
