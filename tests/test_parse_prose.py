"""Report fields as news, embassies, governments and NGOs write them in sentences."""

from __future__ import annotations

import pytest

from workers.parse import countries, prose
from workers.parse.content import Block
from workers.parse.generic import _dateline
from workers.parse.subject import subject_country


def placed(text: str) -> list[tuple[str, str | None]]:
    return [(tier, country.iso2 if country else None) for tier, country in prose.placements([text])]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("The 2023 Trafficking in Persons Report placed the Philippines on Tier 1 for the eighth "
         "straight year.", [("Tier 1", "PH")]),
        ("Ghana was upgraded to Tier 2.", [("Tier 2", "GH")]),
        ("Nepal remained on the Tier 2 Watch List for a third year.", [("Tier 2 Watch List", "NP")]),
        ("The State Department's annual TIP report ranked Ghana on Tier 1, while Nigeria remained "
         "on Tier 2 and Mali was downgraded to Tier 3.", [("Tier 1", "GH"), ("Tier 2", "NG"), ("Tier 3", "ML")]),
        ("In the report, Taiwan retained its Tier 1 ranking for the twelfth consecutive year.", [("Tier 1", "TW")]),
        ("The US has ranked Kenya as a Tier 2 country again.", [("Tier 2", "KE")]),
        ("Vietnam\u2019s ranking slipped to the Tier 2 Watch List.", [("Tier 2 Watch List", "VN")]),
        ("The country was downgraded to Tier 3 for failing to act.", [("Tier 3", None)]),
        ("Ghana faces a downgrade to Tier 3 next year.", []),
    ],
)
def test_a_sentence_places_the_country_its_clause_names(sentence: str, expected: list) -> None:
    assert placed(sentence) == expected


def test_the_tier_a_country_left_is_not_its_placement() -> None:
    assert placed("Thailand was upgraded from the Tier 2 Watch List to Tier 2.") == [("Tier 2", "TH")]


def test_a_placement_that_did_not_happen_places_nobody() -> None:
    assert placed("Mali was granted a waiver from an otherwise required downgrade to Tier 3.") == []
    assert placed("Tier 1 countries must keep improving.") == []


def test_the_subjects_tier_not_the_neighbours() -> None:
    lines = ["Senegal and Ghana both appear in the report.",
             "Nigeria remained on Tier 2, while Ghana was upgraded to Tier 1."]
    assert prose.tier_for(lines, countries.lookup("Ghana")) == "Tier 1"
    assert prose.tier_for(lines, countries.lookup("Senegal")) is None
    assert prose.tier_for(lines, None) is None


def test_the_country_is_the_pages_own() -> None:
    lines = ["Officials in Accra welcomed the report.", "The country was upgraded to Tier 1."]
    assert prose.tier_for(lines, countries.lookup("Ghana")) == "Tier 1"
    assert prose.tier_for(lines, None) is None


def test_a_labelled_tier_wins_over_prose() -> None:
    lines = ["GHANA: Tier 2", "Ghana was downgraded to Tier 3 in 2015."]
    assert prose.tier_for(lines, countries.lookup("Ghana")) == "Tier 2"


def test_series_come_from_lead_sentences_that_name_the_report_not_from_a_citation() -> None:
    lead = [Block("The State Department's annual TIP report ranked Ghana on Tier 1.", False),
            Block("On 19 July 2022, the Department released the 2022 Trafficking in Persons Report.", False)]
    assert prose.series_lines(lead) == [b.text for b in lead]
    assert prose.series_lines([Block("See the Country Reports on Human Rights Practices for 2022.", False)])
    cited = [Block("This entry gives the tier rating from the annual Trafficking in Persons Report.", False)]
    assert prose.series_lines(cited) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WASHINGTON, June 24, 2021 \u2014 The Chairman welcomed the report.", "2021-06-24"),
        ("ACCRA, Ghana, 24 June 2021 \u2013 The Ministry said the report was fair.", "2021-06-24"),
        ("Thursday, June 24, 2021", "2021-06-24"),
        ("In June 24, 2021 remarks, the minister spoke.", None),
    ],
)
def test_press_release_dateline_gives_the_date(text: str, expected: str | None) -> None:
    assert _dateline([Block(text, heading=False)]) == expected


def test_lead_naming_several_countries_is_about_the_one_in_the_url() -> None:
    lead = [Block("In Indonesia, fishers work on vessels flagged in Taiwan and China for months without pay.", False)]
    assert subject_country([], "Fighting forced labour", lead, "https://x.example.org/indonesia/fishing/").iso2 == "ID"
    assert subject_country([], "Fighting forced labour", lead, "https://x.example.org/news/fishing/") is None


def test_an_embassy_names_who_speaks_not_what_the_page_is_about() -> None:
    lead = [Block("The ambassador met survivors of trafficking at a shelter run by volunteers.", False)]
    assert subject_country([], "Remarks at the U.S. Embassy in Ghana", lead) is None
    assert subject_country([], "U.S. Embassy welcomes Ghana\u2019s upgrade", lead).iso2 == "GH"


def test_the_united_states_as_publisher_is_not_the_pages_country() -> None:
    lead = [Block("The United States Department of State upgraded Ghana to Tier 1 on Monday, citing more "
                  "prosecutions.", False)]
    assert subject_country([], "Trafficking report out", lead).iso2 == "GH"


def test_a_table_of_countries_is_about_none_of_them() -> None:
    rows = [Block(t, False) for t in ("Brunei", "Tier 2 Watch List", "Cambodia", "Tier 3", "Laos", "Tier 2")]
    assert subject_country([], "Cambodia among the worst performers", rows) is None
