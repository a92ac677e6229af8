"""The body of a generic page: the generic rules' blocks and trafilatura's main text, by vote."""

from __future__ import annotations

from workers.parse import parse_page
from workers.parse.article import vote
from workers.parse.content import Block

ARTICLE = [
    "The government convicted more traffickers this year than in any year before, the report said.",
    "Labour inspectors visited fishing boats in every port and found forced labour on eleven of them.",
    "Survivors were referred to shelters run by civil society, which received new public funding.",
]


def blocks(*texts: str, heading: bool = False) -> list[Block]:
    return [Block(t, heading=heading) for t in texts]


def test_same_article_keeps_the_rules_blocks_and_headings_less_what_trafilatura_left_out() -> None:
    ours = [Block("Findings", heading=True), *blocks(*ARTICLE, "Photo: a shelter in the capital city, courtesy of the ministry")]
    assert vote(ours, ARTICLE) == [Block("Findings", heading=True), *blocks(*ARTICLE)]


def test_a_list_introduced_by_a_colon_stays_although_trafilatura_dropped_it() -> None:
    ours = blocks(ARTICLE[0], "Among the changes that matter most:", "Malaysia (Tier 3)", "Cambodia (Tier 2)", ARTICLE[1])
    theirs = [ARTICLE[0], "Among the changes that matter most:", ARTICLE[1]]
    assert vote(ours, theirs) == ours


def test_rules_that_picked_another_part_of_the_page_give_way_to_trafilatura() -> None:
    sidebar = blocks("Most read: fishing crews stranded at sea after the owner vanished with their wages")
    assert vote(sidebar, ARTICLE) == blocks(*ARTICLE)
    assert vote([], ARTICLE) == blocks(*ARTICLE)
    assert vote(blocks(*ARTICLE), []) == blocks(*ARTICLE)


def test_a_few_words_of_menu_are_no_text() -> None:
    assert vote([], ["Home"]) == []


def test_article_beside_longer_teasers_gets_only_the_article() -> None:
    teasers = "".join(f"<div class='card'><p>{t}</p></div>" for t in (
        "Elsewhere: the city council approved a new budget for road repairs after a long debate about potholes, "
        "parking fees and the cost of resurfacing the ring road before the winter.",
        "Sport: the national team lost its qualifier on penalties after a goalless draw in front of a sold-out "
        "stadium, leaving the coach under pressure from fans and the press.",
        "Weather: heavy rain is expected across the north for the rest of the week, with flood warnings issued "
        "for three river valleys and schools closed in two districts.",
        "Business: the central bank left its main interest rate unchanged for the fourth meeting running, "
        "citing stubborn inflation in food and transport prices."))
    article = "".join(f"<p>{t}</p>" for t in ARTICLE)
    page = (f"<html><head><title>Report on trafficking</title></head><body><div class='page'>"
            f"<article><h1>Report on trafficking</h1>{article}</article>"
            f"<div class='cards'>{teasers}</div></div></body></html>").encode()
    body = parse_page(page, "https://news.example.org/2023/06/report").body
    assert all(t in body for t in ARTICLE)
    assert "Elsewhere" not in body and "central bank" not in body
