"""Reports whose copies disagree: shown, never settled silently by picking one copy.

Two kinds:
- tier: copies with the same report_key (series, year, country) that give different tiers;
- year: copies of the same text (same series and country, same opening of the narrative)
  that give different report years. These have different report keys, since the year is
  part of the key, so they are found by their text instead.

A value a copy does not state (no tier found) is not a disagreement. The listing reads every
live document's few small fields once (a scroll), which takes seconds per 100,000 documents.
"""

from __future__ import annotations

import re
from collections import defaultdict

from elasticsearch import Elasticsearch, helpers

from workers.documents import ReportDocument
from workers.search.copies import best_first

_FIELDS = ["id", "url", "source", "publisher", "fetched_at", "report_key", "report_series", "report_year",
           "country", "tier", "summary"]
_WORD = re.compile(r"[a-z0-9]+")
# Enough words to tell two narratives apart, few enough to survive a mirror's edits further on.
_FINGERPRINT_WORDS = 30


def fingerprint(text: str | None) -> str | None:
    """The opening words of a narrative, without case, punctuation or line breaks."""
    words = _WORD.findall((text or "").lower())[:_FINGERPRINT_WORDS]
    return " ".join(words) if len(words) >= 10 else None


def disagreements(copies: list[ReportDocument]) -> list[dict]:
    """Conflicts among already loaded documents (the `_FIELDS` of each)."""
    by_key: dict[str, list[ReportDocument]] = defaultdict(list)
    by_text: dict[tuple, list[ReportDocument]] = defaultdict(list)
    for copy in copies:
        by_key[copy.report_key].append(copy)
        text = fingerprint(copy.summary)
        if text and copy.report_series and copy.country:
            by_text[(copy.report_series, copy.country.iso3, text)].append(copy)
    found = [_conflict(group, "tier") for group in by_key.values()]
    found += [_conflict(group, "report_year") for group in by_text.values()]
    return sorted((c for c in found if c), key=lambda c: (c["report_key"], c["field"]))


def _conflict(group: list[ReportDocument], field: str) -> dict | None:
    values: dict[str, list[str]] = defaultdict(list)
    for copy in best_first(group):
        if (value := getattr(copy, field)) is not None:
            values[str(value)].append(copy.url)
    if len(values) < 2:
        return None
    return {"report_key": best_first(group)[0].report_key, "field": field, "values": dict(values)}


def find_conflicts(es: Elasticsearch, index: str) -> list[dict]:
    """Every report whose copies disagree on tier or year, in the live index."""
    query = {"bool": {"must_not": [{"term": {"gone": True}}]}}
    hits = helpers.scan(es, index=index, query={"query": query, "_source": _FIELDS}, size=2000)
    return disagreements([ReportDocument.from_hit(hit) for hit in hits])
