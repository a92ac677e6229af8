"""The report document: one class builds it, writes it as its Elasticsearch source, and reads it back.

The parsers build one per report (workers/parse/document.py for a page, pdf_document.py for a
PDF's chapters); the fetch and the rebuild add the pipeline's fields (`indexable`); staging
carries its source form and the index writes it (workers/records.py); whatever reads the reports
index reads a hit back through `from_source` or `from_hit`. The source is the one
schemas/report.schema.json describes, as it was before the type: a PDF's fields only on a PDF's
documents, the pipeline's only once added, `gone` only when flagged.

Below the parsers and the stages, and light: the read-only commands import it, so it loads
neither the parsers nor the country table (workers/parse/countries.py builds `Country` from it).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

# The `source` of a PDF's documents, where a page's names the site parser that read it.
PDF_SOURCE = "pdf"
# Tiers in order of concern, for sorting: the Watch List sits between Tier 2 and Tier 3.
TIER_RANKS = {"Tier 1": 1.0, "Tier 2": 2.0, "Tier 2 Watch List": 2.5, "Tier 3": 3.0}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Written only by PDFs' documents, together.
_PDF_FIELDS = ("page_start", "page_end", "container_url")
# Written together once the pipeline has added them (`indexable`), even when None.
_PIPELINE_FIELDS = ("fetched_at", "tier_rank", "report_key")


def tier_rank(tier: str | None) -> float | None:
    """Sortable tier; None for no tier and for a Special Case, which has no rank."""
    return TIER_RANKS.get(tier or "")


def series_slug(series: str) -> str:
    """'Trafficking in Persons Report' -> 'trafficking-in-persons' ('World Report' keeps its word)."""
    slug = _NOT_SLUG.sub("-", series.lower()).strip("-")
    shorter = slug.removesuffix("-report")
    return shorter if "-" in shorter else slug


@dataclass(frozen=True, slots=True)
class Country:
    name: str
    iso2: str
    iso3: str
    region: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "iso2": self.iso2, "iso3": self.iso3, "region": self.region}


@dataclass
class ReportDocument:
    """One report as the reports index holds it. Every field but `id` has a default, so a hit read
    for a few fields (`_source` includes) reads back with the others empty."""

    id: str
    url: str | None = None
    canonical_url: str | None = None
    source: str | None = None  # the site parser that made it; "pdf" for a PDF's
    title: str | None = None
    publisher: str | None = None
    author: str | None = None
    publication_date: str | None = None
    last_updated: str | None = None
    report_series: str | None = None
    report_year: int | None = None
    country: Country | None = None
    tier: str | None = None
    citation: str | None = None
    summary: str | None = None
    body: str | None = None
    sections: list[dict[str, str]] = field(default_factory=list)
    trafficking_roles: list[str] = field(default_factory=list)
    exploitation_types: list[str] = field(default_factory=list)
    victim_groups: list[str] = field(default_factory=list)
    related_countries: list[dict[str, str]] = field(default_factory=list)
    language: str | None = None
    content_sha256: str | None = None
    parser_version: str | None = None
    # A PDF's documents: where in the PDF, and the PDF itself (a chapter's URL is it with #page=N).
    page_start: int | None = None
    page_end: int | None = None
    container_url: str | None = None
    # Added by the pipeline (`indexable`), never by a parser.
    fetched_at: str | None = None
    tier_rank: float | None = None
    report_key: str | None = None
    gone: bool = False  # its page answered 404/410 and its source flags such pages

    @classmethod
    def from_source(cls, source: dict) -> ReportDocument:
        """A document from its `_source` (or its staged form, the same), whole or in part."""
        country = source.get("country")
        return cls(**{**source, "country": Country(**country) if country else None})

    @classmethod
    def from_hit(cls, hit: dict) -> ReportDocument:
        """A search or get hit's document: its ID from `_id`, so a partial `_source` need not ask for it."""
        return cls.from_source({**hit["_source"], "id": hit["_id"]})

    def to_source(self) -> dict:
        source = asdict(self)
        source["country"] = self.country.as_dict() if self.country else None
        dropped = [*(() if self.container_url else _PDF_FIELDS), *(() if self.fetched_at else _PIPELINE_FIELDS),
                   *(() if self.gone else ("gone",))]
        for name in dropped:
            del source[name]
        return source

    def own_report_key(self) -> str:
        """'trafficking-in-persons-2019-MLI' when series, year and country are known, else 'doc:<id>'.

        A document without all three is a report of its own: its key is unique, so field
        collapsing never merges it with anything (a missing value would make all such
        documents one group) and a count of distinct keys still counts it once.
        """
        if self.report_series and self.report_year and self.country:
            return f"{series_slug(self.report_series)}-{self.report_year}-{self.country.iso3}"
        return f"doc:{self.id}"

    def indexable(self, fetched_at: str) -> ReportDocument:
        """This document with the fields the pipeline adds: when it was fetched, a sortable tier, the
        key shared by every copy of the same report."""
        return replace(self, fetched_at=fetched_at, tier_rank=tier_rank(self.tier), report_key=self.own_report_key())
