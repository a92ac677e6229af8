"""Reading the reports index: faceted search (`faceted.py`), copies of one report (`copies.py`),
deep pages (`paging.py`), conflicts between copies (`conflicts.py`), exports (`export.py`).

The faceted search's names are re-exported here, loaded on first use: `workers.search.copies`
is read by modules that never search (the editions, the watches), which need none of it.
"""

from __future__ import annotations

_FACETED = ("Filters", "ReportSearch", "run_search", "search_body", "HIGHLIGHT_FIELDS", "SEARCH_FIELDS", "SORTS")


def __getattr__(name: str):
    if name in _FACETED:
        from workers.search import faceted

        return getattr(faceted, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
