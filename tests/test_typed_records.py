"""What is stored or sent is a typed record that reads back as it was written, old forms included.
Pure round trips: no service."""

from __future__ import annotations

import json

from workers.crawl.parked import ParkedPage
from workers.crawl.profile import PRIVATE_CIDRS, allowed_networks
from workers.raw_pages import StoredPage
from workers.rebuild.summary import RebuildSummary
from workers.records import Failure
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
