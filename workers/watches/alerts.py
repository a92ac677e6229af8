"""Alerts: which written reports match which watch, the one alert each gets, and where alerts live.

An alert is one per watch, report (`report_key`) and tier: its ID is a hash of the three, and it is
created with `op_type: create`, so a second copy of the report, a recrawl that writes the same
report again, or an index batch written twice never makes a second one. A report seen for the
first time is `new` (its move against the country's previous edition); a tier that differs from
the last alert's is `tier_changed`. The tier is the report's, as `search` shows it: the best
copy's (workers/search/copies.py), so a mirror that states another tier does not alert. A rebuild
writes the reports index directly, not through the index task, so it never alerts.

Alerts are documents in the `alerts` index (created on first use, a plain index: it is never
rebuilt): what was sent, what is pending, how often it was tried and why it failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from elasticsearch import ApiError, BadRequestError, Elasticsearch, helpers

from workers.documents import ReportDocument, tier_rank
from workers.editions.moves import NEW, tier_move
from workers.editions.read import edition_query, editions
from workers.index.indices import IndexNames, replica_settings
from workers.parse.countries import lookup
from workers.search.copies import best_first
from workers.search.export import citation
from workers.settings import Settings
from workers.watches.config import Watch, WatchesError, load_watches

log = logging.getLogger(__name__)

PENDING, SENT = "pending", "sent"
TIER_CHANGED = "tier_changed"
MAPPING = {"dynamic": "strict", "properties": {
    "watch": {"type": "keyword"}, "report_key": {"type": "keyword"}, "event": {"type": "keyword"},
    "tier": {"type": "keyword"}, "move": {"type": "keyword"}, "destination": {"type": "keyword"},
    "status": {"type": "keyword"}, "attempts": {"type": "integer"}, "last_error": {"type": "text", "index": False},
    "created_at": {"type": "date"}, "sent_at": {"type": "date"}, "due_at": {"type": "date"},
    "citation": {"type": "object", "enabled": False}}}
# Copies of one report read to find its tier, as in search.
_COPY_FIELDS = ["id", "url", "source", "publisher", "fetched_at", "tier", "title", "report_series", "report_year",
                "country", "report_key", "container_url", "page_start"]


def alerts_index(prefix: str) -> str:
    return f"{prefix}alerts"


def alert_id(watch: str, report_key: str, tier: str | None) -> str:
    return hashlib.sha1(f"{watch}\n{report_key}\n{tier or ''}".encode()).hexdigest()


def now_iso(later: float = 0.0) -> str:
    """Now, or `later` seconds from now."""
    return (datetime.now(UTC) + timedelta(seconds=later)).isoformat(timespec="seconds")


@dataclass
class Alert:
    watch: str
    report_key: str
    event: str  # new | tier_changed
    tier: str | None
    move: str
    destination: str  # the webhook URL, or "log"
    citation: dict
    status: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    created_at: str = field(default_factory=now_iso)
    sent_at: str | None = None
    # While pending: when its delivery is due to have been tried (workers/watches/tasks.py).
    due_at: str | None = None

    @property
    def id(self) -> str:
        return alert_id(self.watch, self.report_key, self.tier)

    def to_source(self) -> dict:
        return asdict(self)

    @classmethod
    def from_source(cls, source: dict) -> Alert:
        return cls(**source)

    def payload(self) -> bytes:
        """What the webhook receives: the citation fields, the tier and its move."""
        return json.dumps({"watch": self.watch, "event": self.event, "report_key": self.report_key,
                           "tier": self.tier, "move": self.move, **self.citation}, ensure_ascii=False).encode()


def ensure_alerts_index(es: Elasticsearch, prefix: str, replicas: int | str = "auto") -> str:
    """The alerts index, created on first use; one an older version created gains the fields added
    since (`due_at`), which its strict mapping would refuse (adding fields is safe on a live index)."""
    index = alerts_index(prefix)
    if es.indices.exists(index=index):
        es.indices.put_mapping(index=index, properties=MAPPING["properties"])
        return index
    try:
        es.indices.create(index=index, mappings=MAPPING, settings=replica_settings(replicas))
    except ApiError as exc:  # created by another worker meanwhile
        if exc.meta.status != 400 or "resource_already_exists" not in str(exc):
            raise
    return index


@lru_cache(maxsize=4)
def _watches_at(path: str, _mtime: float) -> dict[str, Watch]:
    return load_watches(Path(path))


def current_watches(settings: Settings) -> dict[str, Watch]:
    """The watches file as it is now (read again when it changes); none without WATCHES_FILE."""
    if settings.watches_file is None:
        return {}
    path = Path(settings.watches_file)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise WatchesError(f"{path}: cannot read watches file: {exc}") from exc
    return _watches_at(str(path), mtime)


def _countries(watch: Watch) -> set[str]:
    codes = set()
    for value in watch.countries:
        found = lookup(value)
        codes.add(found.iso2 if found else value.strip().upper())
    return codes


def _filters_match(watch: Watch, doc: ReportDocument) -> bool:
    country = doc.country
    return ((not watch.countries or (country is not None and {country.iso2, country.iso3} & _countries(watch)))
            and (not watch.series or doc.report_series in watch.series)
            and (not watch.tiers or doc.tier in watch.tiers))


def _query_matches(es: Elasticsearch, reports: str, watch: Watch, ids: list[str]) -> set[str]:
    """The documents among `ids` that the watch's query matches, read as `search` reads a query:
    its syntax, or its words when it is not valid syntax (an unclosed quote)."""
    from workers.search.faceted import SEARCH_FIELDS

    def matching(kind: str) -> set[str]:
        query = {"bool": {"filter": [{"ids": {"values": ids}}], "must": [{kind: {
            "query": watch.query, "fields": SEARCH_FIELDS, "default_operator": "AND", "lenient": True}}]}}
        return {hit["_id"] for hit in es.search(index=reports, query=query, size=len(ids), source=False)["hits"]["hits"]}

    try:
        return matching("query_string")
    except BadRequestError:
        return matching("simple_query_string")


def _copies(es: Elasticsearch, reports: str, key: str, written: list[ReportDocument]) -> list[ReportDocument]:
    """Every copy of a report: the ones stored, with the ones just written in their new version."""
    stored = helpers.scan(es, index=reports, query={"query": {"bool": {"filter": [{"term": {"report_key": key}}],
                          "must_not": [{"term": {"gone": True}}]}}}, _source=_COPY_FIELDS, size=50)
    copies = {hit["_id"]: ReportDocument.from_hit(hit) for hit in stored}
    copies.update({doc.id: doc for doc in written})
    return best_first(copies.values())


def _previous_alert(es: Elasticsearch, index: str, watch: str, key: str) -> Alert | None:
    hits = es.search(index=index, query={"bool": {"filter": [{"term": {"watch": watch}},
                     {"term": {"report_key": key}}]}}, sort=[{"created_at": "desc"}], size=1)["hits"]["hits"]
    return Alert.from_source(hits[0]["_source"]) if hits else None


def _move_against_previous_edition(es: Elasticsearch, reports: str, best: ReportDocument, tier: str | None) -> str:
    earlier = list(editions(es, reports, edition_query(country=best.country.iso2, series=best.report_series,
                                                       year_to=best.report_year - 1)))
    return tier_move(earlier[-1].tier_rank, tier_rank(tier)) if earlier else NEW


def raise_alerts(es: Elasticsearch, settings: Settings, documents: list[ReportDocument]) -> list[Alert]:
    """The alerts that `documents` (just written to the reports index) raise, created; the caller
    sends the new ones on their way. Idempotent: the same documents again raise none. A broken
    watches file is logged, never allowed to stop indexing (`report-ingest alerts` says what is wrong)."""
    try:
        watches = current_watches(settings)
    except WatchesError as exc:
        log.error("no alerts raised for %d documents: %s", len(documents), exc)
        return []
    documents = [d for d in documents if not (d.report_key or "doc:").startswith("doc:")]
    if not watches or not documents:
        return []
    names = IndexNames(settings.index_prefix)
    by_watch = {name: [d for d in documents if _filters_match(watch, d)] for name, watch in watches.items()}
    if not any(by_watch.values()):
        return []
    # The batch was just written: searchable now, for a watch's query and an edition's move.
    es.indices.refresh(index=names.reports)
    matched: dict[tuple[str, str], list[ReportDocument]] = {}
    for name, watch in watches.items():
        candidates = by_watch[name]
        if watch.query and candidates:
            found = _query_matches(es, names.reports, watch, [d.id for d in candidates])
            candidates = [d for d in candidates if d.id in found]
        for doc in candidates:
            matched.setdefault((watch.name, doc.report_key), []).append(doc)
    if not matched:
        return []
    index = ensure_alerts_index(es, settings.index_prefix, settings.elasticsearch_replicas)
    raised = []
    for (name, key), written in matched.items():
        watch, copies = watches[name], _copies(es, names.reports, key, written)
        best = copies[0]
        tier = next((c.tier for c in copies if c.tier), None)
        previous = _previous_alert(es, index, name, key)
        if previous is not None and previous.tier == tier:
            continue
        if previous is None:
            event, move = NEW, _move_against_previous_edition(es, names.reports, best, tier)
        else:
            event, move = TIER_CHANGED, tier_move(tier_rank(previous.tier), tier_rank(tier))
        alert = Alert(name, key, event, tier, move, watch.destination, citation(best),
                      due_at=now_iso(settings.alerts_redeliver_after))
        try:
            es.create(index=index, id=alert.id, document=alert.to_source(), refresh="wait_for")
        except ApiError as exc:
            if exc.meta.status == 409:  # raised before (a batch written twice)
                continue
            raise
        raised.append(alert)
    return raised


def list_alerts(es: Elasticsearch, prefix: str, *, status: str | None = None, limit: int = 50) -> list[dict]:
    """The newest alerts (with their IDs), all or of one status."""
    index = alerts_index(prefix)
    if not es.indices.exists(index=index):
        return []
    query = {"term": {"status": status}} if status else {"match_all": {}}
    hits = es.search(index=index, query=query, sort=[{"created_at": "desc"}], size=limit)["hits"]["hits"]
    return [{"id": hit["_id"], **hit["_source"]} for hit in hits]


def claim_overdue(es: Elasticsearch, prefix: str, lease: float, limit: int) -> list[str]:
    """The IDs of up to `limit` pending alerts past their due time, oldest due first, each given a
    new due time `lease` seconds ahead (so the next look leaves them to the delivery sent now).
    Alerts raised before alerts had a due time are due `lease` after they were raised."""
    if not es.indices.exists(index=alerts_index(prefix)):
        return []
    index = ensure_alerts_index(es, prefix)
    now = now_iso()
    overdue = {"bool": {"filter": [{"term": {"status": PENDING}}], "should": [
        {"range": {"due_at": {"lte": now}}},
        {"bool": {"must_not": [{"exists": {"field": "due_at"}}],
                  "filter": [{"range": {"created_at": {"lte": now_iso(-lease)}}}]}}], "minimum_should_match": 1}}
    hits = es.search(index=index, query=overdue, size=limit, source=False,
                     sort=[{"due_at": {"order": "asc", "missing": "_first"}}, {"created_at": "asc"}])["hits"]["hits"]
    ids = [hit["_id"] for hit in hits]
    if ids:
        helpers.bulk(es, ({"_op_type": "update", "_index": index, "_id": id_, "doc": {"due_at": now_iso(lease)}}
                          for id_ in ids), refresh="wait_for")
    return ids
