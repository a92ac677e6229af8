"""Faceted search against real Elasticsearch, over the 32 golden fixture pages.

The fixture pages are parsed and indexed once per module. Expected hits and
facet counts are computed here from the reviewed `*.expected.json` files with
a small independent model of the filters (not with the search code), and a
few counts are hard-coded after reading the fixtures by hand.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import cli
from workers.index.bulk import bulk_write
from workers.index.indices import ensure_indices
from workers.documents import tier_rank
from workers.parse import parse_page
from workers.search.faceted import Filters, run_search

PAGES = Path(__file__).parent / "fixtures" / "pages"
MANIFEST = json.loads((PAGES / "manifest.json").read_text())
EXPECTED = [json.loads((PAGES / e["file"].replace(".html", ".expected.json")).read_text()) for e in MANIFEST]
BY_ID = {doc["id"]: doc for doc in EXPECTED}
BY_ID_FILE = {e["file"].removesuffix(".html"): doc["id"] for e, doc in zip(MANIFEST, EXPECTED, strict=True)}
FETCHED_AT = "2024-05-01T12:00:00+00:00"
ALL = len(EXPECTED)


@pytest.fixture(scope="module")
def corpus(es, names, settings):
    ensure_indices(es, names, settings.schemas_dir)
    actions = []
    for entry in MANIFEST:
        doc = parse_page((PAGES / entry["file"]).read_bytes(), entry["url"], entry["content_type"]).indexable(
            FETCHED_AT).to_source()
        actions.append({"_op_type": "index", "_index": names.reports, "_id": doc["id"], "_source": doc})
    result = bulk_write(es, actions)
    es.indices.refresh(index=names.reports)
    assert result.succeeded == ALL
    assert es.count(index=names.reports)["count"] == ALL
    return names.reports


def search(es, index, query: str = "", **kwargs) -> dict:
    filters = Filters(**kwargs.pop("filters", {}))
    return run_search(es, index, query, filters, **{"per_page": 100, **kwargs})


def ids(result: dict) -> set[str]:
    return {hit["id"] for hit in result["hits"]}


# --- an independent model of the corpus ----------------------------------------------

FACET_VALUES: dict[str, Callable[[dict], list]] = {
    "tier": lambda d: [d["tier"]],
    "country": lambda d: [d["country"]["name"]] if d["country"] else [],
    "country_code": lambda d: [d["country"]["iso2"]] if d["country"] else [],
    "region": lambda d: [d["country"]["region"]] if d["country"] else [],
    "year": lambda d: [d["report_year"]],
    "publisher": lambda d: [d["publisher"]],
    "role": lambda d: d["trafficking_roles"],
    "exploitation": lambda d: d["exploitation_types"],
    "victims": lambda d: d["victim_groups"],
}


# Former names the tests use, as the TIP reports wrote them.
OLD_NAMES = {"burma": "mm", "swaziland": "sz"}


def _country_matches(doc: dict, wanted: list[str]) -> bool:
    country = doc["country"] or {}
    keys = {str(country.get("iso2", "")).lower(), str(country.get("name", "")).lower()}
    return any(OLD_NAMES.get(w.lower(), w.lower()) in keys for w in wanted)


def _year_matches(doc: dict, f: dict) -> bool:
    year = doc["report_year"]
    if f.get("year") and year not in f["year"]:
        return False
    if f.get("year_from") is not None and (year is None or year < f["year_from"]):
        return False
    return not (f.get("year_to") is not None and (year is None or year > f["year_to"]))


# One predicate per facet dimension; a dimension's own predicate never narrows its own counts.
DIMENSIONS: dict[str, tuple[tuple[str, ...], Callable[[dict, dict], bool]]] = {
    "tier": (("tier",), lambda d, f: not f.get("tier") or d["tier"] in f["tier"]),
    "country": (("country", "country_code"),
                lambda d, f: not f.get("country") or _country_matches(d, f["country"])),
    "year": (("year",), _year_matches),
    "publisher": (("publisher",), lambda d, f: not f.get("publisher") or d["publisher"] in f["publisher"]),
    "role": (("role",), lambda d, f: not f.get("role") or bool(set(d["trafficking_roles"]) & set(f["role"]))),
    "exploitation": (("exploitation",),
                     lambda d, f: not f.get("exploitation")
                     or bool(set(d["exploitation_types"]) & set(f["exploitation"]))),
}


def model(filters: dict | None = None, text: Callable[[dict], bool] = lambda d: True) -> dict:
    """Expected total, ids and facet counts for `filters` (Filters fields) and a text predicate."""
    filters = filters or {}
    docs = [d for d in EXPECTED if text(d)]

    def passes(doc: dict, skip: str | None = None) -> bool:
        return all(pred(doc, filters) for name, (_, pred) in DIMENSIONS.items() if name != skip)

    hits = {d["id"] for d in docs if passes(d)}
    facets = {}
    for facet, values in FACET_VALUES.items():
        dimension = next((n for n, (members, _) in DIMENSIONS.items() if facet in members), None)
        counts = Counter(str(v) for d in docs if passes(d, skip=dimension) for v in set(values(d)) if v is not None)
        facets[facet] = dict(counts)
    return {"total": len(hits), "ids": hits, "facets": facets}


def assert_matches_model(result: dict, expected: dict) -> None:
    assert result["total"] == expected["total"]
    assert ids(result) == expected["ids"]
    assert result["facets"] == expected["facets"]


# Text as the standard analyzer sees it: words split at anything but letters/digits, apostrophes
# inside a word kept ("Burma's" is one token), case ignored.
def _texts(doc: dict) -> list[str]:
    texts = [doc["title"], doc["summary"], doc["body"], *(s["text"] for s in doc["sections"])]
    return [t for t in texts if t]


def _pattern(words: list[str]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'’])" + r"\W+".join(map(re.escape, words)) + r"(?![\w]|['’]\w)", re.I)


def has(*words: str) -> Callable[[dict], bool]:
    patterns = [_pattern([w]) for w in words]
    return lambda d: all(any(p.search(t) for t in _texts(d)) for p in patterns)


def phrase(text: str) -> Callable[[dict], bool]:
    pattern = _pattern(text.split())
    return lambda d: any(pattern.search(t) for t in _texts(d))


# --- filters -----------------------------------------------------------------------


def test_empty_query_matches_everything_with_full_facets(es, corpus) -> None:
    result = search(es, corpus)
    assert_matches_model(result, model())
    # Read off the fixtures by hand.
    assert result["total"] == 32
    assert result["facets"]["tier"] == {
        "Tier 2": 10, "Tier 2 Watch List": 8, "Tier 3": 5, "Special Case": 2, "Tier 1": 1,
    }
    assert result["facets"]["country"]["Myanmar"] == 2
    assert result["facets"]["country_code"]["KP"] == 2
    assert result["facets"]["year"]["2018"] == 3
    assert result["facets"]["role"] == {"source": 19, "destination": 18, "transit": 15}
    assert list(result["facets"]["year"])[:3] == ["2023", "2022", "2021"]  # newest year first


@pytest.mark.parametrize("filters", [
    {"tier": ["Tier 3"]},
    {"tier": ["Tier 2", "Tier 1"]},
    {"country": ["MM"]},
    {"country": ["kp", "Laos"]},
    {"country": ["Myanmar"]},
    {"country": ["thailand"]},
    {"year": [2018]},
    {"year": [2009, 2019]},
    {"year_from": 2018},
    {"year_to": 2005},
    {"year_from": 2010, "year_to": 2014},
    {"publisher": ["Human Rights Watch"]},
    {"publisher": ["United States Department of State", "U.S. Department of State"]},
    {"role": ["destination"]},
    {"exploitation": ["child_soldiers"]},
    {"exploitation": ["debt_bondage", "forced_marriage"]},
    {"tier": ["Tier 2 Watch List"], "year_from": 2018},
    {"tier": ["Tier 3"], "country": ["KP"]},
    {"role": ["destination"], "exploitation": ["child_soldiers"]},
    {"country": ["MM", "Thailand"], "year_from": 2015, "tier": ["Tier 2", "Tier 3"]},
    {"publisher": ["United States Department of State"], "role": ["transit"], "exploitation": ["forced_begging"],
     "year_from": 2008, "year_to": 2016},
], ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_filters_alone_and_combined(es, corpus, filters) -> None:
    expected = model(filters)
    assert expected["total"] > 0, "a filter that matches nothing proves little"
    assert_matches_model(search(es, corpus, filters=filters), expected)


def test_filter_spot_checks_read_from_the_fixtures(es, corpus) -> None:
    assert ids(search(es, corpus, filters={"tier": ["Tier 3"]})) == {
        BY_ID_FILE["refworld_legacy_burma_2009"], BY_ID_FILE["refworld_legacy_north_korea_2006"],
        BY_ID_FILE["refworld_legacy_drc_2010"], BY_ID_FILE["statedept_burma_2020"],
        BY_ID_FILE["statedept_north_korea_2021"],
    }
    assert ids(search(es, corpus, filters={"year_from": 2018, "year_to": 2019})) == {
        BY_ID_FILE[f] for f in ("refworld_current_laos_2018", "statedept_qatar_2018",
                                "generic_embassy_vietnam_2018", "refworld_current_gambia_2019",
                                "statedept_thailand_2019", "generic_hrw_nepal_2019")
    }
    assert ids(search(es, corpus, filters={"role": ["destination"], "exploitation": ["child_soldiers"]})) == {
        BY_ID_FILE["refworld_legacy_drc_2010"], BY_ID_FILE["refworld_legacy_somalia_2012"],
    }
    watch = search(es, corpus, filters={"tier": ["Tier 2 Watch List"], "year_from": 2018})
    assert {h["country"]["name"] for h in watch["hits"]} == {"Laos", "Gambia", "Vietnam"}


def test_country_by_code_name_or_alias_in_any_case(es, corpus) -> None:
    burma = {BY_ID_FILE["refworld_legacy_burma_2009"], BY_ID_FILE["statedept_burma_2020"]}
    for spelling in ("MM", "mm", "Myanmar", "myanmar", "Burma", "burma"):
        assert ids(search(es, corpus, filters={"country": [spelling]})) == burma, spelling
    # Former names reach the current one: Swaziland is stored as Eswatini.
    assert {h["country"]["name"] for h in search(es, corpus, filters={"country": ["Swaziland"]})["hits"]} == {"Eswatini"}
    assert search(es, corpus, filters={"country": ["Atlantis"]})["total"] == 0


def test_codes_and_names_together_select_either(es, corpus) -> None:
    """`--country MM --country Thailand` is Burma or Thailand, not an empty intersection."""
    result = search(es, corpus, filters={"country": ["MM", "Thailand"]})
    assert {h["country"]["iso2"] for h in result["hits"]} == {"MM", "TH"}
    assert result["total"] == 4
    assert_matches_model(result, model({"country": ["MM", "Thailand"]}))


def test_facet_counts_ignore_their_own_filter_but_follow_the_others(es, corpus) -> None:
    """post_filter semantics: choosing Tier 3 narrows the hits and every other facet,
    but the tier facet still counts every tier, so the user can switch or add one."""
    everything = search(es, corpus)
    tier3 = search(es, corpus, filters={"tier": ["Tier 3"]})
    assert tier3["total"] == 5
    assert tier3["facets"]["tier"] == everything["facets"]["tier"]
    assert tier3["facets"]["country"] == {
        "Myanmar": 2, "North Korea": 2, "Democratic Republic of the Congo": 1,
    }
    # The country filter (by code or name) leaves both country facets whole.
    burma = search(es, corpus, filters={"country": ["Burma"]})
    assert burma["facets"]["country"] == everything["facets"]["country"]
    assert burma["facets"]["country_code"] == everything["facets"]["country_code"]
    assert burma["facets"]["tier"] == {"Tier 3": 2}


def test_year_range_is_the_year_facets_own_filter(es, corpus) -> None:
    """--from/--to behave exactly like listing the years: hits narrowed, year counts whole."""
    span = search(es, corpus, filters={"year_from": 2018, "year_to": 2019})
    listed = search(es, corpus, filters={"year": [2018, 2019]})
    assert span == listed
    assert span["facets"]["year"] == search(es, corpus)["facets"]["year"]
    # Undated reports are outside every range.
    assert all(h["report_year"] is not None for h in search(es, corpus, filters={"year_to": 3000})["hits"])


# --- query syntax ------------------------------------------------------------------


@pytest.mark.parametrize(("query", "predicate"), [
    ("begging", has("begging")),
    ("forced begging", has("forced", "begging")),
    ('"forced begging"', phrase("forced begging")),
    ('"child soldiers"', phrase("child soldiers")),
    ("Qatar OR Curaçao", lambda d: has("Qatar")(d) or has("Curaçao")(d)),
    ('"forced begging" AND NOT Thailand', lambda d: phrase("forced begging")(d) and not has("Thailand")(d)),
    ("debt AND bondage NOT brick", lambda d: has("debt", "bondage")(d) and not has("brick")(d)),
    ('tier:"Tier 3"', lambda d: d["tier"] == "Tier 3"),
    ("country.iso2:MM", lambda d: (d["country"] or {}).get("iso2") == "MM"),
    ('(Burma OR Thailand) AND tier:"Tier 2"',
     lambda d: (has("Burma")(d) or has("Thailand")(d)) and d["tier"] == "Tier 2"),
    ("report_year:[2010 TO 2014] AND forced", lambda d: 2010 <= (d["report_year"] or 0) <= 2014 and has("forced")(d)),
])
def test_query_syntax(es, corpus, query, predicate) -> None:
    expected = model(text=predicate)
    assert 0 < expected["total"] < ALL, "the query should separate the corpus"
    assert_matches_model(search(es, corpus, query), expected)


def test_phrase_is_stricter_than_its_words(es, corpus) -> None:
    words = ids(search(es, corpus, "forced marriage"))
    quoted = ids(search(es, corpus, '"forced marriage"'))
    assert quoted < words  # a strict subset: some reports have both words apart
    assert quoted == model(text=phrase("forced marriage"))["ids"]


def test_query_and_filters_combine(es, corpus) -> None:
    filters = {"tier": ["Tier 2", "Tier 2 Watch List"], "year_from": 2010}
    assert_matches_model(search(es, corpus, '"forced begging"', filters=filters),
                         model(filters, text=phrase("forced begging")))


def test_unclosed_quote_searches_the_words_instead_of_failing(es, corpus) -> None:
    result = search(es, corpus, '"forced begging')
    assert ids(result) == model(text=has("forced", "begging"))["ids"]


# --- sorting, highlights, paging ----------------------------------------------------


def test_relevance_sort_puts_the_best_match_first(es, corpus) -> None:
    result = search(es, corpus, "Qatar OR Thailand")
    scores = [h["score"] for h in result["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) > 1
    # Reports *about* Qatar or Thailand (name in the title) outrank passing mentions.
    top = {h["id"] for h in result["hits"][:3]}
    assert top == {BY_ID_FILE["statedept_qatar_2018"], BY_ID_FILE["statedept_thailand_2019"],
                   BY_ID_FILE["refworld_legacy_thailand_2008_cp1252"]}


def test_date_sort_is_newest_publication_first_and_undated_last(es, corpus) -> None:
    result = search(es, corpus, sort="date")
    dates = [h["publication_date"] for h in result["hits"]]
    dated = sorted((d["publication_date"] for d in EXPECTED if d["publication_date"]), reverse=True)
    assert dates == dated + [None] * (ALL - len(dated))
    assert result["hits"][0]["id"] == BY_ID_FILE["statedept_curacao_2023"]
    oldest = search(es, corpus, sort="oldest")
    assert [h["publication_date"] for h in oldest["hits"]] == sorted(dated) + [None] * (ALL - len(dated))
    # A text query sorted by date still matches by text, and keeps its scores.
    begging = search(es, corpus, "begging", sort="date")
    assert ids(begging) == model(text=has("begging"))["ids"]
    assert [h["publication_date"] for h in begging["hits"]] == sorted(
        (h["publication_date"] for h in begging["hits"]), reverse=True)
    assert all(h["score"] for h in begging["hits"])


def test_tier_sort_puts_the_worst_tier_first(es, corpus) -> None:
    ranks = [h["tier_rank"] for h in search(es, corpus, sort="tier")["hits"]]
    assert ranks[:5] == [3.0] * 5
    assert ranks == sorted((r for r in ranks if r is not None), reverse=True) + [None] * ranks.count(None)


_EM = re.compile(r"<em>(.*?)</em>")


def test_highlights_mark_the_matched_words(es, corpus) -> None:
    result = search(es, corpus, "begging")
    assert result["hits"]
    for hit in result["hits"]:
        doc = BY_ID[hit["id"]]
        assert hit["highlight"], hit["title"]
        for field, fragments in hit["highlight"].items():
            assert field in {"title", "summary", "body", "sections.text"}
            for fragment in fragments:
                assert {m.lower() for m in _EM.findall(fragment)} == {"begging"}
                plain = fragment.replace("<em>", "").replace("</em>", "")
                source = [s["text"] for s in doc["sections"]] if field == "sections.text" else [doc[field]]
                assert any(plain in text for text in source)


def test_phrase_highlight_marks_the_phrase(es, corpus) -> None:
    result = search(es, corpus, '"forced begging"')
    for hit in result["hits"]:
        marked = {m.lower() for frags in hit["highlight"].values() for f in frags for m in _EM.findall(f)}
        # ES 9's unified highlighter marks the whole phrase; never "forced" on its own.
        assert marked == {"forced begging"}, hit["title"]


def test_no_highlight_without_text(es, corpus) -> None:
    assert all(h["highlight"] == {} for h in search(es, corpus, filters={"tier": ["Tier 3"]})["hits"])


@pytest.mark.parametrize(("query", "sort"), [("", "relevance"), ("", "date"), ("forced", "relevance"),
                                              ("", "tier")])
def test_paging_walks_every_hit_once(es, corpus, query, sort) -> None:
    whole = search(es, corpus, query, sort=sort)
    pages = []
    for page in range(1, 8):
        result = run_search(es, corpus, query, Filters(), page=page, per_page=5, sort=sort)
        assert result["total"] == whole["total"]
        assert result["facets"] == whole["facets"]
        assert len(result["hits"]) == max(0, min(5, whole["total"] - (page - 1) * 5))
        pages += [h["id"] for h in result["hits"]]
    assert pages == [h["id"] for h in whole["hits"]]


def test_bad_paging_is_refused(es, corpus) -> None:
    with pytest.raises(ValueError):
        run_search(es, corpus, "", page=0)
    with pytest.raises(ValueError):
        run_search(es, corpus, "", per_page=0)


# --- the CLI's --json contract --------------------------------------------------------


def test_cli_json_contract(test_env, corpus) -> None:
    run = cli(test_env, "search", "forced begging", "--country", "Burma", "--country", "UA",
              "--from", "2010", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert set(result) == {"total", "hits", "facets"}
    filters = {"country": ["Burma", "UA"], "year_from": 2010}
    expected = model(filters, text=has("forced", "begging"))
    assert_matches_model(result, expected)
    assert result["total"] == 2  # Burma 2020 and Ukraine 2014; Burma 2009 does not mention begging
    assert set(result["facets"]) == {"tier", "country", "country_code", "region", "year", "publisher",
                                     "role", "exploitation", "victims"}
    assert result["facets"]["tier"] == {"Tier 3": 1, "Tier 2 Watch List": 1}
    for hit in result["hits"]:
        source = BY_ID[hit["id"]]
        assert {k: hit[k] for k in source} == source
        assert hit["tier_rank"] == tier_rank(source["tier"])
        assert hit["fetched_at"] == FETCHED_AT
        assert set(hit) == set(source) | {"tier_rank", "fetched_at", "report_key", "score", "highlight", "copies"}
        assert hit["copies"] == []  # every fixture page is a different report
        assert isinstance(hit["score"], float) and hit["score"] > 0
        assert "<em>begging</em>" in json.dumps(hit["highlight"])


def test_cli_text_output(test_env, corpus) -> None:
    run = cli(test_env, "search", "--tier", "Tier 1")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("1 reports\n")
    assert "2017 Trafficking in Persons Report: Taiwan  [Tier 1]" in run.stdout
    assert "\ntier: Tier 2 (10), Tier 2 Watch List (8), Tier 3 (5), Special Case (2), Tier 1 (1)" in run.stdout

