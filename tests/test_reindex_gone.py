"""Gone pages through every rebuild mode (issue 9, defect 2): real Redis, Elasticsearch, worker and local site.

A page that answers 404/410 on recheck is deleted from the index, or flagged
`gone` when its source says so. The raw page stays (the page may come back), so
the gone state must live with it, or a rebuild from raw pages brings the report
back. Deletes go through the real fetch path (the site answers 404 and the page
is crawled again); flags are written by the index task's own code, because ad-hoc
crawls always delete.
"""

from __future__ import annotations

from tests.helpers import cli
from tests.reindexing import ReportSite, crawl, crawled, documents, live, site  # noqa: F401
from tests.helpers import write_staged
from workers.parse import PARSER_VERSION
from workers.records import GoneEntry
from workers.urls import doc_id

PAGES = 14
CHUNKS = 4


def raw_page(es, names, site: ReportSite, i: int) -> dict:
    return es.get(index=names.raw_pages, id=doc_id(site.page_url(i)))["_source"]


def document_id(es, names, site: ReportSite, i: int) -> str:
    return doc_id(raw_page(es, names, site, i)["canonical_url"])


def go(es, names, settings, redis_client, site: ReportSite, i: int, on_gone: str) -> int:
    """Page i went, as the index task writes it; returns how many entries were written (not failed)."""
    url = site.page_url(i)
    entry = GoneEntry(url, None, None, [document_id(es, names, site, i)], on_gone)
    return write_staged(es, settings, redis_client, [entry])


def index_errors(es, names, site: ReportSite, pages: list[int]) -> list[str]:
    es.indices.refresh(index=names.failures)
    found = es.mget(index=names.failures, ids=[doc_id(site.page_url(i)) for i in pages])["docs"]
    return [d["_source"]["url"] for d in found if d.get("found")]


def test_reparse_does_not_resurrect_deleted_reports(crawled, site, es, names, settings, redis_client,
                                                             test_env):
    deleted, flagged = 0, 1
    deleted_id, flagged_id = document_id(es, names, site, deleted), document_id(es, names, site, flagged)
    site.take_down(deleted)
    assert "1 gone" in crawl(test_env, site.page_url(deleted)).stdout
    assert go(es, names, settings, redis_client, site, flagged, "flag") == 1

    # The gone state is kept with the raw page, which stays for the day the page comes back.
    es.indices.refresh(index=names.raw_pages)
    assert {k: raw_page(es, names, site, deleted).get(k) for k in ("gone", "on_gone")} == \
        {"gone": True, "on_gone": "delete"}
    assert {k: raw_page(es, names, site, flagged).get(k) for k in ("gone", "on_gone")} == \
        {"gone": True, "on_gone": "flag"}

    for mode in ("--reparse", "--copy"):
        old = live(es, names)
        result = cli(test_env, "reindex", mode, "--chunks", str(CHUNKS))
        assert result.returncode == 0, result.stderr
        assert live(es, names) != old
        docs = {d["id"]: d for d in documents(es, names)}
        assert deleted_id not in docs, f"{mode} brought a deleted report back"
        assert docs[flagged_id].get("gone") is True, f"{mode} lost the gone flag"
        assert len(docs) == PAGES - 1
        assert {d["parser_version"] for d in docs.values()} == {PARSER_VERSION}
    assert index_errors(es, names, site, [deleted, flagged]) == []


def test_a_page_gone_during_a_rebuild_stays_gone_in_the_new_index(crawled, site, es, names, settings, redis_client,
                                                        monkeypatch):
    """Deletes and flags before the chunks copy, after they copied, and between verification and swap."""
    from workers.rebuild import steps
    from workers.rebuild.coordinator import rebuild
    from workers.rebuild.tasks import reindex_chunk

    moments = {"before copy": (2, 3), "after copy": (4, 5), "before swap": (6, 7)}
    ids = {i: document_id(es, names, site, i) for pair in moments.values() for i in pair}
    written: dict[str, list[int]] = {}

    def gone_now(moment: str) -> None:
        deleted, flagged = moments[moment]
        written[moment] = [go(es, names, settings, redis_client, site, deleted, "delete"),
                           go(es, names, settings, redis_client, site, flagged, "flag")]

    def submit(run_id: str, chunk: int) -> None:
        if chunk == 0:  # the target exists and dual writes are on, but no chunk has copied anything
            gone_now("before copy")
        reindex_chunk.apply_async((run_id, chunk))

    restore_settings, swap = steps.restore_settings, steps.swap_alias

    def after_copy(*args, **kwargs):
        gone_now("after copy")  # every chunk has copied; nothing verified yet
        return restore_settings(*args, **kwargs)

    def before_swap(*args, **kwargs):
        gone_now("before swap")  # verified; the alias still points at the old index
        return swap(*args, **kwargs)

    monkeypatch.setattr(steps, "restore_settings", after_copy)
    monkeypatch.setattr(steps, "swap_alias", before_swap)
    old = live(es, names)
    summary = rebuild(es, redis_client, settings, chunks=CHUNKS, submit=submit)

    assert summary.live == live(es, names) != old
    assert written == {moment: [1, 1] for moment in moments}, "a gone entry became an index error"
    docs = {d["id"]: d for d in documents(es, names)}
    for moment, (deleted, flagged) in moments.items():
        assert ids[deleted] not in docs, f"deleted {moment}, back in the new index"
        assert docs[ids[flagged]].get("gone") is True, f"flagged {moment}, not flagged in the new index"
    assert index_errors(es, names, site, [i for pair in moments.values() for i in pair]) == []


def test_page_that_comes_back_loses_its_gone_state(crawled, site, es, names, test_env):
    back = 8
    site.take_down(back)
    assert "1 gone" in crawl(test_env, site.page_url(back)).stdout
    es.indices.refresh(index=names.raw_pages)
    assert raw_page(es, names, site, back).get("gone") is True

    site.bring_back(back)
    assert "1 indexed" in crawl(test_env, site.page_url(back)).stdout
    raw = raw_page(es, names, site, back)
    assert "gone" not in raw and "on_gone" not in raw  # rewritten whole

    result = cli(test_env, "reindex", "--chunks", str(CHUNKS))
    assert result.returncode == 0, result.stderr
    docs = {d["id"]: d for d in documents(es, names)}
    assert "gone" not in docs[document_id(es, names, site, back)]


def test_an_existing_raw_pages_index_gains_the_gone_fields(es, settings):
    """A strict raw-pages index made from the v1 template would refuse the mark; ensure_indices adds the fields."""
    from workers.index.indices import IndexNames, ensure_indices, load_template

    names = IndexNames(f"{settings.index_prefix}upgrade-")
    mappings = load_template(settings.schemas_dir, "raw-pages")["template"]["mappings"]
    v1 = {k: v for k, v in mappings["properties"].items() if k not in ("gone", "on_gone", "gone_document_id")}
    es.indices.create(index=f"{names.raw_pages}-v1-initial", aliases={names.raw_pages: {"is_write_index": True}},
                      mappings={"dynamic": "strict", "_meta": {"schema_version": 1}, "properties": v1})
    try:
        live = ensure_indices(es, names, settings.schemas_dir)
        assert live["raw-pages"] == f"{names.raw_pages}-v1-initial"
        es.index(index=names.raw_pages, id="page", document={"url": "https://example.org/a", "body": "",
                                                             "gone": True, "on_gone": "flag",
                                                             "gone_document_id": "x"})
    finally:
        es.indices.delete(index=f"{names.prefix}*", expand_wildcards="all")
        es.indices.delete_index_template(name=f"{names.prefix}report-ingest-*")
