"""Across editions: history, diff, tiers and export, on a real crawl of two editions.

Unit tests cover the pure parts (moves, section and paragraph matching, word diffs, the
matrix, terminal styles); one module-scoped crawl of the demo site's editions
(devtools/editions.py: Ghana and Peru, 2023 and 2024, plus a mirror copy of
Ghana 2024 that states another tier) by a real worker into real Elasticsearch backs the
end-to-end tests.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devtools import editions
from devtools.services import free_port
from tests.faults.helpers import await_condition
from tests.helpers import REPO, cli
from tests.site import LocalSite, html
from workers.cli.style import Style
from workers.documents import ReportDocument
from workers.editions.diff import diff_documents, diff_paragraphs, heading_key, match_sections, word_diff
from workers.editions.matrix import table, to_csv
from workers.editions.moves import tier_move

MIRROR = "/mirror/ghana-2024.html"
# Watches: Peru's reports to a local webhook (down when the crawl runs), Kenya's to the log.
WATCHES = Path(tempfile.mkdtemp(prefix="ri-watches-")) / "watches.yaml"
EXTRA_ENV = {"WATCHES_FILE": str(WATCHES), "WEBHOOK_BACKOFF_BASE": "0.5", "WEBHOOK_BACKOFF_MAX": "2",
             "WEBHOOK_TIMEOUT": "2", "HOOK_TOKEN": "t0ken", "ALERTS_SWEEP_INTERVAL": "1", "HOUSEKEEPING_INTERVAL": "0.5"}
# A page revised in place: the same URL, one paragraph reworded in its second version.
REVISED = "/revised/kenya-2024.html"
KENYA = [("KENYA: TIER 2", ["The Government of Kenya does not fully meet the minimum standards; therefore Kenya "
                            "remained on Tier 2."]),
         ("PROTECTION", ["The government identified 300 victims and referred them to care.",
                         "Shelters for adult victims remained underfunded."])]
KENYA_REVISED = [KENYA[0], ("PROTECTION", ["The government identified 340 victims and referred them to care.",
                                           KENYA[1][1][1]])]


# --- pure functions -------------------------------------------------------------------


@pytest.mark.parametrize(("before", "after", "move"), [
    (2.0, 2.5, "down"), (2.5, 2.0, "up"), (3.0, 3.0, "same"), (None, 2.0, "unknown"), (2.0, None, "unknown")])
def test_tier_move_compares_ranks_and_never_guesses(before, after, move) -> None:
    assert tier_move(before, after) == move


def test_the_first_edition_is_new() -> None:
    assert tier_move(None, 1.0, first=True) == "new"


def test_headings_match_whatever_their_case_punctuation_or_tier() -> None:
    assert heading_key("THAILAND: TIER 2") == heading_key("Thailand: Tier 2 Watch List") == "thailand"
    old = [("PRESCRIBED RECOMMENDATIONS", []), ("PROSECUTION", []), ("Gone section", [])]
    new = [("Prosecution.", []), ("Prescribed Recommendation", []), ("Brand new", [])]
    assert match_sections(old, new) == [(1, 0), (0, 1), (None, 2), (2, None)]


def test_paragraphs_added_removed_reworded_moved_and_unchanged() -> None:
    old = ["Alpha stays.", "Victims identified: 631 in 2018 by the police.", "Dropped paragraph here.",
           "Moved paragraph text."]
    new = ["Moved paragraph text.", "Alpha stays.", "Victims identified: 700 in 2019 by the police.",
           "An entirely new statement."]
    result = diff_paragraphs(old, new, "H")
    assert result.as_dict() == {
        "heading": "H", "added": ["An entirely new statement."], "removed": ["Dropped paragraph here."],
        "changed": [{"from": "Victims identified: 631 in 2018 by the police.",
                     "to": "Victims identified: 700 in 2019 by the police."}],
        "unchanged": 2}


def test_a_document_without_sections_is_compared_by_its_body() -> None:
    old = ReportDocument("a", title="T", body="One.\n\nTwo words here.")
    new = ReportDocument("b", title="T", body="One.\n\nTwo words here.\n\nThree.")
    [section] = diff_documents(old, new)
    assert (section.heading, section.added, section.unchanged) == ("T", ["Three."], 2)


def test_word_diff_keeps_spaces_and_marks_only_changed_words() -> None:
    runs = word_diff("identified 631 victims in 2018.", "identified 700 victims in 2019.")
    assert runs == [("equal", "identified "), ("delete", "631"), ("insert", "700"), ("equal", " victims in "),
                    ("delete", "2018"), ("insert", "2019"), ("equal", ".")]
    assert Style(tty=False).word_diff(runs) == "identified [-631-]{+700+} victims in [-2018-]{+2019+}."
    assert "\x1b[" in Style(tty=True).word_diff(runs)


def test_highlights_are_emphasis_on_a_terminal_and_plain_elsewhere() -> None:
    fragment = "forced <em>labor</em> in <em>fishing</em>"
    assert Style(tty=False).highlight(fragment) == "forced labor in fishing"
    assert Style(tty=True).highlight(fragment) == "forced \x1b[1mlabor\x1b[0m in \x1b[1mfishing\x1b[0m"


def test_tiers_table_and_csv_mark_moves_and_conflicts() -> None:
    rows = [{"country": "GH", "name": "Ghana", "series": "S", "year": 2023, "tier": "Tier 2", "move": "new",
             "conflict": False},
            {"country": "GH", "name": "Ghana", "series": "S", "year": 2024, "tier": "Tier 2 Watch List",
             "move": "down", "conflict": True},
            {"country": "PE", "name": "Peru", "series": "S", "year": 2024, "tier": "Tier 2", "move": "up",
             "conflict": False}]
    lines = table(rows).splitlines()
    assert lines[0].split() == ["country", "2023", "2024"]
    assert lines[1].split() == ["Ghana", "(GH)", "2", "2WL↓!"]
    assert lines[2].split() == ["Peru", "(PE)", "2↑"]
    assert list(csv.reader(to_csv(rows).splitlines())) == [
        ["country", "name", "series", "2023", "2024"], ["GH", "Ghana", "S", "2", "2WL↓!"], ["PE", "Peru", "S", "", "2↑"]]


# --- a crawl of two editions --------------------------------------------------------------


def _mirror_of_ghana_2024() -> bytes:
    """The 2024 Ghana chapter republished elsewhere with another tier: a second copy that disagrees."""
    return editions.page("Ghana", 2024).replace("GHANA: TIER 2 WATCH LIST", "GHANA: TIER 3")


class Receiver:
    """A webhook on a port of its own, started and stopped by the test; every POST it took."""

    def __init__(self) -> None:
        self.port, self.bodies, self.server = free_port(), [], None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        if self.server:
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append((dict(self.headers), json.loads(body)))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    WATCHES.write_text(f"""watches:
  - name: peru
    countries: [Peru]
    webhook: {receiver.url}
    secret_header: X-Hook-Token
    secret_env: HOOK_TOKEN
    allow_networks: [127.0.0.1/32]
  - name: kenya
    countries: [KE]
""")
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def edition_site():
    site = LocalSite()
    for path, body in editions.pages().items():
        site.routes[path] = html(body)
    site.routes[MIRROR] = html(_mirror_of_ghana_2024())
    site.revised = editions.page("Kenya", 2024, KENYA)
    site.routes[REVISED] = lambda _req: (200, {"Content-Type": "text/html; charset=utf-8"}, site.revised.encode())
    yield site
    site.close()


@pytest.fixture(scope="module")
def crawled(edition_site, receiver, worker, test_env, es, names):
    # The mirror first: between copies on hosts of no publisher, the newest fetch is the best copy.
    # Peru 2023 too, so that Peru 2024's alert has its edition to move against.
    first = [MIRROR, editions.path("Peru", 2023)]
    batches = [[edition_site.url(path) for path in first],
               [edition_site.url(path) for path in [*editions.pages(), REVISED] if path not in first]]
    for urls in batches:
        run = cli(test_env, "crawl", *urls, "--allow-network", "127.0.0.1/32", "--timeout", "90", timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
    es.indices.refresh(index=names.reports)
    assert es.count(index=names.reports)["count"] == 6
    return edition_site


def _json(test_env, *args):
    run = cli(test_env, *args)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def test_history_lists_editions_oldest_first_with_moves_copies_and_conflicts(test_env, crawled) -> None:
    series = "Trafficking in Persons Report"
    ghana = _json(test_env, "history", "Ghana", "--json")
    assert ghana == [
        {"year": 2023, "series": series, "tier": "Tier 2", "move": "new", "copies": 1, "conflict": False,
         "url": crawled.url("/editions/ghana-2023.html")},
        {"year": 2024, "series": series, "tier": "Tier 2 Watch List", "move": "down", "copies": 2,
         "conflict": True, "url": crawled.url("/editions/ghana-2024.html")},
    ]
    assert _json(test_env, "history", "GH", "--json") == ghana == _json(test_env, "history", "gha", "--json")
    peru = _json(test_env, "history", "PE", "--series", series, "--json")
    assert [(row["year"], row["tier"], row["move"]) for row in peru] == [
        (2023, "Tier 2 Watch List", "new"), (2024, "Tier 2", "up")]
    text = cli(test_env, "history", "Ghana")
    assert "2024  Trafficking in Persons Report  Tier 2 Watch List" in text.stdout
    assert "! copies disagree" in text.stdout and "\x1b[" not in text.stdout


def test_history_of_an_unknown_country_says_so(test_env, crawled) -> None:
    run = cli(test_env, "history", "Atlantis")
    assert run.returncode == 1
    assert "unknown country 'Atlantis'" in run.stderr


def test_diff_lists_exact_paragraphs_per_section(test_env, crawled) -> None:
    result = _json(test_env, "diff", "Ghana", "2023", "2024", "--json")
    assert result["country"] == "GH" and result["tier_move"] == "down"
    assert result["from"] == {"year": 2023, "tier": "Tier 2", "url": crawled.url("/editions/ghana-2023.html")}
    assert result["to"] == {"year": 2024, "tier": "Tier 2 Watch List",
                            "url": crawled.url("/editions/ghana-2024.html")}
    sections = {s["heading"]: s for s in result["sections"]}
    assert list(sections) == ["GHANA: TIER 2 WATCH LIST", "Prescribed Recommendations", "PROSECUTION",
                              "PROTECTION", "TRAFFICKING PROFILE"]
    assert [len(sections["GHANA: TIER 2 WATCH LIST"][k]) for k in ("added", "removed", "changed")] == [0, 0, 1]
    assert sections["Prescribed Recommendations"] == {
        "heading": "Prescribed Recommendations", "added": [], "removed": [], "changed": [], "unchanged": 1}
    assert sections["PROSECUTION"] == {
        "heading": "PROSECUTION", "added": ["Courts convicted no traffickers during the reporting period."],
        "removed": [], "unchanged": 1,
        "changed": [{"from": "The government initiated 41 investigations and prosecuted 23 defendants in 2022.",
                     "to": "The government initiated 29 investigations and prosecuted 11 defendants in 2023."}]}
    assert sections["PROTECTION"] == {
        "heading": "PROTECTION", "added": [], "changed": [], "unchanged": 1,
        "removed": ["The government operated two shelters for child victims of trafficking."]}
    text = cli(test_env, "diff", "Ghana", "2023", "2024").stdout
    assert "tier: Tier 2 -> Tier 2 Watch List (down)" in text
    assert "  ~ The government initiated [-41-]{+29+} investigations and prosecuted [-23-]{+11-}" not in text
    assert "  ~ The government initiated [-41-]{+29+} investigations and prosecuted [-23-]{+11+} defendants in " \
           "[-2022-]{+2023+}." in text


def test_diff_of_a_missing_edition_names_the_ones_there_are(test_env, crawled) -> None:
    run = cli(test_env, "diff", "Peru", "2019", "2024")
    assert run.returncode == 1
    assert "no 2019 edition (editions: 2023, 2024)" in run.stderr


def test_tiers_matrix_has_one_cell_per_report(test_env, crawled) -> None:
    cells = _json(test_env, "tiers", "--format", "json")
    assert [(c["country"], c["year"], c["tier"], c["move"], c["conflict"]) for c in cells] == [
        ("GH", 2023, "Tier 2", "new", False), ("GH", 2024, "Tier 2 Watch List", "down", True),
        ("KE", 2024, "Tier 2", "new", False), ("PE", 2023, "Tier 2 Watch List", "new", False),
        ("PE", 2024, "Tier 2", "up", False)]
    africa = _json(test_env, "tiers", "--format", "json", "--region", "Africa", "--from", "2024")
    assert [(c["country"], c["year"], c["move"]) for c in africa] == [("GH", 2024, "down"), ("KE", 2024, "new")]
    rows = list(csv.reader(cli(test_env, "tiers", "--format", "csv").stdout.splitlines()))
    assert rows[1:] == [["GH", "Ghana", "Trafficking in Persons Report", "2", "2WL↓!"],
                        ["KE", "Kenya", "Trafficking in Persons Report", "", "2"],
                        ["PE", "Peru", "Trafficking in Persons Report", "2WL", "2↑"]]


def test_search_shows_highlights_as_plain_text_when_not_on_a_terminal(test_env, crawled) -> None:
    run = cli(test_env, "search", "defendants")
    assert run.returncode == 0, run.stderr
    assert "prosecuted 23 defendants" in run.stdout
    assert "<em>" not in run.stdout and "\x1b[" not in run.stdout


# What the read-only commands must not load to answer at once (benchmarks/cli_startup.py): Celery
# and kombu, the Elasticsearch client package and its DSL, pydantic, the parsers.
SLOW_TO_LOAD = ("celery", "kombu", "elasticsearch", "elastic_transport", "pydantic", "bs4", "lxml", "trafilatura",
                "pypdfium2", "workers.app", "workers.parse.pages")
# Each as a user runs it, on the editions crawled: `search` by a country's name and `diff` of two editions.
READ_ONLY = {"search": ["search", "trafficking", "--country", "Ghana"], "history": ["history", "Ghana"],
             "diff": ["diff", "Ghana", "2023", "2024"], "tiers": ["tiers"], "status": ["status"]}
_LOADED = """
import atexit, sys
from workers.cli import main
atexit.register(lambda: print(sorted({m for m in sys.modules if m.split(".")[0] in SLOW or m in SLOW}), file=sys.stderr))
main(sys.argv[1:])
"""


def test_read_only_commands_answer_without_loading_celery_elasticsearch_pydantic_or_the_parsers(
        test_env, crawled) -> None:
    probe = f"SLOW = {SLOW_TO_LOAD!r}" + _LOADED
    runs = {command: subprocess.Popen([sys.executable, "-c", probe, *args], env={**os.environ, **test_env}, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for command, args in READ_ONLY.items()}  # side by side: a fresh interpreter each
    for command, run in runs.items():
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, (command, err)
        assert out.strip() and "error:" not in err, command  # it answered (status lists failures, dns_error...)
        assert err.strip().splitlines()[-1] == "[]", (command, err)


def test_a_watch_query_is_read_as_search_reads_it(es, names, crawled) -> None:
    from workers.watches.alerts import _query_matches
    from workers.watches.config import Watch

    every = [hit["_id"] for hit in es.search(index=names.reports, size=20, source=False)["hits"]["hits"]]
    ghana_2024 = {hit["_id"] for hit in es.search(index=names.reports, source=False, query={
        "term": {"report_key": "trafficking-in-persons-2024-GHA"}})["hits"]["hits"]}
    assert len(ghana_2024) == 2  # the State Department's page and the mirror
    assert _query_matches(es, names.reports, Watch(name="q", query='"convicted no traffickers"'), every) == ghana_2024
    # Not valid query syntax (an unclosed quote): its words, as `search` does.
    assert _query_matches(es, names.reports, Watch(name="q", query='"convicted no'), every) == ghana_2024


def test_export_writes_every_hit_past_the_result_window(test_env, crawled, es, names, tmp_path) -> None:
    # A result window of 2 hits: the export must page past it, as it would past 10,000.
    es.indices.put_settings(index=names.reports, settings={"index.max_result_window": 2})
    env = {**test_env, "SEARCH_MAX_WINDOW": "2"}
    out = tmp_path / "hits.csv"
    run = cli(env, "search", "--export", "csv", "--output", str(out))
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["title", "publisher", "series", "year", "country", "tier", "url", "page_link",
                             "fetched_at", "report_key"]
    assert sorted(row["report_key"] for row in rows) == [
        "trafficking-in-persons-2023-GHA", "trafficking-in-persons-2023-PER", "trafficking-in-persons-2024-GHA",
        "trafficking-in-persons-2024-KEN", "trafficking-in-persons-2024-PER"]
    ghana = next(row for row in rows if row["report_key"] == "trafficking-in-persons-2024-GHA")
    assert (ghana["title"], ghana["country"], ghana["tier"], ghana["year"]) == (
        "2024 Trafficking in Persons Report: Ghana", "Ghana", "Tier 2 Watch List", "2024")
    assert ghana["url"] == crawled.url("/editions/ghana-2024.html") and ghana["fetched_at"]
    assert "exported 5/5 reports" in run.stderr and run.stdout.startswith("wrote 5 reports to ")
    copies = tmp_path / "copies.jsonl"
    run = cli(env, "search", "Ghana", "--all-copies", "--export", "jsonl", "--output", str(copies))
    assert run.returncode == 0, run.stderr
    assert sorted(json.loads(line)["url"] for line in copies.read_text().splitlines()) == sorted(
        [crawled.url("/editions/ghana-2023.html"), crawled.url("/editions/ghana-2024.html"),
         crawled.url(MIRROR)])


def test_a_page_revised_in_place_keeps_its_previous_version_across_a_rebuild(test_env, crawled, es, names) -> None:
    url = crawled.url(REVISED)
    crawl = ("crawl", url, "--allow-network", "127.0.0.1/32", "--timeout", "60")
    assert "revisions" not in _json(test_env, "history", "Kenya", "--json")[0]
    crawled.revised = editions.page("Kenya", 2024, KENYA_REVISED)
    assert cli(test_env, *crawl).returncode == 0
    assert cli(test_env, *crawl).returncode == 0  # unchanged now: no second version
    [row] = _json(test_env, "history", "Kenya", "--json")
    assert len(row["revisions"]) == 1
    result = _json(test_env, "diff", url, "--json")
    assert result["tier_move"] == "same" and result["revisions"] == row["revisions"]
    assert [(s["heading"], s["changed"], s["unchanged"]) for s in result["sections"]] == [
        ("KENYA: TIER 2", [], 1),
        ("PROTECTION", [{"from": KENYA[1][1][0], "to": KENYA_REVISED[1][1][0]}], 1)]
    text = cli(test_env, "diff", url).stdout
    assert "  ~ The government identified [-300-]{+340+} victims and referred them to care." in text
    # A rebuild reads raw pages with pages_only: the page as it is now, never an earlier version,
    # which stays where it is ...
    from workers.raw_pages import pages_only
    from workers.urls import doc_id

    def stored(query: dict) -> list[str]:
        return sorted(hit["_id"] for hit in es.search(index=names.raw_pages, query=query, source=False)["hits"]["hits"])

    versions = sorted([doc_id(url), f"{doc_id(url)}@{row['revisions'][0]}"])
    assert stored({"term": {"url": url}}) == versions
    assert stored(pages_only({"term": {"url": url}})) == [doc_id(url)]
    # ... so after a real one (the module's worker runs its chunk), the page still has both
    # versions, and `diff URL` says what it said before it.
    rebuilt = cli(test_env, "reindex", "--chunks", "1", timeout=120)
    assert rebuilt.returncode == 0 and "documents live in" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    es.indices.refresh(index=names.raw_pages)
    assert stored({"term": {"url": url}}) == versions
    assert _json(test_env, "diff", url, "--json") == result


def test_versions_past_revisions_kept_are_deleted(es, names, test_env) -> None:
    from workers.index.revisions import revision_actions, revision_id
    from workers.records import RawPage

    key, index = "rev-probe", names.raw_pages
    stored = {"url": "http://127.0.0.1/x", "fetched_at": "2026-01-04T00:00:00+00:00", "content_sha256": "d",
              "body": "", "gone": False}
    es.index(index=index, id=key, document=stored)
    for day in (1, 2, 3):
        fetched = f"2026-01-0{day}T00:00:00+00:00"
        es.index(index=index, id=revision_id(key, fetched), document={**stored, "fetched_at": fetched,
                                                                       "revision_of": key})
    es.indices.refresh(index=index)
    new = RawPage("http://127.0.0.1/x", "http://127.0.0.1/x", 200, "text/html", None, None,
                  "2026-01-05T00:00:00+00:00", "e", 0, "")
    actions = [action for _key, action in revision_actions(es, index, {key: new}, kept=2)]
    assert actions[0]["_id"] == revision_id(key, stored["fetched_at"])
    assert actions[0]["_source"]["revision_of"] == key and "gone" not in actions[0]["_source"]
    # Kept: the version written now and the newest older one (day 3); days 2 and 1 go.
    assert [(a["_op_type"], a["_id"]) for a in actions[1:]] == [
        ("delete", revision_id(key, "2026-01-02T00:00:00+00:00")),
        ("delete", revision_id(key, "2026-01-01T00:00:00+00:00"))]
    unchanged = RawPage(**{**vars(new), "content_sha256": "d"})
    assert list(revision_actions(es, index, {key: unchanged}, kept=2)) == []


def _alerts(test_env, watch: str) -> list[dict]:
    return sorted((a for a in _json(test_env, "alerts", "--json") if a["watch"] == watch),
                  key=lambda a: a["report_key"])


def test_a_watch_alerts_once_per_new_report_and_delivers_after_the_receiver_comes_back(
        test_env, crawled, receiver) -> None:
    # The receiver was down all through the crawl: both alerts are pending, tried and failed.
    # Their checks run beside the crawl's indexing, and may end after it: awaited, not assumed.
    pending = await_condition(lambda: len(tried := [a for a in _alerts(test_env, "peru") if a["attempts"] >= 1]) == 2
                              and tried, 30, "both alerts tried")
    assert [(a["report_key"], a["event"], a["tier"], a["move"], a["status"]) for a in _alerts(test_env, "peru")] == [
        ("trafficking-in-persons-2023-PER", "new", "Tier 2 Watch List", "new", "pending"),
        ("trafficking-in-persons-2024-PER", "new", "Tier 2", "up", "pending")]
    assert "ConnectionError" in pending[0]["last_error"]
    await_condition(lambda: [(a["report_key"], a["status"]) for a in _alerts(test_env, "kenya")] == [
        ("trafficking-in-persons-2024-KEN", "sent")], 30, "Kenya's alert sent to the log")
    receiver.start()
    await_condition(lambda: len(receiver.bodies) >= 2 and all(a["status"] == "sent" for a in _alerts(test_env, "peru")),
                    30, "both alerts delivered")
    by_key = {body["report_key"]: (headers, body) for headers, body in receiver.bodies}
    assert len(receiver.bodies) == len(by_key) == 2
    headers, body = by_key["trafficking-in-persons-2024-PER"]
    assert headers["X-Hook-Token"] == "t0ken"
    assert {k: body[k] for k in ("watch", "event", "tier", "move", "title", "country", "year", "url")} == {
        "watch": "peru", "event": "new", "tier": "Tier 2", "move": "up", "title": "2024 Trafficking in Persons Report: Peru",
        "country": "Peru", "year": 2024, "url": crawled.url(editions.path("Peru", 2024))}
    # A recrawl that finds the pages unchanged alerts no one.
    run = cli(test_env, "crawl", *(crawled.url(editions.path("Peru", y)) for y in (2023, 2024)),
              "--allow-network", "127.0.0.1/32", "--timeout", "60")
    assert run.returncode == 0, run.stderr
    assert len(_alerts(test_env, "peru")) == 2 and len(receiver.bodies) == 2


def test_an_alert_whose_delivery_was_lost_is_delivered_by_housekeeping(crawled, receiver, es, settings) -> None:
    from workers.watches.alerts import Alert, ensure_alerts_index, now_iso

    # As a worker that died between raising an alert and sending its delivery leaves it: pending,
    # due, and no task on its way. The module's worker sweeps every ALERTS_SWEEP_INTERVAL (1 s).
    receiver.start()
    lost = Alert("peru", "trafficking-in-persons-2099-PER", "new", "Tier 1", "up", receiver.url, {"title": "lost"},
                 due_at=now_iso(-1))
    index = ensure_alerts_index(es, settings.index_prefix)
    es.index(index=index, id=lost.id, document=lost.to_source(), refresh=True)

    def delivered() -> list | None:
        return [body for _headers, body in receiver.bodies if body["report_key"] == lost.report_key] or None

    assert await_condition(delivered, 30, "the lost alert delivered")[0]["title"] == "lost"
    sent = await_condition(lambda: (a := es.get(index=index, id=lost.id)["_source"])["status"] == "sent" and a,
                           10, "the lost alert recorded as sent")
    assert sent["attempts"] == 1 and sent["due_at"] is None and len(delivered()) == 1


def test_an_alerts_index_made_before_due_times_takes_them(es) -> None:
    from workers.watches.alerts import MAPPING, Alert, alerts_index, ensure_alerts_index, now_iso

    prefix = "old-alerts-"
    before = {**MAPPING, "properties": {k: v for k, v in MAPPING["properties"].items() if k != "due_at"}}
    es.indices.create(index=alerts_index(prefix), mappings=before)
    try:
        index = ensure_alerts_index(es, prefix)
        alert = Alert("w", "k", "new", None, "new", "log", {}, due_at=now_iso())
        es.index(index=index, id=alert.id, document=alert.to_source())  # strict: refused without the field
    finally:
        es.indices.delete(index=alerts_index(prefix))


def test_the_demo_site_serves_the_editions_in_its_sitemap() -> None:
    import urllib.request

    from devtools.demo import serve_demo_site

    server = serve_demo_site(port=0)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        sitemap = urllib.request.urlopen(f"{base}/sitemap.xml", timeout=5).read().decode()
        assert all(f"<loc>{base}{path}</loc>" in sitemap for path in editions.pages())
        with urllib.request.urlopen(f"{base}/editions/peru-2024.html", timeout=5) as response:
            assert response.read() == editions.pages()["/editions/peru-2024.html"]
    finally:
        server.shutdown()
        server.server_close()
