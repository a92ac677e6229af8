"""What is stored or sent is a typed record that reads back as it was written, old forms included.
Pure round trips: no service."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import orjson

from workers.crawl.parked import ParkedPage
from workers.crawl.profile import PRIVATE_CIDRS, allowed_networks
from workers.documents import Country, ReportDocument
from workers.index.indices import IndexNames
from workers.raw_pages import StoredPage
from workers.rebuild.summary import RebuildSummary
from workers.records import DocumentEntry, Failure, RawPage, Staged
from workers.tracking.options import CrawlOptions


def test_crawl_options_read_back_as_written():
    for options in (CrawlOptions(), CrawlOptions("tip", force=True), CrawlOptions(allow_networks=("10.0.0.0/8",))):
        assert CrawlOptions.from_json(options.to_json()) == options


def test_crawl_options_stored_with_the_old_private_networks_flag_still_open_them():
    legacy = CrawlOptions.from_json('{"source": null, "allow_private_networks": true}')
    assert legacy.legacy_private_networks and CrawlOptions.from_json(legacy.to_json()) == legacy
    assert allowed_networks(legacy) == list(PRIVATE_CIDRS)
    assert allowed_networks(CrawlOptions(allow_networks=("10.1.0.0/16",))) == ["10.1.0.0/16"]


def test_a_parked_page_reads_back_and_keeps_the_member_it_had():
    for page in (ParkedPage("http://h.test/a", "c1"), ParkedPage("http://h.test/b", None, robots_deferrals=2)):
        assert ParkedPage.from_json(page.to_json()) == page
    # Members parked before the type: the same JSON, so the same page parked again is one member.
    before = json.dumps({"url": "http://h.test/a", "crawl_id": "c1"}, sort_keys=True)
    assert ParkedPage("http://h.test/a", "c1").to_json() == before
    assert ParkedPage.from_json(before).fetch_kwargs() == {"url": "http://h.test/a", "crawl_id": "c1"}


def test_a_stored_raw_page_reads_back_with_its_gone_documents_in_either_form():
    page = StoredPage("http://h.test/r", "http://h.test/r", "2025-01-01T00:00:00+00:00", "text/html", 200,
                      "http://h.test/r", "generic", gone=True, on_gone="flag", gone_document_ids=("d1", "d2"))
    assert StoredPage.from_source(page.to_source()) == page and not page.deleted_as_gone
    # Pages that went before PDFs were read stored a single ID as a string.
    old = StoredPage.from_source({"url": "u", "final_url": "u", "fetched_at": "t", "gone": True,
                                  "on_gone": "delete", "gone_document_id": "d1"})
    assert old.gone_document_ids == ("d1",) and old.deleted_as_gone
    assert StoredPage.from_source({"url": "u", "final_url": "u", "fetched_at": "t"}).gone_document_ids == ()


def test_a_failure_record_reads_back_as_written():
    failure = Failure("https://h.test/r?x=1", "parse", "not_a_report", "no country", status=200, source="tip")
    assert Failure.from_json(failure.to_json()) == failure
    assert Failure.from_source(failure.to_source()) == failure


def test_a_rebuild_summary_reads_back_and_carries_its_timings_once_measured():
    summary = RebuildSummary("r1", "reparse", "reports-2", "reports-1", True, read=10, failures=1, gone=2,
                             documents=9, caught_up=0)
    assert "elapsed" not in summary.to_dict()  # a task-run rebuild does not time itself
    assert RebuildSummary.from_dict(summary.to_dict()) == summary
    timed = summary.timed(3.0)
    assert (timed.elapsed, timed.docs_per_second) == (3.0, 3.0)
    assert RebuildSummary.from_dict(timed.to_dict()) == timed


MALI = Country("Mali", "ML", "MLI", "Africa")
PAGE_DOCUMENT = ReportDocument(
    "0" * 32, url="https://h.test/mali", canonical_url="https://h.test/mali", source="generic", title="Mali",
    report_series="Trafficking in Persons Report", report_year=2019, country=MALI, tier="Tier 2",
    sections=[{"heading": "Prosecution", "text": "The government ..."}], trafficking_roles=["source"],
    related_countries=[{"name": "Niger", "iso2": "NE"}], content_sha256="a" * 64, parser_version="2.1.0")


def test_a_report_document_reads_back_from_its_source_as_parsed_indexed_and_flagged():
    chapter = ReportDocument("1" * 32, url="https://h.test/r.pdf#page=3", source="pdf", country=MALI,
                             page_start=3, page_end=9, container_url="https://h.test/r.pdf")
    indexed = PAGE_DOCUMENT.indexable("2025-01-01T00:00:00+00:00")
    for document in (PAGE_DOCUMENT, chapter, indexed, chapter.indexable("2025-01-01T00:00:00+00:00"),
                     ReportDocument("2" * 32, gone=True).indexable("2025-01-01T00:00:00+00:00")):
        assert ReportDocument.from_source(document.to_source()) == document
    assert (indexed.report_key, indexed.tier_rank) == ("trafficking-in-persons-2019-MLI", 2.0)


def test_the_report_document_has_every_field_of_the_report_schema_and_no_other():
    schema = json.loads((Path(__file__).parent.parent / "schemas/report.schema.json").read_text())
    assert {f.name for f in fields(ReportDocument)} == set(schema["properties"])


def test_a_report_documents_source_holds_a_pdfs_and_the_pipelines_fields_only_once_set():
    source = PAGE_DOCUMENT.to_source()
    assert source["country"] == {"name": "Mali", "iso2": "ML", "iso3": "MLI", "region": "Africa"}
    assert not {"page_start", "container_url", "fetched_at", "tier_rank", "report_key", "gone"} & set(source)
    # Once added, the pipeline's fields are written even when empty: a Special Case has no rank.
    special = ReportDocument("3" * 32, tier="Special Case").indexable("2025-01-01T00:00:00+00:00").to_source()
    assert special["tier_rank"] is None and special["report_key"] == "doc:" + "3" * 32


def test_a_hit_read_for_a_few_fields_is_a_document_with_the_others_empty():
    hit = {"_id": "4" * 32, "_source": {"url": "https://h.test/x", "tier": "Tier 3", "country": MALI.as_dict()}}
    document = ReportDocument.from_hit(hit)
    assert (document.id, document.tier, document.country, document.body, document.sections) == (
        "4" * 32, "Tier 3", MALI, None, [])


def _document_entry() -> DocumentEntry:
    raw = RawPage("https://h.test/mali", "https://h.test/mali", 200, "text/html", None, None,
                  "2025-01-01T00:00:00+00:00", "a" * 64, 2, "aGk=", "https://h.test/mali", "generic")
    return DocumentEntry("https://h.test/mali", "c1", "tip", [PAGE_DOCUMENT.indexable(raw.fetched_at)], raw)


def test_a_staged_document_entry_reads_back_with_typed_documents():
    entry = _document_entry()
    assert Staged.from_json(entry.key, entry.to_json()) == entry


def test_an_entry_staged_by_a_worker_before_the_document_type_still_reads_back_and_writes_the_same():
    entry = _document_entry()
    # What an older worker staged: its document the dict the parser made, with the pipeline's fields.
    document = {
        "id": "0" * 32, "url": "https://h.test/mali", "canonical_url": "https://h.test/mali", "source": "generic",
        "title": "Mali", "publisher": None, "author": None, "publication_date": None, "last_updated": None,
        "report_series": "Trafficking in Persons Report", "report_year": 2019,
        "country": {"name": "Mali", "iso2": "ML", "iso3": "MLI", "region": "Africa"}, "tier": "Tier 2",
        "citation": None, "summary": None, "body": None,
        "sections": [{"heading": "Prosecution", "text": "The government ..."}], "trafficking_roles": ["source"],
        "exploitation_types": [], "victim_groups": [], "related_countries": [{"name": "Niger", "iso2": "NE"}],
        "language": None, "content_sha256": "a" * 64, "parser_version": "2.1.0",
        "fetched_at": "2025-01-01T00:00:00+00:00", "tier_rank": 2.0, "report_key": "trafficking-in-persons-2019-MLI"}
    old = orjson.dumps({"kind": "document", "url": entry.url, "crawl_id": "c1", "source": "tip",
                        "documents": [document], "raw": vars(entry.raw), "recheck": list(entry.recheck),
                        "dropped": []})
    assert orjson.loads(entry.to_json()) == orjson.loads(old)  # staged as before, for workers not yet upgraded
    read = Staged.from_json(entry.key, old)
    assert read == entry
    names = IndexNames()
    [written] = [a for a in read.to_actions(names, None) if a["_index"] == names.reports]
    assert written["_source"] == document and written["_id"] == "0" * 32
