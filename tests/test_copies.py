"""One report, many copies: report_key, collapsed search, counts of reports, conflicts, deep pages.

The copies are documents of the generated sample report (tests/pdfs.py) as the PDF parser
makes them, republished under other URLs, sources and fetch times, indexed with the bulk API
into the real Elasticsearch.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from elasticsearch import BadRequestError

from tests.helpers import cli
from tests.pdfs import SAMPLE, report_pdf
from workers.documents import Country, ReportDocument, series_slug
from workers.search.copies import best_first, on_publisher_site
from workers.index.bulk import bulk_write
from workers.index.indices import ensure_indices
from workers.parse.pdf import parse_pdf
from workers.search.faceted import Filters, run_search
from workers.urls import doc_id

PDF_URL = "https://www.state.gov/wp-content/uploads/2019/06/2019-Trafficking-in-Persons-Report.pdf"
STATE = "https://www.state.gov/reports/2019-trafficking-in-persons-report/{}/"
REFWORLD = "https://www.refworld.org/docid/{}.html"
ECOI = "https://www.ecoi.net/en/document/{}.html"


# --- pure functions -------------------------------------------------------------------


MALI = Country("Mali", "ML", "MLI", "Africa")


def test_report_key_from_series_year_and_country() -> None:
    doc = ReportDocument("x", report_series="Trafficking in Persons Report", report_year=2019, country=MALI)
    assert doc.own_report_key() == "trafficking-in-persons-2019-MLI"
    assert series_slug("World Report") == "world-report"
    assert series_slug("Country Reports on Human Rights Practices") == "country-reports-on-human-rights-practices"


@pytest.mark.parametrize("missing", ["report_series", "report_year", "country"])
def test_a_document_without_a_full_key_is_its_own_report(missing) -> None:
    doc = ReportDocument("abc", **{"report_series": "Trafficking in Persons Report", "report_year": 2019,
                                   "country": MALI, missing: None})
    assert doc.own_report_key() == "doc:abc"


def test_publisher_site_is_the_host_or_its_subdomain() -> None:
    state = "United States Department of State"
    assert on_publisher_site("https://www.state.gov/x", state)
    assert on_publisher_site("https://2009-2017.state.gov/x", state)
    assert not on_publisher_site("https://notstate.gov/x", state)
    assert not on_publisher_site("https://www.refworld.org/x", state)
    assert not on_publisher_site("https://www.state.gov/x", "Some NGO")


def test_best_copy_is_own_site_then_html_then_newest() -> None:
    state = "United States Department of State"
    copies = [ReportDocument(doc_id(url), url=url, publisher=state, source=source, fetched_at=fetched_at)
              for url, source, fetched_at in (
                  ("https://www.refworld.org/a", "refworld", "2024-09-01"),
                  ("https://www.state.gov/r.pdf#page=5", "pdf", "2024-08-01"),
                  ("https://www.state.gov/old", "statedept", "2024-01-01"),
                  ("https://www.state.gov/new", "statedept", "2024-02-01"),
                  ("https://www.ecoi.net/b", "pdf", "2024-10-01"))]
    assert [c.url for c in best_first(copies)] == [
        "https://www.state.gov/new", "https://www.state.gov/old", "https://www.state.gov/r.pdf#page=5",
        "https://www.refworld.org/a", "https://www.ecoi.net/b"]


# --- against Elasticsearch --------------------------------------------------------------


def _copy(chapter: ReportDocument, url: str, source: str, fetched_at: str, **changes) -> ReportDocument:
    pdf = {} if source == "pdf" else {"page_start": None, "page_end": None, "container_url": None}
    return replace(chapter, id=doc_id(url), url=url, canonical_url=url, source=source, **pdf,
                   **changes).indexable(fetched_at)


def sample_copies() -> dict[str, ReportDocument]:
    """Copies of the sample report's chapters on the publisher's site and on mirrors, ready to index."""
    chapters = {d.country.iso2: d.indexable("2024-07-01T00:00:00+00:00")
                for d in parse_pdf(report_pdf(SAMPLE), PDF_URL)}
    ml, la, th, mm = chapters["ML"], chapters["LA"], chapters["TH"], chapters["MM"]
    return {
        "ml_pdf": ml,
        # The refworld copy is fetched last, but the State Department's page is the publisher's own.
        "ml_state": _copy(ml, STATE.format("mali"), "statedept", "2024-05-01T00:00:00+00:00"),
        "ml_refworld": _copy(ml, REFWORLD.format("5d3f"), "refworld", "2024-08-01T00:00:00+00:00",
                             tier="Tier 2 Watch List"),
        "la_pdf": la,
        "la_refworld": _copy(la, REFWORLD.format("5d40"), "refworld", "2024-03-01T00:00:00+00:00"),
        "th_pdf": th,
        "th_ecoi": _copy(th, ECOI.format("th19"), "generic", "2024-09-01T00:00:00+00:00"),
        "mm_pdf": mm,
        # A mirror that files the 2019 text under 2020: a different key, the same narrative.
        "mm_ecoi": _copy(mm, ECOI.format("mm20"), "generic", "2024-09-01T00:00:00+00:00", report_year=2020),
        "so_pdf": chapters["SO"],
        # Two documents without a series: each is a report of its own.
        "note_a": _copy(chapters["SO"], "https://example.org/note-a", "generic", "2024-01-01T00:00:00+00:00",
                        report_series=None, title="Field note A"),
        "note_b": _copy(chapters["SO"], "https://example.org/note-b", "generic", "2024-01-01T00:00:00+00:00",
                        report_series=None, title="Field note B"),
    }


@pytest.fixture(scope="module")
def copies() -> dict[str, ReportDocument]:
    return sample_copies()


@pytest.fixture(scope="module")
def corpus(es, names, settings, copies):
    ensure_indices(es, names, settings.schemas_dir)
    actions = [{"_op_type": "index", "_index": names.reports, "_id": d.id, "_source": d.to_source()}
               for d in copies.values()]
    assert bulk_write(es, actions).succeeded == len(copies)
    es.indices.refresh(index=names.reports)
    return names.reports


def by_url(result: dict) -> dict[str, dict]:
    return {hit["url"]: hit for hit in result["hits"]}


def test_one_hit_per_report_with_the_best_copy_first(es, corpus, copies) -> None:
    result = run_search(es, corpus, per_page=50)
    # ML, LA, TH, MM 2019, MM 2020 (the mislabelled mirror), SO, and the two notes.
    assert result["total"] == len(result["hits"]) == 8
    hits = by_url(result)
    mali = hits[copies["ml_state"].url]
    assert [c["url"] for c in mali["copies"]] == [copies["ml_pdf"].url, copies["ml_refworld"].url]
    assert mali["copies"][0]["page_start"] == copies["ml_pdf"].page_start
    # The publisher's own PDF before a mirror's HTML; between mirrors, the newest fetch.
    assert [c["url"] for c in hits[copies["la_pdf"].url]["copies"]] == [copies["la_refworld"].url]
    assert [c["url"] for c in hits[copies["th_pdf"].url]["copies"]] == [copies["th_ecoi"].url]
    assert {copies["note_a"].url, copies["note_b"].url} <= set(hits)
    assert hits[copies["note_a"].url]["report_key"] == f"doc:{copies['note_a'].id}"


def test_all_copies_shows_every_document(es, corpus, copies) -> None:
    result = run_search(es, corpus, per_page=50, all_copies=True)
    assert result["total"] == len(result["hits"]) == len(copies)
    assert all(hit["copies"] == [] for hit in result["hits"])
    assert result["facets"]["country"]["Mali"] == 3


def test_facets_count_reports_not_copies(es, corpus) -> None:
    result = run_search(es, corpus, per_page=50)
    assert result["facets"]["country"]["Mali"] == 1
    assert result["facets"]["country"]["Myanmar"] == 2        # 2019, and the mirror's "2020"
    # Mali's copies disagree, so the report is counted under both tiers, once each.
    assert result["facets"]["tier"]["Tier 2 Watch List"] == 2  # Laos, and Mali's refworld copy
    assert list(result["facets"]["country"])[:1] == ["Somalia"]  # most reports first (SO + 2 notes)
    filtered = run_search(es, corpus, filters=Filters(tier=["Tier 2 Watch List"]), per_page=50)
    assert filtered["total"] == 2
    # Under a filter the hit is the best copy *that matches*: Mali's refworld copy, its only one.
    assert {h["url"] for h in filtered["hits"]} >= {REFWORLD.format("5d3f")}


def test_cli_lists_copies_under_their_report(test_env, corpus, copies) -> None:
    run = cli(test_env, "search", "--country", "Mali")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("1 reports\n")
    assert f"  {copies['ml_state'].url}\n" in run.stdout
    assert f"  also at: {copies['ml_pdf'].url}\n  also at: {copies['ml_refworld'].url}\n" in run.stdout
    every = cli(test_env, "search", "--country", "Mali", "--all-copies", "--json")
    assert every.returncode == 0, every.stderr
    assert json.loads(every.stdout)["total"] == 3


def test_conflicts_list_tier_and_year_disagreements(test_env, corpus, copies) -> None:
    run = cli(test_env, "conflicts", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        {"report_key": "trafficking-in-persons-2019-MLI", "field": "tier", "values": {
            "Tier 2": [copies["ml_state"].url, copies["ml_pdf"].url],
            "Tier 2 Watch List": [copies["ml_refworld"].url]}},
        {"report_key": "trafficking-in-persons-2019-MMR", "field": "report_year", "values": {
            "2019": [copies["mm_pdf"].url], "2020": [copies["mm_ecoi"].url]}},
    ]
    text = cli(test_env, "conflicts")
    assert "trafficking-in-persons-2019-MLI  tier:\n  Tier 2: " in text.stdout
    assert text.stdout.endswith("2 reports whose copies disagree\n")


def test_a_body_over_the_highlight_limit_does_not_fail_the_search(es, corpus, copies, names) -> None:
    """index.highlight.max_analyzed_offset is 1,000,000 characters on this node; this body is longer."""
    limit = int(es.indices.get_settings(index=corpus, name="index.highlight.max_analyzed_offset",
                                        include_defaults=True).popitem()[1]["defaults"]["index"]["highlight"]
                ["max_analyzed_offset"])
    huge = _copy(copies["so_pdf"], "https://example.org/huge", "generic", "2024-01-01T00:00:00+00:00",
                 report_series=None, body="zebra " + "filler " * (limit // 7 + 10) + " quagga")
    assert len(huge.body) > limit
    bulk_write(es, [{"_op_type": "index", "_index": names.reports, "_id": huge.id, "_source": huge.to_source()}])
    es.indices.refresh(index=corpus)
    try:
        for all_copies in (False, True):
            found = run_search(es, corpus, "zebra", all_copies=all_copies)
            assert [h["url"] for h in found["hits"]] == ["https://example.org/huge"]
            assert found["hits"][0]["highlight"]["body"][0].startswith("<em>zebra</em>")
            # Past the limit the text is still found, just not highlighted.
            assert run_search(es, corpus, "quagga", all_copies=all_copies)["total"] == 1
    finally:
        es.delete(index=corpus, id=huge.id, refresh=True)


@pytest.mark.parametrize("all_copies", [False, True])
def test_pages_past_the_result_window_use_search_after(es, corpus, all_copies) -> None:
    """The index allows only 5 hits by from/size here; every page is still reachable, in order."""
    whole = [h["id"] for h in run_search(es, corpus, per_page=50, sort="date", all_copies=all_copies)["hits"]]
    index = next(iter(es.indices.get_alias(name=corpus)))
    es.indices.put_settings(index=index, settings={"index.max_result_window": 5})
    try:
        with pytest.raises(BadRequestError, match="Result window is too large"):
            es.search(index=corpus, from_=6, size=2)
        pages = []
        for page in range(1, 8):
            result = run_search(es, corpus, page=page, per_page=2, sort="date", all_copies=all_copies, window=5)
            assert result["total"] == len(whole)
            pages += [h["id"] for h in result["hits"]]
        assert pages == whole
    finally:
        es.indices.put_settings(index=index, settings={"index.max_result_window": None})
